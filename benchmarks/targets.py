"""The targets: each one a named record in ``TARGETS`` (the rows it compares, the
threshold and how it is judged), judged against a ``measure.Results``.

A ratio target reads its rows from one table (``Table``), sums each side per
body kind (a floor may be two rows: raw bytes + parse) and compares every
ratio with the threshold; the other targets read one measured quantity. A
target whose rows were not measured is judged ``None`` ("n/a"), with the reason.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from benchmarks import transports
from benchmarks.measure import CONCURRENT_ROWS, MB, MEMORY_ROWS, ROWS, Results


@dataclass(frozen=True)
class Table:
    """Where a ratio target's rows live in ``Results``, and which field it compares."""

    labels: dict[str, str]  # the row names this table has
    cells: Callable[[Results, str], dict[str, Any]]  # a row's cells by part; a cell may be None
    parts: Callable[[Results], list[str]]  # the body kinds, or [""] for one cell a row
    unavailable: Callable[[Results], dict[str, str]]  # why a row was not measured
    field: str
    unit: str
    fmt: str  # how one of its numbers is printed
    also: tuple[tuple[str, str], ...] = ()  # other views printed beside: (what, field)


def _number(cell: Any, name: str) -> float:
    return float(cell[name] if isinstance(cell, dict) else getattr(cell, name))


def _concurrent(which: str) -> Callable[[Results, str], dict[str, Any]]:
    def cells(res: Results, row: str) -> dict[str, Any]:
        cell = res.concurrency.get(which, {}).get(row)
        return {} if cell is None else {"": cell}

    return cells


PER_CHUNK = Table(
    ROWS,
    lambda res, row: res.rows.get(row, {}),
    lambda res: list(res.chunks),
    lambda res: res.unavailable,
    "median_us",
    "µs",
    ".2f",
    also=(("by min wall time", "min_us"), ("by median CPU time", "cpu_median_us")),
)
TRANSPORT = Table(
    transports.ROWS,
    lambda res, row: res.transport_rows.get(row, {}),
    lambda res: list(res.transport_chunks),
    lambda res: res.transport_unavailable,
    "cpu_median_us",
    "µs",
    ".2f",
)
LONG = Table(
    CONCURRENT_ROWS,
    _concurrent("long"),
    lambda res: [""],
    lambda res: {},
    "chunks_per_cpu_s",
    "chunks per CPU-second",
    ",.0f",
)
SHORT = Table(
    CONCURRENT_ROWS,
    _concurrent("short"),
    lambda res: [""],
    lambda res: {},
    "cpu_ms_per_request",
    "ms",
    ".3f",
)

Rule = Literal["<", "<=", ">="]
_RULES: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Reading:
    """What a target compares with its threshold, by part, and the numbers as text."""

    values: dict[str, float]
    text: str


@dataclass(frozen=True)
class Target:
    name: str
    label: str  # formatted with the run's Config fields
    rule: Rule
    threshold: float
    # A ratio: the sum of ``over`` rows / the sum of ``under`` rows, in ``table``.
    table: Table | None = None
    over: tuple[str, ...] = ()
    under: tuple[str, ...] = ()
    digits: int = 2
    # Any other target: reads its one quantity (or says why it cannot).
    read: Callable[[Results], Reading | str] | None = None

    @property
    def rows(self) -> tuple[str, ...]:
        """The rows a ratio target compares (none for a single quantity)."""
        return self.over + self.under


@dataclass(frozen=True)
class Judged:
    name: str
    target: str
    value: str  # the numbers, or why there are none
    met: bool | None  # None: not measured in this run
    rule: str
    values: dict[str, float]


def _sides(res: Results, t: Target, name: str) -> dict[str, tuple[float, float]] | None:
    """Per part: field ``name`` summed over the ``over`` rows and over the ``under`` rows;
    None when a cell is missing."""
    assert t.table is not None
    out: dict[str, tuple[float, float]] = {}
    for part in t.table.parts(res):
        cells = [[t.table.cells(res, r).get(part) for r in rows] for rows in (t.over, t.under)]
        if any(c is None for side in cells for c in side):
            return None
        over, under = (sum(_number(c, name) for c in side) for side in cells)
        out[part] = (over, under)
    return out or None


def _show(sides: dict[str, tuple[float, float]], digits: int) -> str:
    return ", ".join(f"{k} {a / b:.{digits}f}x".lstrip() for k, (a, b) in sides.items())


def read_ratio(res: Results, t: Target) -> Reading | str:
    """Sum of ``over`` / sum of ``under``, per part, with both sides' numbers."""
    table = t.table
    assert table is not None
    sides = _sides(res, t, table.field)
    if sides is None:
        missing = table.unavailable(res)
        return "; ".join(f"{r}: {missing[r]}" for r in t.rows if r in missing) or "not measured"
    text = ", ".join(
        f"{k} {a / b:.{t.digits}f}x ({a:{table.fmt}} vs {b:{table.fmt}} {table.unit})".lstrip()
        for k, (a, b) in sides.items()
    )
    views = [(what, _sides(res, t, name)) for what, name in table.also]
    also = "; ".join(f"{what}: {_show(v, t.digits)}" for what, v in views if v is not None)
    ratios = {k: a / b for k, (a, b) in sides.items()}
    return Reading(ratios, text + (f" ({also})" if also else ""))


def read_memory(res: Results) -> Reading | str:
    m = res.memory
    if not m:
        return "not measured"
    growth = m["growth_bytes"] / MB
    return Reading(
        {"": growth},
        f"{growth:+.3f} MB ({m['small_peak_bytes'] / 1024:.0f} KiB -> "
        f"{m['large_peak_bytes'] / 1024:.0f} KiB)",
    )


