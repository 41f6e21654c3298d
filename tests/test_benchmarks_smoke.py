"""The benchmark harness runs end to end on tiny inputs, produces numbers, judges
every target of ``benchmarks.targets.TARGETS`` and reports it.

No timing target is asserted to be met here: that is what ``python -m
benchmarks.run`` and ``benchmarks/RESULTS.md`` are for. What is asserted is that
the judging works: numbers beyond a target's threshold are judged NOT met.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest

from benchmarks import bodies, contenders, measure, report, run, targets
from provider_impl import decode_stream
from provider_impl.events import Done, ToolUseComplete

TINY = replace(
    run.QUICK,
    n_chunks=40,
    repeats=1,
    sdk_repeats=1,
    mem_small=100,
    mem_large=400,
    latency_runs=2,
    trickle_wait=0.01,
    trickle_gap=0.001,
    conformance=False,
    openai=False,  # importing openai-python takes longer than this whole file should
    transport_chunks=40,
    transport_repeats=1,
    transport_sdk_repeats=1,
    concurrent=20,
    concurrent_chunks=20,
    concurrent_rounds=1,
    conformance_scale=False,
)


@pytest.fixture(scope="module")
def tiny() -> tuple[measure.Results, list[targets.Judged], float]:
    started = time.perf_counter()
    res, judged = run.run_suite(TINY)
    return res, judged, time.perf_counter() - started


def test_bodies_decode_cleanly() -> None:
    for kind in bodies.KINDS:
        data = bodies.body(kind, 40)
        assert bodies.count_chunks(data) == 40
        assert data.endswith(b"data: [DONE]\n\n")
        events = list(decode_stream(data, bodies.DIALECT[kind]))
        assert isinstance(events[-1], Done)
        # Lazily generated pieces give the same events as the whole body.
        pieces = bodies.iter_pieces(bodies.iter_frames(kind, 40), 100)
        assert list(decode_stream(pieces, bodies.DIALECT[kind])) == events
    tool_events = list(decode_stream(bodies.body("tools", 40), "openai"))
    calls = [e for e in tool_events if isinstance(e, ToolUseComplete)]
    assert len(calls) == 4 and all(c.input["city"] == "Paris" for c in calls)


def test_quick_suite_produces_numbers(
    tiny: tuple[measure.Results, list[targets.Judged], float],
) -> None:
    res, _, elapsed = tiny
    for key in ("floor_json", "decode_whole", "decode_reads", "stream_mock"):
        for kind in bodies.KINDS:
            stat = res.rows[key][kind]
            assert stat is not None and stat.median_us > 0 and stat.min_us > 0, (key, kind)
    assert "openai_mock" in res.unavailable
    for key in ("floor_orjson", "httpx_sse"):  # optional contenders: measured, or said why not
        assert key in res.unavailable or all(
            s is not None and s.median_us > 0 for s in res.rows[key].values()
        )
    assert set(res.rows) == set(measure.ROWS)
    assert res.memory["small_peak_bytes"] > 0 and res.memory["large_peak_bytes"] > 0
    assert res.latency["runs"] == 2 and res.latency["from_send_median_ms"] > 0
    for key in ("floor_h11", "floor_h11_async", "parse", "stream_h11", "astream_h11"):
        for kind in bodies.KINDS:
            assert res.transport_rows[key][kind]["cpu_median_us"] > 0, (key, kind)
    assert "openai_aiohttp" in res.transport_unavailable
    short = res.concurrency["short"]
    assert all(v["cpu_ms_per_request"] > 0 for v in short.values()) and short
    assert set(short) <= set(measure.CONCURRENT_ROWS)
    assert res.latency["async"]  # astream()'s first event, per async transport
    assert elapsed < 45


def test_every_target_is_judged_and_reported(
    tiny: tuple[measure.Results, list[targets.Judged], float],
) -> None:
    res, judged, _ = tiny
    assert [j.name for j in judged] == [t.name for t in targets.TARGETS]
    by_name = {j.name: j for j in judged}
    # Measured in a tiny run, so judged on numbers (whether met or not).
    for name in ("decode_vs_parse_floor", "memory_growth", "first_event_stream"):
        assert by_name[name].met is not None and by_name[name].values, name
        assert all(v > 0 for v in by_name[name].values.values()), name
    assert set(by_name["stream_vs_h11_floor"].values) == set(bodies.KINDS)
    # Left out of a tiny run: n/a, with the reason instead of numbers.
    assert by_name["stream_vs_openai_mock"].met is None
    assert "Config.openai=False" in by_name["stream_vs_openai_mock"].value
    assert by_name["conformance_time"].met is None
    assert "skipped" in by_name["conformance_time"].value
    text = report.render_text(res, judged)
    md = report.render_markdown(res, judged, "python -m benchmarks.run --tiny", None)
    for j in judged:
        assert f"[{report._met(j.met)}] {j.target}: {j.value}" in text
        assert f"| {j.target} | {j.value} | {report._met(j.met)} |" in md
    assert "{" not in "".join(j.target for j in judged)  # every label filled in
    assert "## Targets" in md and "## Transports: per chunk over loopback HTTP" in md
    for label in measure.ROWS.values():
        assert label in text and label in md
    assert f"## {TINY.concurrent:,} concurrent streams" in md


def test_targets_compare_rows_that_exist() -> None:
    assert len(targets.BY_NAME) == len(targets.TARGETS)
    for t in targets.TARGETS:
        if t.table is None:
            assert t.read is not None and not t.rows, t.name
        else:
            assert t.read is None and t.over and t.under, t.name
            assert set(t.rows) <= set(t.table.labels), t.name


# -- judging: numbers beyond the threshold are NOT met -----------------------------------


def _put_ratio(t: targets.Target, res: measure.Results, ratio: float) -> None:
    """Cells for ``t``'s rows whose sums give ``ratio`` on the text body."""
    assert t.table is not None
    cells = {row: ratio / len(t.over) for row in t.over}
    cells |= {row: 1.0 / len(t.under) for row in t.under}
    for row, v in cells.items():
        if t.table is targets.PER_CHUNK:
            res.chunks = {"text": 1}
            res.rows[row] = {"text": measure.Stat(v, v, 1, v, v)}
        elif t.table is targets.TRANSPORT:
            res.transport_chunks = {"text": 1}
            res.transport_rows[row] = {"text": {"cpu_median_us": v, "cpu_min_us": v}}
        else:
            which = "long" if t.table is targets.LONG else "short"
            res.concurrency.setdefault(which, {})[row] = {t.table.field: v}


