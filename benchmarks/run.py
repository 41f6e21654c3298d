"""Streaming performance of provider_impl, side by side with the parse floor,
httpx-sse and openai-python, on the same generated bodies.

    python -m benchmarks.run            # full run (about 2 minutes), writes RESULTS.md
    python -m benchmarks.run --quick    # smoke run, a few seconds

See benchmarks/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from benchmarks import bodies, transports
from benchmarks.loopback import LoopbackServer
from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider, decode_stream
from provider_impl.events import TextDelta

__all__ = ["FULL", "QUICK", "Config", "main", "run_suite"]

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
READ_SIZE = 64 * 1024  # what httpcore asks the socket for; the mock transports use it too
REQUEST = CompletionRequest(messages=[Message(role="user", content="Benchmark, please.")])
MB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    n_chunks: int = 10_000
    repeats: int = 9  # timed runs per row and body (after one warm-up run)
    sdk_repeats: int = 5  # openai-python is ~50x slower; fewer runs keep the total short
    kinds: tuple[str, ...] = bodies.KINDS
    mem_small: int = 10_000
    mem_large: int = 200_000
    latency_runs: int = 20
    trickle_wait: float = 0.2  # headers, then this pause, then the first frame
    trickle_gap: float = 0.01
    conformance: bool = True
    openai: bool = True  # importing openai-python alone takes over a second
    # The transport rows (a server in another process): chunks per body, runs.
    transport_chunks: int = 3_000
    transport_repeats: int = 7
    transport_sdk_repeats: int = 3
    # 1,000 concurrent streams: how many, chunks of the long ones, timed rounds.
    concurrent: int = 1_000
    concurrent_chunks: int = 200
    concurrent_rounds: int = 2
    conformance_scale: bool = True


FULL = Config()
QUICK = Config(
    n_chunks=1_000,
    repeats=3,
    sdk_repeats=2,
    mem_small=2_000,
    mem_large=20_000,
    latency_runs=5,
    trickle_wait=0.05,
    conformance=False,
    transport_chunks=500,
    transport_repeats=2,
    transport_sdk_repeats=1,
    concurrent=100,
    concurrent_rounds=1,
    conformance_scale=False,
)

ROWS: dict[str, str] = {
    "a_json": "parse floor: split frames + json.loads",
    "a_orjson": "parse floor: split frames + orjson.loads",
    "b": "httpx-sse + json.loads, MockTransport",
    "c": "openai-python Stream, MockTransport",
    "d": "decode_stream, whole body",
    "d_reads": "decode_stream, 64 KiB reads",
    "e": "provider.stream(), MockTransport",
}


@dataclass
class Stat:
    """Per-chunk time in microseconds over repeated runs."""

    median_us: float
    min_us: float
    runs: int
    cpu_median_us: float = 0.0  # CPU time of the consuming thread (time.thread_time)
    cpu_min_us: float = 0.0

    def cell(self) -> str:
        return f"{self.median_us:.2f} ({self.min_us:.2f})"

    def cpu_cell(self) -> str:
        return f"{self.cpu_median_us:.2f} ({self.cpu_min_us:.2f})"


@dataclass
class Results:
    config: dict[str, Any]
    machine: dict[str, Any]
    chunks: dict[str, int] = field(default_factory=dict)
    rows: dict[str, dict[str, Stat | None]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    conformance: dict[str, Any] = field(default_factory=dict)
    transport_chunks: dict[str, int] = field(default_factory=dict)
    transport_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    transport_unavailable: dict[str, str] = field(default_factory=dict)
    concurrency: dict[str, Any] = field(default_factory=dict)
    conformance_scale: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


# -- machine ------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "provider_impl"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out or "unknown") + (" (+ uncommitted changes in provider_impl)" if dirty else "")


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "commit": _git_commit(),
        "load_average_at_start": _loadavg(),
        "packages": {
            d: _version(d)
            for d in ("provider-impl", "httpx", "httpx-sse", "openai", "pydantic", "orjson")
        },
    }


# -- timing -------------------------------------------------------------------


def _time_round_robin(
    contenders: list[tuple[str, Callable[[], object], int]],
) -> dict[str, list[tuple[float, float]]]:
    """Time each contender ``repeats`` times, interleaved run by run.

    Interleaving spreads any background load (this machine has 2 cores, shared
    with whatever else runs) over every contender alike, so the ratios hold.
    """
    # Park everything alive now (modules, bodies, clients) in the permanent generation, so
    # neither our collections nor the automatic ones walk openai's and pydantic's heaps.
    gc.collect()
    gc.freeze()
    times: dict[str, list[tuple[float, float]]] = {key: [] for key, _, _ in contenders}
    rounds = max((r for _, _, r in contenders), default=0)
    for i in range(rounds):
        for key, fn, repeats in contenders:
            if i >= repeats:
                continue
            gc.collect()
            c0 = time.thread_time()
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            c1 = time.thread_time()
            times[key].append((t1 - t0, c1 - c0))
    return times


def _stat(times: list[tuple[float, float]], n_chunks: int) -> Stat:
    wall = [t / n_chunks * 1e6 for t, _ in times]
    cpu = [c / n_chunks * 1e6 for _, c in times]
    return Stat(
        median_us=statistics.median(wall),
        min_us=min(wall),
        runs=len(wall),
        cpu_median_us=statistics.median(cpu),
        cpu_min_us=min(cpu),
    )


def _run(fn: Callable[[], object]) -> int:
    """Run a contender: it returns a count, or an iterator of events to consume."""
    out = fn()
    if isinstance(out, int):
        return out
    assert isinstance(out, Iterable)
    return _consume(out)


def _iterable(out: object) -> Iterable[object]:
    assert isinstance(out, Iterable)
    return out


def _consume(events: Iterable[object]) -> int:
    n = 0
    for _ in events:
        n += 1
    return n


# -- the contenders -------------------------------------------------------------


def _floor(data: bytes, loads: Callable[[bytes], object]) -> int:
    """The floor: cut frames on the blank line, strip ``data: ``, parse the JSON."""
    n = 0
    for frame in data.split(b"\n\n"):
        if frame.startswith(b"data: "):
            payload = frame[6:]
            if payload != b"[DONE]":
                loads(payload)
                n += 1
    return n


def floor_json(data: bytes) -> int:
    return _floor(data, json.loads)


def floor_orjson(data: bytes) -> int:
    import orjson

    return _floor(data, orjson.loads)


class _Pieces(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        data = self._data
        for i in range(0, len(data), READ_SIZE):
            yield data[i : i + READ_SIZE]


def mock_client(data: bytes) -> httpx.Client:
    """An httpx client whose every request gets a 200 SSE response with ``data``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Pieces(data)
        )

    return httpx.Client(transport=httpx.MockTransport(handler))


