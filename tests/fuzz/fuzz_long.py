"""The long fuzz run: at least 100,000 inputs through the SSE decoder, the stream
adapter, ``decode_stream`` (every provider) and the error classifier.

    python tests/fuzz/fuzz_long.py --runs 100000                 # atheris if installed
    python tests/fuzz/fuzz_long.py --runs 100000 --engine random --seed 0

``atheris`` is coverage-guided (libFuzzer) over the library's own code;
``random`` replays the same engine from a seeded ``random.Random`` and needs
nothing beyond the test dependencies. Both drive ``engine.fuzz_one``: the same
targets, mutations and oracle as the hypothesis run in ``tests/test_fuzz.py``.

Prints one summary line (``engine=... inputs=... seconds=... findings=...``),
writes it as JSON with ``--summary PATH``, and exits 1 if any input broke the
oracle (each distinct finding is printed with its traceback and, for atheris,
the input is saved under ``--artifacts``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))  # tests/: makes ``fuzz`` importable as a package

_findings: dict[str, str] = {}
_count = 0
_started = 0.0


def _record(exc: BaseException, data: bytes | None, artifacts: Path | None) -> None:
    # One entry per kind of failure, whatever the provider or status it came with.
    key = re.sub(r"\(.*?\)|\d+", "", f"{type(exc).__name__}: {str(exc)[:120]}")
    if key in _findings:
        return
    text = "".join(traceback.format_exception(exc))
    if data is not None and artifacts is not None:
        artifacts.mkdir(parents=True, exist_ok=True)
        path = artifacts / f"finding-{len(_findings)}.bin"
        path.write_bytes(data)
        text += f"\ninput saved to {path}\n"
    _findings[key] = text
    print(f"FINDING {len(_findings)}: {key}\n{text}", file=sys.stderr, flush=True)


def _summary(engine: str, args: argparse.Namespace) -> int:
    seconds = time.monotonic() - _started
    result = {
        "engine": engine,
        "inputs": _count,
        "seconds": round(seconds, 1),
        "inputs_per_second": round(_count / seconds) if seconds else None,
        "findings": len(_findings),
        "finding_keys": sorted(_findings),
        "python": sys.version.split()[0],
    }
    line = " ".join(f"{k}={v}" for k, v in result.items() if k != "finding_keys")
    print(line, flush=True)
    if args.summary:
        Path(args.summary).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if _findings else 0


def _progress(engine: str, every: int) -> None:
    if _count % every == 0:
        rate = _count / max(1e-9, time.monotonic() - _started)
        print(
            f"[{engine}] {_count} inputs, {rate:.0f}/s, {len(_findings)} findings",
            file=sys.stderr,
            flush=True,
        )


def run_random(args: argparse.Namespace) -> int:
    global _count, _started
    from fuzz.engine import Finding, Hang, RandomChooser, fuzz_one, no_hang

    rng = random.Random(args.seed)
    _started = time.monotonic()
    while _count < args.runs:
        _count += 1
        try:
            with no_hang(args.timeout):
                fuzz_one(RandomChooser(rng))
        except (Finding, Hang) as exc:
            _record(exc, None, None)
        _progress("random", 10_000)
    return _summary(f"random(seed={args.seed})", args)


def run_atheris(args: argparse.Namespace) -> int:
    global _started
    import atheris

    # Instrument the library (only) for coverage feedback, before anything imports it.
    with atheris.instrument_imports(include=["provider_impl"]):
        import provider_impl
        import provider_impl.adapter
        import provider_impl.errors
        import provider_impl.sse
        import provider_impl.stream  # noqa: F401
    from fuzz.corpus import chunk_seeds, error_seeds, stream_seeds
    from fuzz.engine import Finding, Hang, fuzz_one

    stream_seeds(), error_seeds(), chunk_seeds()  # build the corpus before timing

    artifacts = Path(args.artifacts)

    class AtherisChooser:
        def __init__(self, fdp: Any) -> None:
            self._fdp = fdp

        def int(self, lo: int, hi: int) -> int:
            return int(self._fdp.ConsumeIntInRange(lo, hi))

        def raw(self, max_len: int) -> bytes:
            n = self._fdp.ConsumeIntInRange(0, max_len)
            return bytes(self._fdp.ConsumeBytes(n))

    def test_one_input(data: bytes) -> None:
        global _count
        _count += 1
        try:
            fuzz_one(AtherisChooser(atheris.FuzzedDataProvider(data)))
        except (Finding, Hang) as exc:
            _record(exc, data, artifacts)
        _progress("atheris", 10_000)
        if _count >= args.runs:
            sys.stdout.flush()
            os._exit(_summary("atheris", args))

    corpus = tempfile.mkdtemp(prefix="fuzz-corpus-")
    rng = random.Random(args.seed)  # a few random starting inputs of every size
    for i in range(64):
        size = rng.choice((16, 64, 256, 1024, 4096, args.max_len))
        Path(corpus, f"seed-{i}").write_bytes(rng.randbytes(rng.randint(1, size)))
    argv = [
        sys.argv[0],
        f"-runs={args.runs + 10}",  # we stop ourselves at exactly --runs
        f"-timeout={int(args.timeout)}",  # libFuzzer's own no-hang alarm, per input
        f"-max_len={args.max_len}",
        "-len_control=0",  # long inputs from the start: choices need bytes
        f"-seed={args.seed or 1}",
        "-print_final_stats=1",
        f"-rss_limit_mb={args.rss_limit_mb}",  # memory bound for the whole run
        corpus,
    ]
    atheris.Setup(argv, test_one_input)
    _started = time.monotonic()
    atheris.Fuzz()
    return _summary("atheris", args)  # not reached: libFuzzer exits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="inputs to run")
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input (hang)")
    parser.add_argument("--max-len", type=int, default=16384, help="atheris: longest input")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="atheris: memory cap")
    parser.add_argument("--artifacts", default="fuzz-findings", help="atheris: where inputs go")
    parser.add_argument("--summary", help="write the summary as JSON here")
    args = parser.parse_args()
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "random"
    if engine == "atheris":
        return run_atheris(args)
    return run_random(args)


if __name__ == "__main__":
    sys.exit(main())
