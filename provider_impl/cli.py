"""``provider-impl``: conformance, record, drift, replay, providers, costs, emulator,
scan-secrets.

Exit codes: 0 success; 1 checks failed (a FAIL cell, drift, a secret found, an
unexpected recording outcome); 2 usage or environment (a bad option, a missing
file or extra, a port in use, an unreachable server); 130 interrupted; 141 the
reader closed the pipe. Every expected failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import socket
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from provider_impl import __version__
from provider_impl.costs import COST_TABLE
from provider_impl.dialects import DIALECTS
from provider_impl.scenarios import SCENARIOS

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_MARK = {"pass": "pass", "fail": "FAIL", "n/a": "n/a"}

# What the ``conformance`` extra brings (pyproject.toml), by import name.
_EXTRA_MODULES = ("vcr", "yaml", "syrupy", "jsonschema", "pytest")
# The modules each command imports from the extra.
_NEEDS: dict[str, tuple[str, ...]] = {
    "conformance": _EXTRA_MODULES,
    "record": ("vcr", "yaml"),
    "drift": ("vcr", "yaml"),
    "replay": ("vcr", "yaml"),
    "scan-secrets": ("vcr", "yaml"),
}


class UsageError(Exception):
    """Bad input or environment: one line on stderr, exit code 2."""


def _missing_extra(command: str) -> str | None:
    for module in _NEEDS.get(command, ()):
        if importlib.util.find_spec(module) is None:
            return _extra_message(command, module)
    return None


def _extra_message(command: str, module: str) -> str:
    return (
        f"provider-impl {command} needs the 'conformance' extra (module {module!r} is missing): "
        "python -m pip install 'provider-impl[conformance]'"
    )


def _merged(names: Sequence[str] | None) -> list[str]:
    """Repeated filters, each once, in the order given."""
    return list(dict.fromkeys(names or ()))


def _check_names(provider: Sequence[str] | None, scenario: Sequence[str] | None) -> None:
    for p in provider or ():
        if p not in DIALECTS:
            raise UsageError(f"unknown provider {p!r}; known: {', '.join(DIALECTS)}")
    for s in scenario or ():
        if s not in SCENARIOS:
            raise UsageError(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")


def _output_file(option: str, value: str | None) -> None:
    """Refuse an output file that cannot be written before any work is done."""
    if value is None:
        return
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{option} {value}: is a folder, not a file")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {value}: no folder {path.parent}")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{option} {value}: folder {path.parent} is not writable")


def _parallel(pytest_args: Sequence[str]) -> bool:
    return any(
        a in ("-n", "--numprocesses")
        or a.startswith(("-n=", "--numprocesses"))
        or (a.startswith("-n") and a[2:].isdigit())
        for a in pytest_args
    )


def _cassette_dir(value: str | None) -> Path:
    from provider_impl.conformance import shipped_cassettes

    folder = Path(value) if value else shipped_cassettes()
    if not folder.is_dir():
        what = "a file" if folder.exists() else "no such folder"
        raise UsageError(f"--cassette-dir {folder}: {what}")
    return folder


def _cmd_providers(args: argparse.Namespace) -> int:
    if args.export:
        from provider_impl.dialect_file import dialect_to_toml

        if args.export not in DIALECTS:
            raise UsageError(f"unknown provider {args.export!r}; known: {', '.join(DIALECTS)}")
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
        raise UsageError(f"no such cassette: {path}")
    provider = args.provider or path.parent.name
    if provider not in DIALECTS:
        raise UsageError(
            f"cannot tell the provider of {path} (its folder is {path.parent.name!r}); "
            f"pass --provider, one of {', '.join(DIALECTS)}"
        )
    try:
        outcome = replay_cassette_file(path, provider)
    except Exception as exc:  # a cassette this package cannot read or refuses (YAML aliases)
        reason = "; ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
        raise UsageError(f"cannot read cassette {path}: {reason or type(exc).__name__}") from exc
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
    cells = handoff_matrix(_merged(args.provider) or None)
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
    providers, scenarios = _merged(args.provider), _merged(args.scenario)
    _check_names(providers, scenarios)
    _output_file("--json", args.json)
    _output_file("--junit", args.junit)
    if args.handoff:
        args.provider = providers
        return _cmd_handoff(args)
    from provider_impl.conformance import SUITE, snapshot_dir

    suite = Path(args.suite) if args.suite else SUITE
    if not (suite / "conftest.py").is_file():
        raise UsageError(f"--suite {suite}: no conformance suite there (no conftest.py)")
    cassettes = _cassette_dir(args.cassette_dir)
    known = [p for p in DIALECTS if (cassettes / p).is_dir()]
    if not known and not (cassettes / "real").is_dir():
        raise UsageError(
            f"no cassettes under {cassettes} (expected {cassettes}/<provider>/<scenario>.yaml "
            f"for a provider among {', '.join(DIALECTS)})"
        )
    if _parallel(args.pytest_args) and importlib.util.find_spec("xdist") is None:
        raise UsageError("-n needs pytest-xdist: python -m pip install pytest-xdist")
    updating = any(a.startswith("--snapshot-update") for a in args.pytest_args)
    snapshots = snapshot_dir(cassettes)
    if not snapshots.is_dir() and not updating:
        raise UsageError(
            f"no snapshots beside the cassettes ({snapshots}); create them with "
            f"`provider-impl conformance --cassette-dir {cassettes} -- --snapshot-update` "
            "and review them"
        )
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
            f"--provider-cassettes={cassettes}",
            # The suite's settings, whatever folder pytest takes for its rootdir.
            f"--rootdir={suite}",
            "-c",
            os.devnull,
            "-o",
            "addopts=",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            # The plugin's entry point asks pytest to rewrite provider_impl's asserts,
            # which this command has already imported: nothing to rewrite, no warning.
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
        ]
        for p in providers:
            cmd.append(f"--provider={p}")
        for s in scenarios:
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
            raise UsageError(f"the conformance suite did not run (pytest exit code {returncode})")
        matrix: dict[str, Any] = json.loads(matrix_file.read_text())
    if returncode == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    cells = matrix["cells"]
    emulated = {k: c for k, c in cells.items() if not k.startswith(_REAL)}
    real = {k[len(_REAL) :]: c for k, c in cells.items() if k.startswith(_REAL)}
    if emulated:
        print("Emulator cassettes (what we believe each provider does), provider × scenario:")
        _print_matrix(matrix, providers or None, scenarios or None)
    if real:
        print("\nReal traffic (what the providers really sent and accepted), per provider:")
        _print_real_matrix(real)
        for key, cell in sorted(real.items()):
            if cell["status"] == "fail":
                print(f"  FAIL {key}")
    failed = sum(1 for c in cells.values() if c["status"] == "fail")
    passed = sum(1 for c in cells.values() if c["status"] == "pass")
    not_applicable = len(cells) - passed - failed
    checks = matrix.get("checks", {})
    print(
        f"\n{passed} cells passed, {failed} failed, {not_applicable} n/a "
        f"({len(emulated)} emulator cells, {len(real)} real exchanges); "
        f"{sum(checks.values())} checks (pytest tests) behind them: "
        f"{checks.get('passed', 0)} passed, {checks.get('failed', 0)} failed, "
        f"{checks.get('skipped', 0)} skipped; wall time {elapsed:.2f}s"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({**matrix, "wall_time_s": round(elapsed, 3)}, indent=2) + "\n"
        )
    if failed or returncode not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return EXIT_FAILED
    return EXIT_OK


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
    cells = matrix["cells"]
    present = {key.split("/", 1)[0] for key in cells}
    provs = list(providers or [p for p in DIALECTS if p in present])
    scens = list(scenarios or SCENARIOS)
    rows = []
    for s in scens:
        row = [s]
        for p in provs:
            cell = cells.get(f"{p}/{s}")
            row.append(_MARK[cell["status"]] if cell else "-")
        rows.append(row)
    _table(["scenario", *provs], rows)


def _reachable(base_url: str) -> None:
    """Refuse to record from a server that does not accept connections."""
    url = urllib.parse.urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UsageError(f"--base-url {base_url}: not an http(s) URL")
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError as exc:
        raise UsageError(f"--base-url {base_url}: {exc}") from exc
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as exc:
        raise UsageError(f"cannot reach {base_url}: {exc.strerror or exc}") from exc


def _writable_dir(option: str, folder: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"{option} {folder}: {existing} is not writable")


def _cmd_record(args: argparse.Namespace) -> int:
    from provider_impl.recording import SecretLeakError, record_cassettes

    folder = Path(args.cassette_dir)
    _check_names([args.provider], _merged(args.scenario))
    _writable_dir("--cassette-dir", folder)
    if args.record_mode != "none":
        # A dead server would fail every scenario in turn: say so once, before starting.
        _reachable(args.base_url or DIALECTS[args.provider].base_url)
    try:
        results = record_cassettes(
            args.provider,
            _merged(args.scenario) or None,
            base_url=args.base_url,
            cassette_dir=folder,
            record_mode=args.record_mode,
        )
    except (ValueError, SecretLeakError) as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot write cassettes under {folder}: {exc}") from exc
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _cmd_drift(args: argparse.Namespace) -> int:
    from provider_impl.conformance import shipped_cassettes
    from provider_impl.drift import cli

    _output_file("--junit", args.junit)
    return cli(
        args.provider,
        base_url=args.base_url,
        cassette_dir=args.cassette_dir or str(shipped_cassettes()),
        junit=args.junit,
        scenarios=_merged(args.scenario) or None,
    )


def _cmd_scan_secrets(args: argparse.Namespace) -> int:
    from provider_impl.recording.secrets import scan_paths

    paths = [Path(p) for p in dict.fromkeys(args.paths)]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"no such path: {', '.join(missing)}")
    findings = scan_paths(paths)
    for f in findings:
        print(f)
    if findings:
        print(f"{len(findings)} possible secret(s) found", file=sys.stderr)
        return EXIT_FAILED
    print(f"no secrets found in {', '.join(map(str, paths))}")
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
    from provider_impl.emulator.command import main as emulator_main

    files = [f"--dialect-file={f}" for f in args.dialect_file]
    return emulator_main(["--host", args.host, "--port", str(args.port), *files]) or 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535; 0: any free one)")
    return port


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the whole usage text)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_EXIT_CODES = "exit codes: 0 ok, 1 checks failed, 2 usage or environment error"


def _add(
    sub: Any,
    name: str,
    summary: str,
    description: str,
    examples: Sequence[str],
    func: Callable[[argparse.Namespace], int],
    **kw: Any,
) -> argparse.ArgumentParser:
    """A command's parser, its help and examples, run by ``func``."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) + f"\n\n{_EXIT_CODES}"
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kw,
    )
    parser.set_defaults(func=func)
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="provider-impl",
        description="One OpenAI-compatible client for six providers, and its conformance harness.",
        epilog=f"Run `provider-impl COMMAND --help` for a command's options.\n{_EXIT_CODES}",
    )
    parser.add_argument("--version", action="version", version=f"provider-impl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Every command that names providers can learn new ones from dialect files.
    dialects = argparse.ArgumentParser(add_help=False)
    dialects.add_argument(
        "--dialect-file",
        action="append",
        default=[],
        metavar="FILE",
        help="add or override a provider from a dialect record (TOML; repeatable)",
    )

    # The commands that send the scenarios to a live server.
    live = argparse.ArgumentParser(add_help=False)
    live.add_argument("--provider", required=True, help="the provider to send to")
    live.add_argument("--scenario", action="append", help="limit to a scenario (repeatable)")
    live.add_argument("--base-url", help="where to send requests (default: the real provider)")

    p = _add(
        sub,
        "conformance",
        "replay every shipped cassette offline; print a matrix",
        "Replay the cassettes offline (network blocked) through the sync and async\n"
        "clients and check every cell: snapshots, stream rules, request and reply\n"
        "contracts, any split of the body. Prints the emulator matrix (provider x\n"
        "scenario) and the real-traffic matrix. Works from any folder: the suite and\n"
        "the shipped cassettes are in the package. With --cassette-dir, your own\n"
        "cassettes, their snapshots kept in DIR/__snapshots__. Arguments after --\n"
        "go to pytest.",
        [
            "provider-impl conformance",
            "provider-impl conformance --provider mistral --scenario tool_call",
            "provider-impl conformance --cassette-dir my-cassettes -- --snapshot-update",
            "provider-impl conformance --json matrix.json -- -n 2 -k tool",
            "provider-impl conformance --handoff",
        ],
        parents=[dialects],
        func=_cmd_conformance,
    )
    p.add_argument("--provider", action="append", help="limit to a provider (repeatable)")
    p.add_argument("--scenario", action="append", help="limit to a scenario (repeatable)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--json", metavar="FILE", help="write the matrix as JSON")
    p.add_argument(
        "--cassette-dir", metavar="DIR", help="the cassettes (default: the shipped ones)"
    )
    p.add_argument("--suite", metavar="DIR", help="another conformance suite folder")
    p.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
    p.add_argument(
        "--handoff",
        action="store_true",
        help="run and print the hand-off matrix (provider × provider) instead",
    )

    p = _add(
        sub,
        "record",
        "record cassettes from a provider or the emulator",
        "Run each scenario against the live provider (its key from the environment)\n"
        "or any server (--base-url), scrub secrets and write\n"
        "DIR/<provider>/<scenario>.yaml; a cassette in which a secret survives is\n"
        "not written. Exit code 1 when an outcome differs from the scenario's.",
        [
            "provider-impl record --provider mistral",
            "provider-impl record --provider openai --scenario text "
            "--base-url http://127.0.0.1:8765/openai/v1 --cassette-dir my-cassettes",
        ],
        parents=[dialects, live],
        func=_cmd_record,
    )
    p.add_argument(
        "--cassette-dir", metavar="DIR", default="cassettes", help="where to write (./cassettes)"
    )
    p.add_argument(
        "--record-mode",
        choices=("none", "once", "new_episodes", "all"),
        default="once",
        help="pytest-recording's modes: once (default) records only missing cassettes, "
        "all rewrites them, new_episodes adds to them, none only replays; a recording "
        "without the scenario's expected outcome is never written",
    )

    p = _add(
        sub,
        "drift",
        "record afresh and compare with the committed cassettes",
        "Record every scenario again into a temporary folder and compare each reply\n"
        "with the committed cassette: accepted or refused the same way, the same\n"
        "JSON paths and types, the same normalized events. Exit code 1 on drift.",
        [
            "provider-impl drift --provider mistral",
            "provider-impl drift --provider openai --base-url http://127.0.0.1:8765/openai/v1",
        ],
        parents=[dialects, live],
        func=_cmd_drift,
    )
    p.add_argument(
        "--cassette-dir", metavar="DIR", help="the committed cassettes (default: the shipped ones)"
    )
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")

    p = _add(
        sub,
        "replay",
        "print the normalized events of one cassette",
        "Decode one cassette's reply and print its events as JSON lines (or the\n"
        "whole response, or the typed error).",
        [
            "provider-impl replay cassettes/mistral/tool_call.yaml",
            "provider-impl replay my.yaml --provider openai",
        ],
        parents=[dialects],
        func=_cmd_replay,
    )
    p.add_argument("cassette", help="the cassette file")
    p.add_argument("--provider", help="the provider (default: the cassette's folder name)")

    p = _add(
        sub,
        "providers",
        "list dialects and capabilities",
        "List every provider's dialect (base URL, key variable, output-cap\n"
        "parameter, usage option, default model) and capabilities, or print one\n"
        "provider's record as a TOML dialect file.",
        ["provider-impl providers", "provider-impl providers --export openai > acme.toml"],
        parents=[dialects],
        func=_cmd_providers,
    )
    p.add_argument("--export", metavar="NAME", help="print NAME's dialect record as TOML")

    p = _add(
        sub,
        "costs",
        "print the cost table",
        "Print the prices per million tokens (input, output, cache read) used for\n"
        "cost estimates and the fallback's cost warnings.",
        ["provider-impl costs"],
        func=_cmd_costs,
    )

    p = _add(
        sub,
        "emulator",
        "serve the loopback provider emulator",
        "Serve every provider's chat-completions dialect on loopback, quirks,\n"
        "errors and fault modes included, until interrupted. It prints one base URL\n"
        "per provider; the x-emulator-scenario header picks a scripted reply and\n"
        "x-emulator-fault a fault.",
        ["provider-impl emulator --port 8765", "provider-impl emulator --dialect-file acme.toml"],
        parents=[dialects],
        func=_cmd_emulator,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0: any free one)")

    p = _add(
        sub,
        "scan-secrets",
        "scan files for key-shaped strings",
        "Look for API keys and tokens in files or folders (every provider's key\n"
        "shapes, bearer tokens); findings are printed masked. Exit code 1 if any.",
        ["provider-impl scan-secrets cassettes", "provider-impl scan-secrets a.yaml b.yaml"],
        func=_cmd_scan_secrets,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    return parser


def _run(argv: list[str]) -> int:
    # Everything after "--" belongs to pytest (conformance only).
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command != "conformance" and (unknown or passthrough):
        sub = f"{parser.prog} {args.command}"
        extra = " ".join(unknown or ["--", *passthrough])
        print(f"{sub}: error: unrecognized arguments: {extra} (see {sub} --help)", file=sys.stderr)
        return EXIT_USAGE
    args.pytest_args = [*unknown, *passthrough]
    missing = _missing_extra(args.command)
    if missing:
        raise UsageError(missing)
    from provider_impl.dialect_file import DialectFileError, load_dialect_file

    try:
        for path in getattr(args, "dialect_file", ()):
            load_dialect_file(path)
    except DialectFileError as err:
        raise UsageError(str(err)) from err
    result: int = args.func(args)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """The ``provider-impl`` command; returns its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            result = _run(args)
        except SystemExit as exc:  # argparse: --help, --version, a usage error
            result = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit
        return result
    except UsageError as err:
        print(f"provider-impl: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if top not in _EXTRA_MODULES:
            raise
        command = next((a for a in args if a in _NEEDS), "")
        print(f"provider-impl: error: {_extra_message(command, top)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_pipe()


def _closed_pipe() -> int:
    """The reader went away (``| head``): stop quietly, as other Unix tools do."""
    # Python would report the failed flush of stdout at exit; point it at devnull.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


if __name__ == "__main__":
    sys.exit(main())