def httpx_sse_json(client: httpx.Client) -> int:
    from httpx_sse import connect_sse

    n = 0
    loads = json.loads
    with connect_sse(
        client, "POST", "http://bench.invalid/v1/chat/completions", json={"stream": True}
    ) as source:
        for sse in source.iter_sse():
            if sse.data != "[DONE]":
                loads(sse.data)
                n += 1
    return n


def openai_client(data: bytes) -> Any:
    """An openai-python client over a MockTransport; raises if this openai can't use httpx."""
    import openai

    client = openai.OpenAI(
        api_key="bench", base_url="http://bench.invalid/v1", http_client=mock_client(data)
    )
    if _consume_openai(client) < 1:
        raise RuntimeError("openai-python yielded no chunks")
    return client


def _consume_openai(client: Any) -> int:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Benchmark, please."}],
        stream=True,
    )
    n = 0
    for _chunk in stream:
        n += 1
    return n


def provider_for(kind: str, **kwargs: Any) -> OpenAiCompatibleProvider:
    dialect = bodies.DIALECT[kind]
    factory = getattr(OpenAiCompatibleProvider, dialect)
    provider: OpenAiCompatibleProvider = factory(api_key="bench-key", max_retries=0, **kwargs)
    return provider


# -- per-chunk rows -------------------------------------------------------------


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def measure_rows(cfg: Config, res: Results, log: Callable[[str], None]) -> None:
    have_orjson = _have("orjson")
    have_sse = _have("httpx_sse")
    if not have_orjson:
        res.unavailable["a_orjson"] = "orjson is not installed"
    if not have_sse:
        res.unavailable["b"] = "httpx-sse is not installed"
    for key in ROWS:
        res.rows[key] = {}
    with contextlib.ExitStack() as stack:
        for kind in cfg.kinds:
            frames = list(bodies.iter_frames(kind, cfg.n_chunks))
            data = b"".join(frames)
            n = bodies.count_chunks(data)
            res.chunks[kind] = n
            dialect = bodies.DIALECT[kind]
            reads = bodies.pieces(data, READ_SIZE)
            log(f"  {kind}: {n:,} chunks, {len(data) / MB:.2f} MB")
            reference = list(decode_stream(data, dialect))
            mock_provider = stack.enter_context(provider_for(kind, http_client=mock_client(data)))
            contenders: list[tuple[str, Callable[[], object], int]] = [
                ("a_json", partial(floor_json, data), cfg.repeats),
                ("d", partial(decode_stream, data, dialect), cfg.repeats),
                ("d_reads", partial(decode_stream, reads, dialect), cfg.repeats),
                ("e", partial(mock_provider.stream, REQUEST), cfg.repeats),
            ]
            if have_orjson:
                contenders.append(("a_orjson", partial(floor_orjson, data), cfg.repeats))
            if have_sse:
                sse_client = stack.enter_context(mock_client(data))
                contenders.append(("b", partial(httpx_sse_json, sse_client), cfg.repeats))
            if not cfg.openai:
                res.unavailable["c"] = "left out of this run (Config.openai=False)"
            if "c" not in res.unavailable:
                try:
                    oa = openai_client(data)
                except Exception as exc:  # an openai that needs another HTTP library
                    res.unavailable["c"] = (
                        f"openai-python unusable here: {type(exc).__name__}: {exc}"
                    )
                else:
                    stack.callback(oa.close)
                    contenders.append(("c", partial(_consume_openai, oa), cfg.sdk_repeats))
            # The warm-up run doubles as the check: every contender saw every chunk, and
            # every path of this library yields the same events.
            for key, fn, _ in contenders:
                out = fn()
                ok = out == n if isinstance(out, int) else list(_iterable(out)) == reference
                if not ok:
                    raise AssertionError(f"{ROWS[key]} disagrees on the {kind} body")
            timed: list[tuple[str, Callable[[], object], int]] = [
                (key, partial(_run, fn), r) for key, fn, r in contenders
            ]
            for key, times in _time_round_robin(timed).items():
                res.rows[key][kind] = _stat(times, n)
    for key, reason in res.unavailable.items():
        res.rows[key] = dict.fromkeys(cfg.kinds)
        log(f"  ({key} not measured: {reason})")


