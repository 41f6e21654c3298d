"""Before/after: the working tree's hot path against an earlier commit's, in one process.

    python -m benchmarks.ab dfd43ad            # decode_stream (whole body), all four bodies
    python -m benchmarks.ab dfd43ad --mode reads --runs 21

The earlier ``provider_impl`` is taken with ``git archive`` into a temporary
folder and imported as ``provider_impl_before``; both versions and the floor
are timed interleaved, run by run, in CPU time of this thread
(``time.thread_time()``), so other load on the machine weighs on both alike.
Both must yield the same events, or the comparison stops.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import bodies
from benchmarks.contenders import READ_SIZE, consume, floor_json, mock_client

ROOT = Path(__file__).resolve().parent.parent


def load_version(rev: str, into: Path) -> ModuleType:
    """``provider_impl`` as of ``rev``, importable as ``provider_impl_before``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "provider_impl"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - our own repository's archive
            tar.extractall(into)
    pkg = into / "provider_impl_before"
    (into / "provider_impl").rename(pkg)
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\bprovider_impl\b", "provider_impl_before", text))
    sys.path.insert(0, str(into))
    return importlib.import_module("provider_impl_before")


def contender(mod: Any, mode: str, data: bytes, dialect: str) -> Callable[[], int]:
    if mode == "whole":
        return lambda: consume(mod.decode_stream(data, dialect))
    if mode == "reads":
        reads = bodies.pieces(data, READ_SIZE)
        return lambda: consume(mod.decode_stream(reads, dialect))
    provider = getattr(mod.OpenAiCompatibleProvider, dialect)(
        api_key="bench-key", http_client=mock_client(data)
    )
    request = mod.CompletionRequest(messages=[mod.Message(role="user", content="Benchmark.")])
    return lambda: consume(provider.stream(request))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n")[0])
    p.add_argument("rev", help="the earlier commit")
    p.add_argument("--mode", choices=("whole", "reads", "mock"), default="whole")
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=21)
    args = p.parse_args(argv)
    import provider_impl

    with tempfile.TemporaryDirectory() as tmp:
        before = load_version(args.rev, Path(tmp))
        print(f"µs per chunk, CPU time, min / median of {args.runs} interleaved runs ({args.mode})")
        for kind in bodies.KINDS:
            data = bodies.body(kind, args.chunks)
            n = bodies.count_chunks(data)
            dialect = bodies.DIALECT[kind]
            old = [e.to_dict() for e in before.decode_stream(data, dialect)]
            new = [e.to_dict() for e in provider_impl.decode_stream(data, dialect)]
            if old != new:
                raise SystemExit(f"the two versions disagree on the {kind} body")
            fns: dict[str, Callable[[], int]] = {
                "floor": partial(floor_json, data),
                "before": contender(before, args.mode, data, dialect),
                "after": contender(provider_impl, args.mode, data, dialect),
            }
            for fn in fns.values():
                fn()
            gc.collect()
            gc.freeze()
            times: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(args.runs):
                for key, fn in fns.items():
                    gc.collect()
                    t0 = time.thread_time()
                    fn()
                    times[key].append((time.thread_time() - t0) / n * 1e6)
            gc.unfreeze()
            s = {k: (min(v), statistics.median(v)) for k, v in times.items()}
            print(
                f"{kind:9}  floor {s['floor'][0]:5.2f} / {s['floor'][1]:5.2f}   "
                f"before {s['before'][0]:5.2f} / {s['before'][1]:5.2f}   "
                f"after {s['after'][0]:5.2f} / {s['after'][1]:5.2f}   "
                f"after/before {s['after'][0] / s['before'][0]:.2f}   "
                f"after/floor {s['after'][0] / s['floor'][0]:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