def read_memory_transports(res: Results) -> Reading | str:
    rows = res.memory.get("transports")
    if not rows:
        return "not measured"
    growth = {r: (m["large_peak_bytes"] - m["small_peak_bytes"]) / MB for r, m in rows.items()}
    return Reading(
        growth,
        "; ".join(
            f"{MEMORY_ROWS[r]} {g:+.3f} MB ({rows[r]['small_peak_bytes'] / 1024:.0f} KiB -> "
            f"{rows[r]['large_peak_bytes'] / 1024:.0f} KiB)"
            for r, g in growth.items()
        ),
    )


def read_first_event(res: Results) -> Reading | str:
    lat = res.latency
    if "from_send_median_ms" not in lat:
        return "not measured"
    return Reading(
        {"": lat["from_send_median_ms"]},
        f"{lat['from_send_median_ms']:.3f} ms from send (max {lat['from_send_max_ms']:.3f}); "
        f"{lat['from_bytes_median_ms']:.3f} ms from first body bytes",
    )


def read_first_event_async(res: Results) -> Reading | str:
    a = res.latency.get("async", {})
    medians = {k.removesuffix("_median_ms"): v for k, v in a.items() if k.endswith("_median_ms")}
    if not medians:
        return "not measured"
    return Reading(
        medians,
        ", ".join(f"{k} {v:.3f} ms (max {a[f'{k}_max_ms']:.3f})" for k, v in medians.items()),
    )


def read_conformance(res: Results) -> Reading | str:
    c = res.conformance
    if c.get("status") != "ran":
        return str(c.get("status", "not measured"))
    return Reading(
        {"": c["wall_s"]},
        f"{c['wall_s']:.2f} s wall, {c['cpu_s']:.2f} s CPU "
        f"({c['cassettes']} cassettes; {c['passed']} passed, {c['failed']} failed)",
    )


TARGETS: tuple[Target, ...] = (
    Target(
        "decode_vs_parse_floor",
        "decode_stream (whole body) <= 2x the parse floor with json.loads, per chunk",
        "<=",
        2.0,
        PER_CHUNK,
        over=("decode_whole",),
        under=("floor_json",),
    ),
    Target(
        "stream_vs_openai_mock",
        "provider.stream() >= 10x faster than openai-python, both on a MockTransport, per chunk",
        ">=",
        10.0,
        PER_CHUNK,
        over=("openai_mock",),
        under=("stream_mock",),
        digits=1,
    ),
    Target(
        "memory_growth",
        "peak memory growth {mem_small:,} -> {mem_large:,} chunks < 10 MB",
        "<",
        10.0,
        read=read_memory,
    ),
    Target(
        "memory_growth_transports",
        "a provider's stream over loopback HTTP, on each transport: peak memory growth "
        "{mem_small:,} -> {mem_large:,} chunks < 10 MB",
        "<",
        10.0,
        read=read_memory_transports,
    ),
    Target(
        "first_event_stream",
        "first event within 5 ms of the first frame (median)",
        "<=",
        5.0,
        read=read_first_event,
    ),
    Target(
        "first_event_astream",
        "astream(): first event within 5 ms of the first frame (median), on each async transport",
        "<=",
        5.0,
        read=read_first_event_async,
    ),
    Target(
        "astream_vs_aiohttp_floor",
        "astream(), default client (aiohttp), <= 1.25x (aiohttp raw-bytes floor + "
        "decode_stream), CPU per chunk",
        "<=",
        1.25,
        TRANSPORT,
        over=("astream_default",),
        under=("floor_aiohttp", "parse"),
    ),
    Target(
        "astream_vs_openai_aiohttp",
        "astream(), default client, >= 10x cheaper per chunk than openai-python with its "
        "aiohttp client",
        ">=",
        10.0,
        TRANSPORT,
        over=("openai_aiohttp",),
        under=("astream_default",),
        digits=1,
    ),
    Target(
        "stream_vs_h11_floor",
        "stream() (sync, h11) <= 1.15x (h11 raw-bytes floor + decode_stream), CPU per chunk",
        "<=",
        1.15,
        TRANSPORT,
        over=("stream_h11",),
        under=("floor_h11", "parse"),
    ),
    Target(
        "concurrent_long_vs_openai",
        "{concurrent:,} concurrent streams of {concurrent_chunks} chunks: >= 5x the chunks per "
        "CPU-second of openai-python with its aiohttp client, every stream complete and in order",
        ">=",
        5.0,
        LONG,
        over=("astream_aiohttp",),
        under=("openai_aiohttp",),
        digits=1,
    ),
    Target(
        "concurrent_short_vs_floor",
        "{concurrent:,} concurrent short streams: client CPU per request <= 2x the aiohttp "
        "raw-bytes floor",
        "<=",
        2.0,
        SHORT,
        over=("astream_aiohttp",),
        under=("floor_aiohttp",),
    ),
    Target(
        "conformance_time",
        "full offline conformance run < 10 s on 2 cores",
        "<",
        10.0,
        read=read_conformance,
    ),
)
BY_NAME: dict[str, Target] = {t.name: t for t in TARGETS}


def judge(t: Target, res: Results) -> Judged:
    reading = t.read(res) if t.read is not None else read_ratio(res, t)
    rule = f"{t.rule} {t.threshold:g}"
    label = t.label.format(**res.config)
    if isinstance(reading, str):
        return Judged(t.name, label, reading, None, rule, {})
    check = _RULES[t.rule]
    met = all(check(v, t.threshold) for v in reading.values.values())
    return Judged(t.name, label, reading.text, met, rule, reading.values)


def judge_all(res: Results) -> list[Judged]:
    """Every target of ``TARGETS``, in order."""
    return [judge(t, res) for t in TARGETS]