# -- memory ---------------------------------------------------------------------


def peak_memory(n_chunks: int, kind: str = "text") -> int:
    """Peak traced bytes while consuming ``decode_stream`` over a lazily made body."""
    dialect = bodies.DIALECT[kind]
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        pieces = bodies.iter_pieces(bodies.iter_frames(kind, n_chunks), READ_SIZE)
        n = 0
        for _event in decode_stream(pieces, dialect):
            n += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n >= n_chunks - 3
    return peak - base


def measure_memory(cfg: Config, res: Results, log: Callable[[str], None]) -> None:
    small = peak_memory(cfg.mem_small)
    large = peak_memory(cfg.mem_large)
    res.memory = {
        "small_chunks": cfg.mem_small,
        "large_chunks": cfg.mem_large,
        "small_peak_bytes": small,
        "large_peak_bytes": large,
        "growth_bytes": large - small,
    }
    log(
        f"  peak {small / 1024:.0f} KiB at {cfg.mem_small:,} chunks, "
        f"{large / 1024:.0f} KiB at {cfg.mem_large:,} chunks"
    )


# -- first-event latency ----------------------------------------------------------


class _FirstBytes(httpx.SyncByteStream):
    """Notes when the first body bytes come out of httpx's transport."""

    def __init__(self, inner: httpx.SyncByteStream, sink: list[float]) -> None:
        self._inner = inner
        self._sink = sink

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if chunk and not self._sink:
                self._sink.append(time.perf_counter())
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _TimedTransport(httpx.BaseTransport):
    def __init__(self, sink: list[float]) -> None:
        self._inner = httpx.HTTPTransport()
        self._sink = sink

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_FirstBytes(response.stream, self._sink),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


