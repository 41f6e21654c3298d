"""The benchmark harness runs end to end on tiny inputs and produces numbers.

No timing target is asserted here: that is what ``python -m benchmarks.run``
and ``benchmarks/RESULTS.md`` are for.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest

from benchmarks import bodies, run
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


def test_quick_suite_produces_numbers(tmp_path: Path) -> None:
    started = time.perf_counter()
    res = run.run_suite(TINY)
    for key in ("a_json", "d", "d_reads", "e"):
        for kind in bodies.KINDS:
            stat = res.rows[key][kind]
            assert stat is not None and stat.median_us > 0 and stat.min_us > 0, (key, kind)
    assert "c" in res.unavailable
    for key in ("a_orjson", "b"):  # optional contenders: measured, or said why not
        assert key in res.unavailable or all(
            s is not None and s.median_us > 0 for s in res.rows[key].values()
        )
    assert res.memory["small_peak_bytes"] > 0 and res.memory["large_peak_bytes"] > 0
    assert res.latency["runs"] == 2 and res.latency["from_send_median_ms"] > 0
    for key in ("floor_h11", "floor_h11_async", "parse", "stream_h11", "astream_h11"):
        for kind in bodies.KINDS:
            assert res.transport_rows[key][kind]["cpu_median_us"] > 0, (key, kind)
    assert "openai_aiohttp" in res.transport_unavailable
    short = res.concurrency["short"]
    assert all(v["cpu_ms_per_request"] > 0 for v in short.values()) and short
    assert res.latency["async"]  # astream()'s first event, per async transport
    named = " | ".join(t["target"] for t in res.targets)
    for what in ("stream() (sync, h11)", "astream(), default client", "short streams"):
        assert what in named
    text = run.render_text(res)
    md = run.render_markdown(res, "python -m benchmarks.run --tiny", None)
    assert "decode_stream" in text and "## Targets" in md
    assert "## Transports: per chunk over loopback HTTP" in md and "concurrent" in md
    assert time.perf_counter() - started < 45


def test_openai_contender() -> None:
    pytest.importorskip("openai")
    data = bodies.body("text", 20)
    try:
        client = run.openai_client(data)
    except Exception as exc:  # an openai-python built on another HTTP library
        pytest.skip(f"this openai-python cannot use httpx: {exc}")
    with client:
        assert run._consume_openai(client) == 20


def test_main_quick_writes_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "QUICK", TINY)
    out = tmp_path / "RESULTS.md"
    raw = tmp_path / "results.json"
    run.main(["--quick", "--output", str(out), "--json", str(raw)])
    assert "# Benchmark results" in out.read_text()
    assert raw.read_text().startswith("{")
