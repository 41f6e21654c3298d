"""Measurement: the run's settings (``Config``), what it records (``Results``,
``Stat``) and the functions that time each part. Nothing here judges or renders:
``targets`` judges a ``Results``, ``report`` renders it.

Every row is named by a key of ``ROWS`` (per chunk, MockTransport), of
``transports.ROWS`` (over loopback HTTP) or of ``CONCURRENT_ROWS`` (1,000 streams).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from benchmarks import bodies, transports
from benchmarks.contenders import (
    READ_SIZE,
    REQUEST,
    consume,
    consume_openai,
    floor_json,
    floor_orjson,
    httpx_sse_json,
    mock_client,
    openai_client,
    provider_for,
)
from benchmarks.loopback import BodyServer, LoopbackServer
from benchmarks.transports import _have
from provider_impl import OpenAiCompatibleProvider, decode_stream
from provider_impl.events import TextDelta

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
Log = Callable[[str], None]


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
    # per chunk
    n_chunks=1_000,
    repeats=3,
    sdk_repeats=2,
    # memory, latency
    mem_small=2_000,
    mem_large=20_000,
    latency_runs=5,
    trickle_wait=0.05,
    # over loopback HTTP
    transport_chunks=500,
    transport_repeats=2,
    transport_sdk_repeats=1,
    concurrent=100,
    concurrent_rounds=1,
    # the conformance runs (seconds each) are left out
    conformance=False,
    conformance_scale=False,
)

#: The per-chunk rows (in-process, MockTransport), by name, in table order.
ROWS: dict[str, str] = {
    "floor_json": "parse floor: split frames + json.loads",
    "floor_orjson": "parse floor: split frames + orjson.loads",
    "httpx_sse": "httpx-sse + json.loads, MockTransport",
    "openai_mock": "openai-python Stream, MockTransport",
    "decode_whole": "decode_stream, whole body",
    "decode_reads": "decode_stream, 64 KiB reads",
    "stream_mock": "provider.stream(), MockTransport",
}
#: The rows of ``transports.measure_concurrency`` (long and short streams), by name.
CONCURRENT_ROWS: dict[str, str] = {
    "floor_aiohttp": "floor: aiohttp, raw bytes",
    "astream_aiohttp": "provider.astream(), default client (aiohttp)",
    "astream_httpx": "provider.astream(), async_transport='httpx' (h11)",
    "openai_aiohttp": "openai-python AsyncOpenAI, DefaultAioHttpClient",
}


@dataclass
class Stat:
    """Per-chunk time in microseconds over repeated runs."""

    median_us: float
    min_us: float
    runs: int
    cpu_median_us: float = 0.0  # CPU time of the consuming thread (time.thread_time)
    cpu_min_us: float = 0.0


@dataclass
class Results:
    """Everything one run measured; row tables are keyed by row name, then body kind."""

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
    return consume(_iterable(out))


def _iterable(out: object) -> Iterable[object]:
    assert isinstance(out, Iterable)
    return out


# -- per-chunk rows -------------------------------------------------------------


def measure_rows(cfg: Config, res: Results, log: Log) -> None:
    have_orjson = _have("orjson")
    have_sse = _have("httpx_sse")
    if not have_orjson:
        res.unavailable["floor_orjson"] = "orjson is not installed"
    if not have_sse:
        res.unavailable["httpx_sse"] = "httpx-sse is not installed"
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
                ("floor_json", partial(floor_json, data), cfg.repeats),
                ("decode_whole", partial(decode_stream, data, dialect), cfg.repeats),
                ("decode_reads", partial(decode_stream, reads, dialect), cfg.repeats),
                ("stream_mock", partial(mock_provider.stream, REQUEST), cfg.repeats),
            ]
            if have_orjson:
                contenders.append(("floor_orjson", partial(floor_orjson, data), cfg.repeats))
            if have_sse:
                sse_client = stack.enter_context(mock_client(data))
                contenders.append(("httpx_sse", partial(httpx_sse_json, sse_client), cfg.repeats))
            if not cfg.openai:
                res.unavailable["openai_mock"] = "left out of this run (Config.openai=False)"
            if "openai_mock" not in res.unavailable:
                try:
                    oa = openai_client(data)
                except Exception as exc:  # an openai that needs another HTTP library
                    res.unavailable["openai_mock"] = (
                        f"openai-python unusable here: {type(exc).__name__}: {exc}"
                    )
                else:
                    stack.callback(oa.close)
                    contenders.append(("openai_mock", partial(consume_openai, oa), cfg.sdk_repeats))
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


#: The end-to-end memory rows: a provider's stream over loopback HTTP, per transport
#: (the transport rows of the same names, run by the same contenders).
MEMORY_ROWS: dict[str, str] = {
    row: transports.ROWS[row] for row in ("stream_h11", "astream_default", "astream_h11")
}


@contextlib.contextmanager
def _traced() -> Iterator[list[int]]:
    """Trace allocations in the block; the list it gives holds, after it, the peak
    traced bytes above the start."""
    gc.collect()
    tracemalloc.start()
    peak: list[int] = []
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()


def peak_memory(n_chunks: int, kind: str = "text") -> int:
    """Peak traced bytes while consuming ``decode_stream`` over a lazily made body."""
    dialect = bodies.DIALECT[kind]
    with _traced() as peak:
        pieces = bodies.iter_pieces(bodies.iter_frames(kind, n_chunks), READ_SIZE)
        n = sum(1 for _ in decode_stream(pieces, dialect))
    assert n >= n_chunks - 3
    return peak[0]


def measure_memory(cfg: Config, res: Results, log: Log) -> None:
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


def _transport_peaks(row: str, server: BodyServer, sizes: tuple[int, ...]) -> list[int]:
    """``row``'s peak at each body size, through the transport rows' own contender;
    one stream first opens the connection (and, for async, the event loop's client),
    so the peak holds one stream alone."""
    peaks = []
    for n in sizes:
        with contextlib.ExitStack() as stack:
            contenders = transports._Contenders("text", server.base_url("text", n), stack)
            try:
                consume: Callable[[], int] = getattr(contenders, row)
                consume()  # warm-up
                with _traced() as peak:
                    got = consume()
            finally:
                contenders.close()
        assert got >= n, f"{row}: {got} events for {n} chunks"
        peaks.append(peak[0])
    return peaks


def measure_transport_memory(cfg: Config, res: Results, log: Log) -> None:
    """Peak traced memory of a whole text stream at two lengths, per transport."""
    out: dict[str, dict[str, int]] = {}
    with BodyServer() as server:
        for row in MEMORY_ROWS:
            if row == "astream_default" and not _have("aiohttp"):
                continue
            small, large = _transport_peaks(row, server, (cfg.mem_small, cfg.mem_large))
            out[row] = {"small_peak_bytes": small, "large_peak_bytes": large}
            log(
                f"  {MEMORY_ROWS[row]}: {small / 1024:.0f} KiB at {cfg.mem_small:,} chunks, "
                f"{large / 1024:.0f} KiB at {cfg.mem_large:,}"
            )
    res.memory["transports"] = out


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


def measure_latency(cfg: Config, res: Results, log: Log) -> None:
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
    choices = ["aiohttp", "httpx"] if _have("aiohttp") else ["httpx"]
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


def measure_conformance(cfg: Config, res: Results, log: Log) -> None:
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


# -- the whole run --------------------------------------------------------------------


def measure_all(cfg: Config, log: Log = lambda s: None) -> Results:
    """Every part of the run, in order; returns the numbers, not judged."""
    t0 = time.perf_counter()
    res = Results(config=asdict(cfg), machine=machine_info())
    log(f"per-chunk times, {cfg.n_chunks:,}-chunk bodies:")
    measure_rows(cfg, res, log)
    log("memory (tracemalloc), decode_stream over a lazily generated text stream:")
    measure_memory(cfg, res, log)
    log("memory (tracemalloc), a provider's text stream over loopback HTTP, per transport:")
    measure_transport_memory(cfg, res, log)
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
    gc.unfreeze()
    res.machine["load_average_at_end"] = _loadavg()
    res.elapsed_s = time.perf_counter() - t0
    return res