def trickle_frames() -> list[bytes]:
    """A short OpenAI stream whose first frame already carries text."""
    frames = list(bodies.iter_frames("text", 8))
    first = json.loads(frames[0][6:])
    first["choices"][0]["delta"] = {"role": "assistant", "content": "Hello"}
    return [b"data: " + json.dumps(first, separators=(",", ":")).encode() + b"\n\n", *frames[1:]]


def measure_latency(cfg: Config, res: Results, log: Callable[[str], None]) -> None:
    sink: list[float] = []
    from_send: list[float] = []
    from_bytes: list[float] = []
    with LoopbackServer(
        trickle_frames=trickle_frames(), trickle_wait=cfg.trickle_wait, trickle_gap=cfg.trickle_gap
    ) as server:
        transport = _TimedTransport(sink)
        with provider_for(
            "text",
            base_url=server.base_url("trickle"),
            http_client=httpx.Client(transport=transport),
        ) as provider:
            for _ in range(cfg.latency_runs + 1):  # the first run warms the connection up
                sink.clear()
                t_event = None
                for ev in provider.stream(REQUEST):
                    if t_event is None and isinstance(ev, TextDelta):
                        t_event = time.perf_counter()
                assert t_event is not None and sink
                from_send.append(t_event - server.first_frame_sent[-1])
                from_bytes.append(t_event - sink[0])
            provider._sync_client().close()
    from_send, from_bytes = from_send[1:], from_bytes[1:]
    res.latency = {"async": _async_latency(cfg)}
    res.latency |= {
        "runs": len(from_send),
        "from_send_median_ms": statistics.median(from_send) * 1e3,
        "from_send_max_ms": max(from_send) * 1e3,
        "from_bytes_median_ms": statistics.median(from_bytes) * 1e3,
        "from_bytes_max_ms": max(from_bytes) * 1e3,
    }
    log(
        f"  first frame sent -> first TextDelta: median {res.latency['from_send_median_ms']:.3f} ms"
        f" (max {res.latency['from_send_max_ms']:.3f}); first body bytes out of httpx -> first"
        f" TextDelta: median {res.latency['from_bytes_median_ms']:.3f} ms"
    )


def _async_latency(cfg: Config) -> dict[str, float]:
    """First frame sent -> first ``TextDelta`` from ``astream()``, per async transport."""
    out: dict[str, float] = {}
    choices = ["aiohttp", "httpx"] if transports._have("aiohttp") else ["httpx"]
    with LoopbackServer(
        trickle_frames=trickle_frames(), trickle_wait=cfg.trickle_wait, trickle_gap=cfg.trickle_gap
    ) as server:
        for choice in choices:
            provider = provider_for(
                "text", base_url=server.base_url("trickle"), async_transport=choice
            )

            async def runs(p: OpenAiCompatibleProvider = provider) -> list[float]:
                got = []
                for _ in range(cfg.latency_runs + 1):
                    t_event = None
                    async for ev in p.astream(REQUEST):
                        if t_event is None and isinstance(ev, TextDelta):
                            t_event = time.perf_counter()
                    assert t_event is not None
                    got.append(t_event - server.first_frame_sent[-1])
                await p.aclose()
                return got[1:]

            got = asyncio.run(runs())
            out[f"{choice}_median_ms"] = statistics.median(got) * 1e3
            out[f"{choice}_max_ms"] = max(got) * 1e3
    return out


# -- conformance --------------------------------------------------------------------


def measure_conformance(cfg: Config, res: Results, log: Callable[[str], None]) -> None:
    if not cfg.conformance:
        res.conformance = {"status": "skipped (--quick)"}
        return
    cassettes = sorted((ROOT / "cassettes").rglob("*.yaml"))
    if not cassettes:
        res.conformance = {"status": "not yet available: no cassettes in cassettes/"}
        log("  not yet available: no cassettes in cassettes/")
        return
    run = transports.run_conformance(ROOT / "cassettes")
    wall, cpu, matrix = run.wall_s, run.cpu_s, run.matrix
    if matrix is None:
        res.conformance = {
            "status": f"did not run (exit {run.returncode}): {run.stderr.strip()[-300:]}"
        }
        log(f"  {res.conformance['status']}")
        return
    cells = matrix.get("cells", {}).values()
    passed = sum(1 for c in cells if c.get("status") == "pass")
    failed = sum(1 for c in cells if c.get("status") == "fail")
    res.conformance = {
        "status": "ran",
        "wall_s": wall,
        "cpu_s": cpu,
        "suite_s": matrix.get("wall_time_s"),
        "cassettes": len(cassettes),
        "passed": passed,
        "failed": failed,
        "exit": run.returncode,
    }
    log(
        f"  {wall:.2f} s wall ({cpu:.2f} s CPU), {passed} passed, {failed} failed, "
        f"{len(cassettes)} cassettes"
    )


