"""``provider-impl``: conformance, record, replay, providers, costs, emulator, scan-secrets."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provider_impl.costs import COST_TABLE
from provider_impl.dialects import DIALECTS
from provider_impl.scenarios import SCENARIOS

__all__ = ["main"]

_MARK = {"pass": "pass", "fail": "FAIL", "n/a": "n/a"}


def _check_names(provider: Sequence[str] | None, scenario: Sequence[str] | None) -> None:
    for p in provider or ():
        if p not in DIALECTS:
            raise SystemExit(f"unknown provider {p!r}; known: {', '.join(DIALECTS)}")
    for s in scenario or ():
        if s not in SCENARIOS:
            raise SystemExit(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")


def _cmd_providers(args: argparse.Namespace) -> int:
    if args.export:
        from provider_impl.dialect_file import dialect_to_toml

        if args.export not in DIALECTS:
            print(
                f"unknown provider {args.export!r}; known: {', '.join(DIALECTS)}", file=sys.stderr
            )
            return 2
        sys.stdout.write(dialect_to_toml(DIALECTS[args.export]))
        return 0
    cols = ("provider", "base_url", "key env", "cap param", "usage opt", "default model")
    rows: list[tuple[str, ...]] = [
        (
            d.name,
            d.base_url,
            d.api_key_env or "-",
            d.max_tokens_param,
            "yes" if d.stream_usage_option else "no",
            d.default_model,
        )
        for d in DIALECTS.values()
    ]
    _table(cols, rows)
    print()
    caps = ("provider", "stream", "tools", "vision", "thinking", "context", "max output")
    rows = []
    for d in DIALECTS.values():
        c = d.capabilities
        rows.append(
            (
                d.name,
                _yn(c.streaming),
                _yn(c.tool_calling),
                _yn(c.vision),
                _yn(c.extended_thinking),
                f"{c.max_context_tokens:,}",
                f"{c.max_output_tokens:,}",
            )
        )
    _table(caps, rows)
    return 0


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def _cmd_costs(args: argparse.Namespace) -> int:
    rows = [
        (
            key,
            f"{c.input_per_mtok:.2f}",
            f"{c.output_per_mtok:.2f}",
            "-" if c.cache_read_per_mtok is None else f"{c.cache_read_per_mtok:.3f}",
        )
        for key, c in sorted(COST_TABLE.items())
    ]
    _table(("provider:model", "input $/Mtok", "output $/Mtok", "cache read $/Mtok"), rows)
    return 0


def _table(cols: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows, strict=True)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))


def _cmd_replay(args: argparse.Namespace) -> int:
    from provider_impl.harness import replay_cassette_file

    path = Path(args.cassette)
    if not path.is_file():
        print(f"no such cassette: {path}", file=sys.stderr)
        return 2
    provider = args.provider or path.parent.name
    if provider not in DIALECTS:
        print(
            f"cannot tell the provider of {path} (its folder is {path.parent.name!r}); "
            f"pass --provider, one of {', '.join(DIALECTS)}",
            file=sys.stderr,
        )
        return 2
    try:
        outcome = replay_cassette_file(path, provider)
    except ValueError as err:  # not a cassette, or one this package refuses (YAML aliases)
        print(f"cannot replay {path}: {err}", file=sys.stderr)
        return 2
    for event in outcome.events:
        print(json.dumps(event, ensure_ascii=False))
    if outcome.response is not None:
        print(json.dumps({"response": outcome.response}, ensure_ascii=False, indent=2))
    if outcome.error is not None:
        print(json.dumps({"error": outcome.error}, ensure_ascii=False))
    return 0


def _cmd_handoff(args: argparse.Namespace) -> int:
    from provider_impl.handoff_matrix import handoff_matrix, print_matrix

    started = time.perf_counter()
    cells = handoff_matrix(args.provider or None)
    elapsed = time.perf_counter() - started
    print("Hand-off matrix (a tool conversation started on the row's provider, finished on")
    print("the column's, through the emulator):")
    print_matrix(cells)
    counts = {s: sum(1 for c in cells if c.status == s) for s in ("pass", "fail", "n/a")}
    print(
        f"\n{counts['pass']} cells passed, {counts['fail']} failed, {counts['n/a']} n/a, "
        f"wall time {elapsed:.2f}s"
    )
    if args.json:
        rows = [dataclasses.asdict(c) for c in cells]
        Path(args.json).write_text(json.dumps({"handoff": rows}, indent=2) + "\n")
    return 1 if counts["fail"] else 0


def _cmd_conformance(args: argparse.Namespace) -> int:
    _check_names(args.provider, args.scenario)
    if args.handoff:
        return _cmd_handoff(args)
    suite = Path(args.suite)
    if not (suite / "conftest.py").is_file():
        print(
            f"no conformance suite at {suite}; run from the project checkout or pass --suite DIR",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        matrix_file = Path(tmp) / "matrix.json"
        cmd = [
            str(suite),
            "-q",
            "-p",
            "no:cacheprovider",
            # Not used by the suite; its import and summary cost a second.
            "-p",
            "no:hypothesispytest",
            "--no-header",
            f"--matrix-json={matrix_file}",
            f"--cassette-dir={args.cassette_dir}",
            "-o",
            "addopts=",
        ]
        for p in args.provider or ():
            cmd.append(f"--provider={p}")
        for s in args.scenario or ():
            cmd.append(f"--scenario={s}")
        if args.junit:
            cmd.append(f"--junitxml={args.junit}")
        for f in args.dialect_file:
            cmd.append(f"--dialect-file={f}")
        if not args.verbose:
            cmd.append("--tb=short")
        # Anything else is pytest's (-k, -n, --snapshot-update, ...).
        cmd.extend(args.pytest_args)
        # In this process: a second interpreter's start-up would be a tenth of the run.
        import pytest

        started = time.perf_counter()
        returncode = int(pytest.main(cmd))
        elapsed = time.perf_counter() - started
        if not matrix_file.is_file():
            print("the conformance suite did not run (see pytest's output above)", file=sys.stderr)
            return returncode or 1
        matrix: dict[str, Any] = json.loads(matrix_file.read_text())
    cells = matrix["cells"]
    emulated = {k: c for k, c in cells.items() if not k.startswith(_REAL)}
    real = {k[len(_REAL) :]: c for k, c in cells.items() if k.startswith(_REAL)}
    print("Emulator cassettes (what we believe each provider does), provider × scenario:")
    _print_matrix(matrix, args.provider, args.scenario)
    if real:
        print("\nReal traffic (what the providers really sent and accepted), per provider:")
        _print_real_matrix(real)
        for key, cell in sorted(real.items()):
            if cell["status"] == "fail":
                print(f"  FAIL {key}")
    failed = sum(1 for c in cells.values() if c["status"] == "fail")
    passed = sum(1 for c in cells.values() if c["status"] == "pass")
    not_applicable = len(cells) - passed - failed
    print(
        f"\n{passed} cells passed, {failed} failed, {not_applicable} n/a "
        f"({len(emulated)} emulator cells, {len(real)} real exchanges), "
        f"wall time {elapsed:.2f}s"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({**matrix, "wall_time_s": round(elapsed, 3)}, indent=2) + "\n"
        )
    return 1 if failed or returncode not in (0, 5) else 0


_REAL = "real:"


def _print_real_matrix(real: dict[str, Any]) -> None:
    counts: dict[str, list[int]] = {}
    for key, cell in real.items():
        row = counts.setdefault(key.split("/", 1)[0], [0, 0])
        row[cell["status"] == "fail"] += 1
    rows = [(p, str(ok + bad), str(ok), str(bad)) for p, (ok, bad) in sorted(counts.items())]
    _table(["provider", "exchanges", "pass", "FAIL"], rows)


def _print_matrix(
    matrix: dict[str, Any], providers: Sequence[str] | None, scenarios: Sequence[str] | None
) -> None:
    provs = list(providers or DIALECTS)
    scens = list(scenarios or SCENARIOS)
    cells = matrix["cells"]
    rows = []
    for s in scens:
        row = [s]
        for p in provs:
            cell = cells.get(f"{p}/{s}")
            row.append(_MARK[cell["status"]] if cell else "-")
        rows.append(row)
    _table(["scenario", *provs], rows)


def _cmd_record(args: argparse.Namespace) -> int:
    from provider_impl.recording import SecretLeakError, record_cassettes

    try:
        results = record_cassettes(
            args.provider,
            args.scenario or None,
            base_url=args.base_url,
            cassette_dir=Path(args.cassette_dir),
            record_mode=args.record_mode,
        )
    except (ValueError, SecretLeakError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if all(r.ok for r in results) else 1


def _cmd_drift(args: argparse.Namespace) -> int:
    from provider_impl.drift import cli

    return cli(
        args.provider,
        base_url=args.base_url,
        cassette_dir=args.cassette_dir,
        junit=args.junit,
        scenarios=args.scenario,
    )


def _cmd_scan_secrets(args: argparse.Namespace) -> int:
    from provider_impl.recording.secrets import scan_paths

    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"no such path: {', '.join(missing)}", file=sys.stderr)
        return 2
    findings = scan_paths(paths)
    for f in findings:
        print(f)
    if findings:
        print(f"{len(findings)} possible secret(s) found", file=sys.stderr)
        return 1
    print(f"no secrets found in {', '.join(map(str, paths))}")
    return 0


def _cmd_emulator(args: argparse.Namespace) -> int:
    from provider_impl.emulator.command import main as emulator_main

    files = [f"--dialect-file={f}" for f in args.dialect_file]
    return emulator_main(["--host", args.host, "--port", str(args.port), *files]) or 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provider-impl",
        description="One OpenAI-compatible client for six providers, and its conformance harness.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # Every command that names providers can learn new ones from dialect files.
    dialects = argparse.ArgumentParser(add_help=False)
    dialects.add_argument(
        "--dialect-file",
        action="append",
        default=[],
        metavar="FILE",
        help="add or override a provider from a dialect record (TOML; repeatable)",
    )

    p = sub.add_parser(
        "conformance",
        parents=[dialects],
        help="replay every shipped cassette offline; print a matrix",
    )
    p.add_argument("--provider", action="append", help="limit to a provider (repeatable)")
    p.add_argument("--scenario", action="append", help="limit to a scenario (repeatable)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--json", metavar="FILE", help="write the matrix as JSON")
    p.add_argument("--cassette-dir", default="cassettes", help="where the cassettes are")
    p.add_argument("--suite", default="conformance", help="the conformance suite folder")
    p.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
    p.add_argument(
        "--handoff",
        action="store_true",
        help="run and print the hand-off matrix (provider × provider) instead",
    )
    p.set_defaults(func=_cmd_conformance)

    p = sub.add_parser(
        "record", parents=[dialects], help="record cassettes from a provider or the emulator"
    )
    p.add_argument("--provider", required=True, help="the provider to record")
    p.add_argument("--scenario", action="append", help="a scenario to record (repeatable)")
    p.add_argument("--base-url", help="where to send requests (default: the real provider)")
    p.add_argument("--cassette-dir", default="cassettes")
    p.add_argument(
        "--record-mode",
        choices=("none", "once", "new_episodes", "all"),
        default="once",
        help="pytest-recording's modes: once (default) records only missing cassettes, "
        "all rewrites them, new_episodes adds to them, none only replays; a recording "
        "without the scenario's expected outcome is never written",
    )
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser(
        "drift",
        parents=[dialects],
        help="record afresh and compare with the committed cassettes",
    )
    p.add_argument("--provider", required=True, help="the provider to check")
    p.add_argument("--scenario", action="append", help="limit to a scenario (repeatable)")
    p.add_argument("--base-url", help="where to send requests (default: the real provider)")
    p.add_argument("--cassette-dir", default="cassettes", help="the committed cassettes")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    p.set_defaults(func=_cmd_drift)

    p = sub.add_parser(
        "replay", parents=[dialects], help="print the normalized events of one cassette"
    )
    p.add_argument("cassette")
    p.add_argument("--provider", help="the provider (default: the cassette's folder name)")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("providers", parents=[dialects], help="list dialects and capabilities")
    p.add_argument("--export", metavar="NAME", help="print NAME's dialect record as TOML")
    p.set_defaults(func=_cmd_providers)

    p = sub.add_parser("costs", help="print the cost table")
    p.set_defaults(func=_cmd_costs)

    p = sub.add_parser("emulator", parents=[dialects], help="serve the loopback provider emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=_cmd_emulator)

    p = sub.add_parser("scan-secrets", help="scan files for key-shaped strings")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=_cmd_scan_secrets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "conformance":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.pytest_args = unknown
    from provider_impl.dialect_file import DialectFileError, load_dialect_file

    try:
        for path in getattr(args, "dialect_file", ()):
            load_dialect_file(path)
    except DialectFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
