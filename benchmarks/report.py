"""The report: the text table printed at the end of a run, ``RESULTS.md`` and the
raw JSON. Reads only a ``measure.Results`` and its judged targets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from benchmarks import transports
from benchmarks.measure import CONCURRENT_ROWS, MB, MEMORY_ROWS, ROWS, Results
from benchmarks.targets import Judged

#: The rows compared with ``benchmarks/baseline.json`` (the hot-path work's before/after).
BASELINE_ROWS = ("floor_json", "decode_whole", "decode_reads", "stream_mock")


def _tr(res: Results, key: str, kind: str) -> float | None:
    row = res.transport_rows.get(key, {}).get(kind)
    return None if row is None else float(row["cpu_median_us"])


def _cell(median: float, least: float) -> str:
    return f"{median:.2f} ({least:.2f})"


def _met(flag: bool | None) -> str:
    return "n/a" if flag is None else ("met" if flag else "NOT met")


def _kind_table(
    head: str, kinds: list[str], labels: dict[str, str], cell: Callable[[str, str], str]
) -> list[list[str]]:
    """A row a contender (``labels``, by name), a column a body kind."""
    return [
        [head, *kinds],
        *([label, *(cell(key, k) for k in kinds)] for key, label in labels.items()),
    ]


def table_rows(res: Results, cpu: bool = False) -> list[list[str]]:
    """The per-chunk table (``ROWS``), in wall time or in CPU time."""

    def cell(key: str, kind: str) -> str:
        s = res.rows.get(key, {}).get(kind)
        if s is None:
            return "n/a"
        return _cell(s.cpu_median_us, s.cpu_min_us) if cpu else _cell(s.median_us, s.min_us)

    head = "CPU µs per chunk: median (min)" if cpu else "per chunk, µs: median (min)"
    return _kind_table(head, list(res.chunks), ROWS, cell)


def render_text(res: Results, judged: list[Judged]) -> str:
    rows = table_rows(res)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for t in judged:
        lines.append(f"[{_met(t.met)}] {t.target}: {t.value}")
    for key, reason in res.unavailable.items():
        lines.append(f"({ROWS[key]} not measured: {reason})")
    return "\n".join(lines)


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return out


def _baseline_section(res: Results, baseline: dict[str, Any]) -> list[str]:
    kinds = list(res.chunks)
    rows = [["µs per chunk, median [min]: before → after", *kinds]]
    for key in BASELINE_ROWS:
        cells = []
        for k in kinds:
            before = (baseline.get("rows", {}).get(key) or {}).get(k)
            after = res.rows.get(key, {}).get(k)
            if before and after:
                b, bm = before["median_us"], before["min_us"]
                cells.append(
                    f"{b:.2f} [{bm:.2f}] → {after.median_us:.2f} [{after.min_us:.2f}] "
                    f"({b / after.median_us:.2f}x [{bm / after.min_us:.2f}x])"
                )
            else:
                cells.append("n/a")
        rows.append([ROWS[key], *cells])
    note = baseline.get("note") or f"commit {baseline.get('machine', {}).get('commit', '?')}"
    return [
        "",
        "## Before the hot-path optimizations",
        "",
        f"Baseline: `benchmarks/baseline.json` ({note}), measured on the same kind of "
        "machine with the same bodies. Only meaningful when both runs come from one machine.",
        "",
        *_md_table(rows),
    ]


def _transport_memory_lines(res: Results) -> list[str]:
    rows = res.memory.get("transports", {})
    if not rows:
        return []
    return [
        "- The same over loopback HTTP (`BodyServer`, another process), a whole `text` stream "
        "through the provider after one warm-up stream on the same client, events dropped as "
        "they come: "
        + "; ".join(
            f"{MEMORY_ROWS[r]} {m['small_peak_bytes'] / 1024:.0f} KiB at "
            f"{res.config['mem_small']:,} chunks, {m['large_peak_bytes'] / 1024:.0f} KiB at "
            f"{res.config['mem_large']:,}"
            for r, m in rows.items()
        )
        + "."
    ]


def render_markdown(
    res: Results, judged: list[Judged], command: str, baseline: dict[str, Any] | None
) -> str:
    m = res.machine
    pk = m["packages"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"in {res.elapsed_s:.0f} s. Re-run it to refresh this file.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores",
        f"- {m['python']} on {m['platform']}",
        f"- commit: {m['commit']}",
        f"- load average (1, 5, 15 min) at start: {m['load_average_at_start']}, at end: "
        f"{m.get('load_average_at_end', '?')} (other work on this machine shows here; rows are "
        "timed interleaved, run by run, so it weighs on every contender alike)",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in pk.items()),
        "",
        "## Per-chunk time",
        "",
        f"Each body has {', '.join(f'{k} {v:,}' for k, v in res.chunks.items())} JSON chunks "
        "(see `benchmarks/bodies.py`). Cells are microseconds per chunk: the median over "
        f"{res.config['repeats']} timed runs (openai-python: {res.config['sdk_repeats']}), "
        "after one warm-up run, and the minimum in brackets. Every row consumes the whole "
        "stream; the rows of this library are checked to yield identical events.",
        "",
        *_md_table(table_rows(res)),
        "",
        "The same runs in CPU time of the consuming thread (`time.thread_time()`), which "
        "other load on the machine disturbs much less than wall time:",
        "",
        *_md_table(table_rows(res, cpu=True)),
        "",
    ]
    for key, reason in res.unavailable.items():
        lines.append(f"- {ROWS[key]}: not measured, {reason}.")
    lines += transport_sections(res)
    mem, lat = res.memory, res.latency
    lines += [
        "## Memory and latency",
        "",
        f"- Peak traced memory (tracemalloc) while consuming `decode_stream` over a lazily "
        f"generated text stream read in 64 KiB pieces, events dropped as they come: "
        f"{mem['small_peak_bytes'] / 1024:.0f} KiB at {mem['small_chunks']:,} chunks, "
        f"{mem['large_peak_bytes'] / 1024:.0f} KiB at {mem['large_chunks']:,} chunks, "
        f"growth {mem['growth_bytes'] / MB:+.3f} MB.",
        *_transport_memory_lines(res),
        f"- First event on a trickled loopback stream ({lat['runs']} runs; the server sends "
        f"the headers, waits {res.config['trickle_wait'] * 1000:.0f} ms, then the first frame "
        f"and notes `time.perf_counter()` just before the send, in this process): first frame "
        f"sent → first `TextDelta` yielded by `provider.stream()`: median "
        f"{lat['from_send_median_ms']:.3f} ms, max {lat['from_send_max_ms']:.3f} ms. First body "
        f"bytes out of httpx's transport → first `TextDelta`: median "
        f"{lat['from_bytes_median_ms']:.3f} ms, max {lat['from_bytes_max_ms']:.3f} ms.",
    ]
    c = res.conformance
    if c.get("status") == "ran":
        lines.append(
            f"- Offline conformance run (`provider-impl conformance`, {c['cassettes']} cassettes,"
            f" a fresh process): {c['wall_s']:.2f} s wall, {c['cpu_s']:.2f} s CPU in its "
            f"processes ({c['passed']} passed, "
            f"{c['failed']} failed; the suite itself reported {c['suite_s']} s)."
        )
    else:
        lines.append(f"- Offline conformance run: {c.get('status')}.")
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t.target} | {t.value} | {_met(t.met)} |" for t in judged]
    lines += sync_note(res)
    if baseline:
        lines += _baseline_section(res, baseline)
    return "\n".join(lines) + "\n"


def transport_sections(res: Results) -> list[str]:
    """The end-to-end sections: transports, 1,000 streams, the profile, conformance scale."""
    return _transport_section(res) + _concurrency_section(res) + _scale_section(res)


def _transport_section(res: Results) -> list[str]:
    kinds = list(res.transport_chunks)
    if not kinds:
        return []

    def cell(key: str, kind: str) -> str:
        if key not in res.transport_rows:
            return f"n/a ({res.transport_unavailable.get(key, 'not measured')})"
        r = res.transport_rows[key].get(kind)
        return _cell(r["cpu_median_us"], r["cpu_min_us"]) if r else "n/a"

    cfg = res.config
    return [
        "## Transports: per chunk over loopback HTTP",
        "",
        f"Bodies of {', '.join(f'{k} {v:,}' for k, v in res.transport_chunks.items())} "
        "chunks (the same generators), served by `benchmarks/loopback.py`'s `BodyServer` "
        "in another process over 127.0.0.1, chunked, one HTTP chunk per SSE frame. Cells "
        "are CPU microseconds per chunk of this process (`time.process_time()`: the "
        "client alone, every thread), median over "
        f"{cfg['transport_repeats']} runs (openai-python: {cfg['transport_sdk_repeats']}) "
        "after a warm-up run that checks the result, minimum in brackets; contenders are "
        "interleaved run by run. The machine has 2 cores shared with other work: CPU time "
        "is used because wall time there is noisy; repeat runs move cells by about 5-10%.",
        "",
        *_md_table(_kind_table("CPU µs per chunk: median (min)", kinds, transports.ROWS, cell)),
        "",
    ]


def _concurrent_table(by_row: dict[str, Any], head: str, name: str, fmt: str) -> list[str]:
    """The 1,000-stream rows: field ``name`` of each (headed ``head``), CPU and wall s."""
    rows = [["row", head, "CPU s", "wall s"]]
    for key, v in by_row.items():
        rows.append(
            [
                CONCURRENT_ROWS.get(key, key),
                f"{v[name]:{fmt}}",
                f"{v['cpu_s']:.2f}",
                f"{v['wall_s']:.2f}",
            ]
        )
    return _md_table(rows)


def _concurrency_section(res: Results) -> list[str]:
    conc = res.concurrency
    if not conc:
        return []
    n = conc["streams"]
    out = [
        f"## {n:,} concurrent streams",
        "",
        f"{n:,} concurrent `astream()` calls (or their equivalent) of the "
        f"{conc['long_chunks_per_stream']}-chunk `text` body, from `BodyServer` (another "
        "process; asyncio, listen backlog 4,096, no thread per connection); each stream's "
        "text is checked complete and in order. Median of "
        f"{res.config['concurrent_rounds']} rounds after one that opens the connections.",
        "",
        *_concurrent_table(conc["long"], "chunks per CPU-second", "chunks_per_cpu_s", ",.0f"),
        "",
        f"{n:,} concurrent short streams from the emulator (`python -m "
        "provider_impl.emulator` in another process, its `text` scenario: about ten "
        "chunks, each stream echoing its own request, checked):",
        "",
        *_concurrent_table(conc["short"], "CPU ms per request", "cpu_ms_per_request", ".3f"),
        "",
    ]
    if "astream_httpx" in conc["short"]:
        out += [
            "On httpx's own transport a stream read to its end hands its connection back "
            "for reuse, and httpcore 1.0.9's pool then counts every connection once per "
            "idle one on each pool event (`_assign_requests_to_connections`). The round "
            "after the connections are opened pays for closing the surplus ones: one run "
            "gave 1.77, 5.87 and 1.63 s of CPU for three rounds, where the earlier reader "
            "(no reuse: a new connection per stream) gave 1.76, 2.02 and 2.08 s. For "
            "many concurrent calls use the aiohttp transport (the default with the extra); "
            "see docs/RELIABILITY.md.",
            "",
        ]
    prof = conc.get("short_profile")
    if prof:
        out += [
            "Where the client's time goes in one round of those short streams on the "
            "default client (cProfile own time by library; the profiler inflates Python "
            "calls, so read shares, not absolute numbers):",
            "",
            *_md_table(
                [["library", "share of own time"]]
                + [[k, f"{v * 100:.0f}%"] for k, v in prof.items()]
            ),
            "",
        ]
    return out


def _scale_section(res: Results) -> list[str]:
    sc = res.conformance_scale
    if sc.get("status") != "ran":
        return []
    rows = [["cassettes", "cells run", "wall s", "CPU s", "suite s"]]
    for p in sc["points"]:
        name = f"{p['label']}: {p['cassettes']}"
        if "error" in p:
            rows.append([name, p["error"], "", "", ""])
        else:
            rows.append(
                [
                    name,
                    str(p["cells"]),
                    f"{p['wall_s']:.2f}",
                    f"{p['cpu_s']:.2f}",
                    f"{p['suite_s']}",
                ]
            )
    per_cell = sc.get("per_cell_ms")
    return [
        "## Conformance at scale",
        "",
        "`provider-impl conformance --cassette-dir` in a fresh process over copies of "
        "`cassettes/` with none, half and all of the real-traffic cassettes, and with each "
        "real one twice (a copy under a new name): how the offline run grows with its "
        "cells.",
        "",
        *_md_table(rows),
        "",
        (
            f"A least-squares line through those points: {per_cell:.1f} ms of CPU per "
            f"cell, plus {sc['fixed_s']:.2f} s fixed (start-up, imports, the emulator "
            "matrix's own set-up)."
            if per_cell is not None
            else "Too few points for a per-cell cost."
        ),
        "",
    ]


def sync_note(res: Results) -> list[str]:
    """Where the sync stream's cost above its floor goes, from this run's numbers."""
    kinds = list(res.transport_chunks)
    ours = [_tr(res, "stream_h11", k) for k in kinds]
    floor = [_tr(res, "floor_h11", k) for k in kinds]
    parse = [_tr(res, "parse", k) for k in kinds]
    mock = [res.rows.get("stream_mock", {}).get(k) for k in kinds]
    reads = [res.rows.get("decode_reads", {}).get(k) for k in kinds]
    if not kinds or None in ours or None in floor or None in parse:
        return []
    over = [o - f - p for o, f, p in zip(ours, floor, parse, strict=True)]  # type: ignore[operator]
    text = ", ".join(f"{k} {v:.2f} µs" for k, v in zip(kinds, over, strict=True))
    pump = ""
    if None not in mock and None not in reads:
        pump = (
            " Over a MockTransport (no sockets, 64 KiB pieces) `provider.stream()` costs "
            + ", ".join(
                f"{k} {m.cpu_median_us - r.cpu_median_us:+.2f} µs"  # type: ignore[union-attr]
                for k, m, r in zip(kinds, mock, reads, strict=True)
            )
            + " per chunk against `decode_stream` on the same pieces: the pump itself is "
            "nearly free when a read holds many frames."
        )
    return [
        "",
        "### The sync path",
        "",
        f"`stream()` against (h11 raw-bytes floor + `decode_stream`), CPU per chunk: {text} "
        "(negative: below the floor)."
        + pump
        + " A socket read over loopback brings many HTTP chunks (one SSE frame each), and "
        "httpcore hands them over one at a time through five generator layers; the pump then "
        "made one step per chunk. `stream()` now reads the body off httpcore's h11 connection "
        "itself (`provider_impl.transport.H11Body`): every chunk that has arrived, joined into "
        "one piece, with a socket read (through the same deadline wrapper) only when none has, "
        "so one pump step serves all the frames one read brought and nothing that has arrived "
        "waits for more. It is used only for the exact httpx 0.28 / httpcore 1.x HTTP/1.1 "
        "chain (anything else reads through httpx as before); `astream(async_transport="
        "'httpx')` gets the same reader, and awaits (arming its timeout) only for a socket "
        "read. Rejected on the way: saving the socket timeout per read (a 3,000-chunk stream "
        "makes about a dozen reads), and an httpcore-free sync transport (a hand-written "
        "HTTP/1.1 client with pooling, TLS, proxies and redirects; aiohttp has no sync API).",
    ]


def results_json(res: Results, judged: list[Judged]) -> dict[str, Any]:
    """The raw numbers and the judged targets (what ``--json`` and ``--save-baseline`` write)."""
    return asdict(res) | {"targets": [asdict(t) for t in judged]}