# -- targets --------------------------------------------------------------------------


def evaluate(res: Results) -> None:
    targets: list[dict[str, Any]] = []
    kinds = list(res.chunks)

    def ratios(num: str, den: str, field: str = "median_us") -> dict[str, float] | None:
        out = {}
        for k in kinds:
            a, b = res.rows.get(num, {}).get(k), res.rows.get(den, {}).get(k)
            if a is None or b is None:
                return None
            out[k] = getattr(a, field) / getattr(b, field)
        return out

    def show(r: dict[str, float] | None, fmt: str) -> str | None:
        return None if r is None else ", ".join(f"{k} {v:{fmt}}x" for k, v in r.items())

    def also(num: str, den: str, fmt: str) -> str:
        by_min, by_cpu = ratios(num, den, "min_us"), ratios(num, den, "cpu_median_us")
        return f" (by min wall time: {show(by_min, fmt)}; by median CPU time: {show(by_cpu, fmt)})"

    r = ratios("d", "a_json")
    targets.append(
        {
            "target": "decode_stream (whole body) <= 2x the parse floor with json.loads, per chunk",
            "value": r and f"{show(r, '.2f')}{also('d', 'a_json', '.2f')}",
            "met": None if r is None else all(v <= 2.0 for v in r.values()),
        }
    )
    r = ratios("c", "e")
    targets.append(
        {
            "target": "provider.stream() >= 10x faster than openai-python, both on a "
            "MockTransport, per chunk",
            "value": r and f"{show(r, '.1f')}{also('c', 'e', '.1f')}",
            "met": None if r is None else all(v >= 10.0 for v in r.values()),
        }
    )
    m = res.memory
    if m:
        growth = m["growth_bytes"]
        targets.append(
            {
                "target": f"peak memory growth {m['small_chunks']:,} -> {m['large_chunks']:,} "
                "chunks < 10 MB",
                "value": f"{growth / MB:+.3f} MB ({m['small_peak_bytes'] / 1024:.0f} KiB -> "
                f"{m['large_peak_bytes'] / 1024:.0f} KiB)",
                "met": growth < 10 * MB,
            }
        )
    lat = res.latency
    if lat:
        targets.append(
            {
                "target": "first event within 5 ms of the first frame (median)",
                "value": f"{lat['from_send_median_ms']:.3f} ms from send "
                f"(max {lat['from_send_max_ms']:.3f}); {lat['from_bytes_median_ms']:.3f} ms "
                "from first body bytes",
                "met": lat["from_send_median_ms"] <= 5.0,
            }
        )
    a = lat.get("async", {}) if lat else {}
    if a:
        worst = max(v for k, v in a.items() if k.endswith("_median_ms"))
        targets.append(
            {
                "target": "astream(): first event within 5 ms of the first frame (median), "
                "on each async transport",
                "value": ", ".join(
                    f"{k.removesuffix('_median_ms')} {v:.3f} ms (max "
                    f"{a[k.replace('median', 'max')]:.3f})"
                    for k, v in a.items()
                    if k.endswith("_median_ms")
                ),
                "met": worst <= 5.0,
            }
        )
    targets.extend(transport_targets(res))
    c = res.conformance
    if c.get("status") == "ran":
        targets.append(
            {
                "target": "full offline conformance run < 10 s on 2 cores",
                "value": f"{c['wall_s']:.2f} s wall, {c['cpu_s']:.2f} s CPU "
                f"({c['cassettes']} cassettes; {c['passed']} passed, {c['failed']} failed)",
                "met": c["wall_s"] < 10.0,
            }
        )
    else:
        targets.append(
            {
                "target": "full offline conformance run < 10 s on 2 cores",
                "value": c.get("status", "not measured"),
                "met": None,
            }
        )
    res.targets = targets


