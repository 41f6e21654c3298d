"""Streaming performance of provider_impl, side by side with the parse floor,
httpx-sse and openai-python, on the same generated bodies.

    python -m benchmarks.run            # full run (about 5 minutes), writes RESULTS.md
    python -m benchmarks.run --quick    # smoke run, about 15 seconds

The command line only: ``measure`` times, ``targets`` judges, ``report`` renders
(see benchmarks/README.md for what each row measures).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.measure import FULL, QUICK, Config, Log, Results, measure_all
from benchmarks.report import render_markdown, render_text, results_json
from benchmarks.targets import Judged, judge_all

__all__ = ["FULL", "QUICK", "Config", "main", "run_suite"]

HERE = Path(__file__).resolve().parent


def run_suite(cfg: Config, log: Log = lambda s: None) -> tuple[Results, list[Judged]]:
    """Measure everything ``cfg`` asks for, then judge every target."""
    res = measure_all(cfg, log)
    return res, judge_all(res)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run on small bodies")
    p.add_argument("--chunks", type=int, help="chunks per body (default 10,000; quick 1,000)")
    p.add_argument("--no-conformance", action="store_true", help="skip the conformance run")
    p.add_argument(
        "--output",
        type=Path,
        help="the Markdown report (default benchmarks/RESULTS.md; --quick writes none)",
    )
    p.add_argument("--json", type=Path, help="also write the raw results as JSON")
    p.add_argument(
        "--baseline",
        type=Path,
        default=HERE / "baseline.json",
        help="a results JSON to compare against (default benchmarks/baseline.json if present)",
    )
    p.add_argument("--save-baseline", action="store_true", help="write --baseline from this run")
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.chunks:
        cfg = replace(cfg, n_chunks=args.chunks)
    if args.no_conformance:
        cfg = replace(cfg, conformance=False)
    command = "python -m benchmarks.run" + (" " + " ".join(argv or sys.argv[1:])).rstrip()

    def log(msg: str) -> None:
        print(msg, flush=True)

    res, judged = run_suite(cfg, log)
    print()
    print(render_text(res, judged))
    print(f"\n{res.elapsed_s:.1f} s in all")
    raw = results_json(res, judged)
    if args.save_baseline:
        args.baseline.write_text(json.dumps(raw, indent=2) + "\n")
        print(f"wrote {args.baseline}")
    baseline = None
    if not args.save_baseline and args.baseline.is_file():
        baseline = json.loads(args.baseline.read_text())
    output = args.output or (None if args.quick else HERE / "RESULTS.md")
    if output:
        output.write_text(render_markdown(res, judged, command.strip(), baseline))
        print(f"wrote {output}")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