def _httpx_latency(ms: float) -> dict[str, float]:
    return {"httpx_median_ms": ms, "httpx_max_ms": ms}


_PUT: dict[str, Callable[[measure.Results, float], None]] = {
    "memory_growth": lambda res, v: res.memory.update(
        growth_bytes=v * measure.MB, small_peak_bytes=1024, large_peak_bytes=1024 + v * measure.MB
    ),
    # One transport beyond: the target is NOT met although the others are flat.
    "memory_growth_transports": lambda res, v: res.memory.update(
        transports={
            "astream_default": {"small_peak_bytes": 1024, "large_peak_bytes": 2048},
            "stream_h11": {"small_peak_bytes": 1024, "large_peak_bytes": 1024 + v * measure.MB},
        }
    ),
    "first_event_stream": lambda res, v: res.latency.update(
        from_send_median_ms=v, from_send_max_ms=v, from_bytes_median_ms=v
    ),
    "first_event_astream": lambda res, v: res.latency.update(
        {"async": {"aiohttp_median_ms": 0.1, "aiohttp_max_ms": 0.1} | _httpx_latency(v)}
    ),
    "conformance_time": lambda res, v: res.conformance.update(
        status="ran", wall_s=v, cpu_s=v, cassettes=3, passed=3, failed=0
    ),
}


def _judge_at(t: targets.Target, value: float) -> targets.Judged:
    res = measure.Results(config=asdict(measure.FULL), machine={})
    if t.table is None:
        _PUT[t.name](res, value)
    else:
        _put_ratio(t, res, value)
    return targets.judge(t, res)


@pytest.mark.parametrize("t", targets.TARGETS, ids=lambda t: t.name)
def test_a_target_beyond_its_threshold_is_not_met(t: targets.Target) -> None:
    beyond = t.threshold * (0.9 if t.rule == ">=" else 1.1)
    within = t.threshold * (1.1 if t.rule == ">=" else 0.9)
    judged = _judge_at(t, beyond)
    assert judged.met is False, judged
    assert report._met(judged.met) == "NOT met"
    assert any(v == pytest.approx(beyond) for v in judged.values.values()), judged.values
    assert _judge_at(t, within).met is True
    # On the threshold itself: met unless the rule is strict.
    assert _judge_at(t, t.threshold).met is (t.rule != "<")


def test_a_ratio_target_is_not_met_when_one_body_misses() -> None:
    t = targets.BY_NAME["decode_vs_parse_floor"]
    res = measure.Results(config=asdict(measure.FULL), machine={})
    res.chunks = {"text": 1, "tools": 1}
    res.rows["floor_json"] = {k: measure.Stat(3.0, 3.0, 1, 3.0, 3.0) for k in res.chunks}
    res.rows["decode_whole"] = {
        "text": measure.Stat(3.3, 3.3, 1, 3.3, 3.3),
        "tools": measure.Stat(6.3, 6.3, 1, 6.3, 6.3),
    }
    judged = targets.judge(t, res)
    assert judged.met is False
    assert judged.values == pytest.approx({"text": 1.1, "tools": 2.1})
    assert judged.value.startswith("text 1.10x (3.30 vs 3.00 µs), tools 2.10x (6.30 vs 3.00 µs)")


def test_openai_contender() -> None:
    pytest.importorskip("openai")
    data = bodies.body("text", 20)
    try:
        client = contenders.openai_client(data)
    except Exception as exc:  # an openai-python built on another HTTP library
        pytest.skip(f"this openai-python cannot use httpx: {exc}")
    with client:
        assert contenders.consume_openai(client) == 20


def test_main_quick_writes_report(
    tiny: tuple[measure.Results, list[targets.Judged], float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command line: --quick runs the QUICK config and writes what it is asked to."""
    seen: list[measure.Config] = []

    def measured(cfg: measure.Config, log: measure.Log) -> measure.Results:
        seen.append(cfg)
        return tiny[0]  # this file's one tiny run stands in for measuring again

    monkeypatch.setattr(run, "QUICK", TINY)
    monkeypatch.setattr(run, "measure_all", measured)
    out = tmp_path / "RESULTS.md"
    raw = tmp_path / "results.json"
    run.main(["--quick", "--output", str(out), "--json", str(raw)])
    assert seen == [TINY]
    md = out.read_text()
    assert md.startswith("# Benchmark results") and "--quick" in md
    data = json.loads(raw.read_text())
    assert [t["name"] for t in data["targets"]] == [t.name for t in targets.TARGETS]
    assert set(data["rows"]) == set(measure.ROWS)