def _tr(res: Results, key: str, kind: str) -> float | None:
    row = res.transport_rows.get(key, {}).get(kind)
    return None if row is None else float(row["cpu_median_us"])


def transport_targets(res: Results) -> list[dict[str, Any]]:
    """Issue 13's targets, judged on CPU time of the client process (medians)."""
    out: list[dict[str, Any]] = []
    kinds = list(res.transport_chunks)

    def ratio_target(label: str, num: str, floors: tuple[str, ...], limit: float) -> dict[str, Any]:
        parts, ok = [], True
        for k in kinds:
            n = _tr(res, num, k)
            fl = [_tr(res, f, k) for f in floors]
            if n is None or any(f is None for f in fl):
                return {"target": label, "value": "not measured", "met": None}
            floor = sum(f for f in fl if f is not None)
            r = n / floor
            ok = ok and r <= limit
            parts.append(f"{k} {r:.2f}x ({n:.2f} vs {floor:.2f} µs)")
        return {"target": label, "value": ", ".join(parts), "met": ok}

    if kinds:
        out.append(
            ratio_target(
                "astream(), default client (aiohttp), <= 1.25x (aiohttp raw-bytes floor + "
                "decode_stream), CPU per chunk",
                "astream_default",
                ("floor_aiohttp", "parse"),
                1.25,
            )
        )
        parts, ok = [], True
        for k in kinds:
            ours, theirs = _tr(res, "astream_default", k), _tr(res, "openai_aiohttp", k)
            if ours is None or theirs is None:
                ok = None  # type: ignore[assignment]
                break
            parts.append(f"{k} {theirs / ours:.1f}x")
            ok = ok and theirs / ours >= 10
        out.append(
            {
                "target": "astream(), default client, >= 10x cheaper per chunk than openai-python "
                "with its aiohttp client",
                "value": ", ".join(parts) if parts else "not measured",
                "met": ok if parts else None,
            }
        )
        out.append(
            ratio_target(
                "stream() (sync, h11) <= 1.15x (h11 raw-bytes floor + decode_stream), CPU per "
                "chunk",
                "stream_h11",
                ("floor_h11", "parse"),
                1.15,
            )
        )
    conc = res.concurrency
    long, short = conc.get("long", {}), conc.get("short", {})
    if "astream_aiohttp" in long and "openai_aiohttp" in long:
        r = long["astream_aiohttp"]["chunks_per_cpu_s"] / long["openai_aiohttp"]["chunks_per_cpu_s"]
        out.append(
            {
                "target": f"{conc['streams']:,} concurrent streams of {conc['long_chunks']} "
                "chunks: >= 5x the chunks per CPU-second of openai-python with its aiohttp "
                "client, every stream complete and in order",
                "value": f"{r:.1f}x ({long['astream_aiohttp']['chunks_per_cpu_s']:,.0f} vs "
                f"{long['openai_aiohttp']['chunks_per_cpu_s']:,.0f} chunks per CPU-second; "
                "every stream checked)",
                "met": r >= 5,
            }
        )
    if "astream_aiohttp" in short and "floor_aiohttp" in short:
        ours = short["astream_aiohttp"]["cpu_ms_per_request"]
        floor = short["floor_aiohttp"]["cpu_ms_per_request"]
        out.append(
            {
                "target": f"{conc['streams']:,} concurrent short streams: client CPU per request "
                "<= 2x the aiohttp raw-bytes floor",
                "value": f"{ours / floor:.2f}x ({ours:.3f} vs {floor:.3f} ms)",
                "met": ours / floor <= 2,
            }
        )
    return out


# -- running and reporting --------------------------------------------------------------


def run_suite(cfg: Config, log: Callable[[str], None] = lambda s: None) -> Results:
    t0 = time.perf_counter()
    res = Results(config=asdict(cfg), machine=machine_info())
    log(f"per-chunk times, {cfg.n_chunks:,}-chunk bodies:")
    measure_rows(cfg, res, log)
    log("memory (tracemalloc), decode_stream over a lazily generated text stream:")
    measure_memory(cfg, res, log)
    log(f"first-event latency, trickled loopback stream, {cfg.latency_runs} runs:")
    measure_latency(cfg, res, log)
    log(
        f"transports, {cfg.transport_chunks:,}-chunk bodies over loopback HTTP "
        "(server in another process), CPU of this process:"
    )
    rows, res.transport_unavailable = transports.measure_transport_rows(
        cfg.kinds,
        cfg.transport_chunks,
        cfg.transport_repeats,
        cfg.transport_sdk_repeats,
        log,
        cfg.openai,
    )
    res.transport_chunks = {
        k: bodies.count_chunks(bodies.body(k, cfg.transport_chunks)) for k in cfg.kinds
    }
    res.transport_rows = {
        key: {k: asdict(v) for k, v in by_kind.items()} for key, by_kind in rows.items()
    }
    log(f"{cfg.concurrent:,} concurrent streams:")
    res.concurrency = transports.measure_concurrency(
        cfg.concurrent, cfg.concurrent_chunks, cfg.concurrent_rounds, cfg.openai, log
    )
    log("offline conformance run:")
    measure_conformance(cfg, res, log)
    if cfg.conformance_scale:
        log("conformance run time as the cassettes grow:")
        res.conformance_scale = transports.measure_conformance_scale(log)
    evaluate(res)
    gc.unfreeze()
    res.machine["load_average_at_end"] = _loadavg()
    res.elapsed_s = time.perf_counter() - t0
    return res


def _met(flag: bool | None) -> str:
    return "n/a" if flag is None else ("met" if flag else "NOT met")


def table_rows(res: Results, cpu: bool = False) -> list[list[str]]:
    kinds = list(res.chunks)
    head = "CPU µs per chunk: median (min)" if cpu else "per chunk, µs: median (min)"
    rows = [[head, *kinds]]
    for key, label in ROWS.items():
        cells = res.rows.get(key, {})
        rows.append(
            [
                label,
                *(
                    ((s.cpu_cell() if cpu else s.cell()) if (s := cells.get(k)) else "n/a")
                    for k in kinds
                ),
            ]
        )
    return rows


def render_text(res: Results) -> str:
    rows = table_rows(res)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for t in res.targets:
        lines.append(f"[{_met(t['met'])}] {t['target']}: {t['value']}")
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
    for key in ("a_json", "d", "d_reads", "e"):
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


def render_markdown(res: Results, command: str, baseline: dict[str, Any] | None) -> str:
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
    lines += [f"| {t['target']} | {t['value']} | {_met(t['met'])} |" for t in res.targets]
    lines += sync_note(res)
    if baseline:
        lines += _baseline_section(res, baseline)
    return "\n".join(lines) + "\n"


def transport_sections(res: Results) -> list[str]:
    """The end-to-end sections: transports, 1,000 streams, the profile, conformance scale."""
    kinds = list(res.transport_chunks)
    out: list[str] = []
    if kinds:
        head = ["CPU µs per chunk: median (min)", *kinds]
        rows = [head]
        for key, label in transports.ROWS.items():
            by_kind = res.transport_rows.get(key)
            if by_kind is None:
                reason = res.transport_unavailable.get(key, "not measured")
                rows.append([label, *([f"n/a ({reason})"] * len(kinds))])
                continue
            rows.append(
                [
                    label,
                    *(
                        f"{r['cpu_median_us']:.2f} ({r['cpu_min_us']:.2f})"
                        if (r := by_kind.get(k))
                        else "n/a"
                        for k in kinds
                    ),
                ]
            )
        cfg = res.config
        out += [
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
            *_md_table(rows),
            "",
        ]
    conc = res.concurrency
    if conc:
        n = conc["streams"]
        names = {
            "floor_aiohttp": "floor: aiohttp, raw bytes",
            "astream_aiohttp": "provider.astream(), default client (aiohttp)",
            "astream_httpx": "provider.astream(), async_transport='httpx' (h11)",
            "openai_aiohttp": "openai-python AsyncOpenAI, DefaultAioHttpClient",
        }
        rows = [["row", "chunks per CPU-second", "CPU s", "wall s"]]
        for key, v in conc["long"].items():
            rows.append(
                [
                    names.get(key, key),
                    f"{v['chunks_per_cpu_s']:,.0f}",
                    f"{v['cpu_s']:.2f}",
                    f"{v['wall_s']:.2f}",
                ]
            )
        out += [
            f"## {n:,} concurrent streams",
            "",
            f"{n:,} concurrent `astream()` calls (or their equivalent) of the "
            f"{conc['long_chunks_per_stream']}-chunk `text` body, from `BodyServer` (another "
            "process; asyncio, listen backlog 4,096, no thread per connection); each stream's "
            "text is checked complete and in order. Median of "
            f"{res.config['concurrent_rounds']} rounds after one that opens the connections.",
            "",
            *_md_table(rows),
            "",
        ]
        rows = [["row", "CPU ms per request", "CPU s", "wall s"]]
        for key, v in conc["short"].items():
            rows.append(
                [
                    names.get(key, key),
                    f"{v['cpu_ms_per_request']:.3f}",
                    f"{v['cpu_s']:.2f}",
                    f"{v['wall_s']:.2f}",
                ]
            )
        out += [
            f"{n:,} concurrent short streams from the emulator (`python -m "
            "provider_impl.emulator` in another process, its `text` scenario: about ten "
            "chunks, each stream echoing its own request, checked):",
            "",
            *_md_table(rows),
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
    sc = res.conformance_scale
    if sc.get("status") == "ran":
        rows = [["cassettes", "cells run", "wall s", "CPU s", "suite s"]]
        for p in sc["points"]:
            if "error" in p:
                rows.append([f"{p['label']}: {p['cassettes']}", p["error"], "", "", ""])
                continue
            rows.append(
                [
                    f"{p['label']}: {p['cassettes']}",
                    str(p["cells"]),
                    f"{p['wall_s']:.2f}",
                    f"{p['cpu_s']:.2f}",
                    f"{p['suite_s']}",
                ]
            )
        per_cell = sc.get("per_cell_ms")
        out += [
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
    return out


def sync_note(res: Results) -> list[str]:
    """Where the sync stream's cost above its floor goes, from this run's numbers."""
    kinds = list(res.transport_chunks)
    ours = [_tr(res, "stream_h11", k) for k in kinds]
    floor = [_tr(res, "floor_h11", k) for k in kinds]
    parse = [_tr(res, "parse", k) for k in kinds]
    mock = [res.rows.get("e", {}).get(k) for k in kinds]
    reads = [res.rows.get("d_reads", {}).get(k) for k in kinds]
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
        f"`stream()` above (h11 raw-bytes floor + `decode_stream`), CPU per chunk: {text}."
        + pump
        + " On real sockets h11 hands over one HTTP chunk per read, so each SSE frame is "
        "one read: one round trip through the call's generator and the pump, a deadline "
        "set and reset, and the parser fed one frame at a time (the whole-body floor "
        "parses all frames in one call). What was cut: the per-chunk loop inlined (one "
        "reused step, one clock read for the deadlines), httpx's `iter_raw` layer skipped "
        "for the transport's own byte stream, the parser's iterator replaced by a list, and "
        "a lone `data:` frame decoded without the general SSE line machinery. Not "
        "adopted: an httpcore-free sync transport (a hand-written HTTP/1.1 client with "
        "pooling, TLS, proxies and redirects to keep every behaviour; aiohttp has no sync "
        "API), and coalescing several h11 chunks per read (httpcore cannot say whether the "
        "next chunk is already buffered without a blocking read, which would hold back "
        "events that have arrived).",
    ]


def results_json(res: Results) -> dict[str, Any]:
    d = asdict(res)
    return d


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

    res = run_suite(cfg, log)
    print()
    print(render_text(res))
    print(f"\n{res.elapsed_s:.1f} s in all")
    raw = results_json(res)
    if args.save_baseline:
        args.baseline.write_text(json.dumps(raw, indent=2) + "\n")
        print(f"wrote {args.baseline}")
    baseline = None
    if not args.save_baseline and args.baseline.is_file():
        baseline = json.loads(args.baseline.read_text())
    output = args.output or (None if args.quick else HERE / "RESULTS.md")
    if output:
        output.write_text(render_markdown(res, command.strip(), baseline))
        print(f"wrote {output}")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
