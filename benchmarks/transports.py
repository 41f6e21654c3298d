"""End-to-end rows (issue 13): the same bodies over real loopback HTTP, a server in
another process (``loopback.BodyServer``), so the client's CPU time is the
process's own (``time.process_time()``: every thread of this process, which
holds only the client).

* per chunk, by transport: the raw-bytes floors (httpx sync and async on h11,
  aiohttp), ``provider.stream()`` (h11), ``provider.astream()`` on its default
  client (aiohttp when installed) and on h11, openai-python sync, async and
  async with its aiohttp client;
* 1,000 concurrent streams of 200 chunks: chunks per CPU-second and wall time;
* 1,000 concurrent short streams from the emulator (its ``text`` scenario, in
  another process): client CPU per request, and a profile of where it goes;
* the conformance run as the cassette count grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import json
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks import bodies
from benchmarks.loopback import BodyServer
from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider, decode_stream
from provider_impl.events import Done, TextDelta

ROOT = Path(__file__).resolve().parent.parent
REQUEST = CompletionRequest(messages=[Message(role="user", content="Benchmark, please.")])
OPENAI_MESSAGES = [{"role": "user", "content": "Benchmark, please."}]

#: Named rows (never letters), in table order.
ROWS: dict[str, str] = {
    "floor_h11": "floor: httpx sync, raw bytes (h11)",
    "floor_h11_async": "floor: httpx async, raw bytes (h11)",
    "floor_aiohttp": "floor: aiohttp, raw bytes (llhttp, C)",
    "parse": "parse alone: decode_stream, whole body",
    "stream_h11": "provider.stream(), httpx (h11)",
    "astream_default": "provider.astream(), default client",
    "astream_h11": "provider.astream(), async_transport='httpx' (h11)",
    "openai_sync": "openai-python OpenAI, default",
    "openai_async": "openai-python AsyncOpenAI, default (httpx)",
    "openai_aiohttp": "openai-python AsyncOpenAI, DefaultAioHttpClient",
}
SLOW = frozenset({"openai_sync", "openai_async", "openai_aiohttp"})


@dataclass
class Row:
    """Per-chunk microseconds: CPU of this process (median, min) and wall (median)."""

    cpu_median_us: float
    cpu_min_us: float
    wall_median_us: float
    runs: int

    def cell(self) -> str:
        return f"{self.cpu_median_us:.2f} ({self.cpu_min_us:.2f})"


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _row(times: list[tuple[float, float]], n: int) -> Row:
    cpu = [c / n * 1e6 for c, _ in times]
    wall = [w / n * 1e6 for _, w in times]
    return Row(statistics.median(cpu), min(cpu), statistics.median(wall), len(cpu))


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - t0


# -- the contenders (each returns the number of chunks or events it saw) ------------


def _openai_kwargs(base_url: str) -> dict[str, Any]:
    return {"api_key": "bench", "base_url": base_url, "max_retries": 0}


class _Contenders:
    """Every contender for one body, with its clients, on one event loop."""

    def __init__(self, kind: str, url: str, stack: contextlib.ExitStack) -> None:
        self.kind = kind
        self.url = url
        self.post_url = url + "/chat/completions"
        self.loop = asyncio.new_event_loop()
        stack.callback(self.loop.close)
        self.stack = stack
        self.sync = httpx.Client()
        stack.callback(self.sync.close)
        dialect = bodies.DIALECT[kind]
        factory = getattr(OpenAiCompatibleProvider, dialect)
        self.p_sync = factory(api_key="bench-key", base_url=url, max_retries=0)
        self.p_default = factory(api_key="bench-key", base_url=url, max_retries=0)
        self.p_h11 = factory(
            api_key="bench-key", base_url=url, max_retries=0, async_transport="httpx"
        )
        self.httpx_async = httpx.AsyncClient()
        self.session: Any = None
        self.oa: dict[str, Any] = {}

    def run(self, coro: Coroutine[Any, Any, int]) -> int:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(auto_decompress=False)

    def close(self) -> None:
        async def shut() -> None:
            await self.httpx_async.aclose()
            await self.p_default.aclose()
            await self.p_h11.aclose()
            if self.session is not None:
                await self.session.close()
            for name, client in self.oa.items():
                if name != "openai_sync":
                    await client.close()

        self.run_none(shut())
        self.p_sync.close()
        if "openai_sync" in self.oa:
            self.oa["openai_sync"].close()

    def run_none(self, coro: Coroutine[Any, Any, None]) -> None:
        self.loop.run_until_complete(coro)

    # raw bytes
    def floor_h11(self) -> int:
        n = 0
        with self.sync.stream("POST", self.post_url, content=b"{}") as r:
            for chunk in r.iter_raw():
                n += len(chunk)
        return n

    async def _floor_h11_async(self) -> int:
        n = 0
        async with self.httpx_async.stream("POST", self.post_url, content=b"{}") as r:
            async for chunk in r.aiter_raw():
                n += len(chunk)
        return n

    def floor_h11_async(self) -> int:
        return self.run(self._floor_h11_async())

    async def _floor_aiohttp(self) -> int:
        if self.session is None:
            await self._open()
        n = 0
        async with self.session.post(self.post_url, data=b"{}") as r:
            async for chunk in r.content.iter_any():
                n += len(chunk)
        return n

    def floor_aiohttp(self) -> int:
        return self.run(self._floor_aiohttp())

    # this library
    def stream_h11(self) -> int:
        return sum(1 for _ in self.p_sync.stream(REQUEST))

    async def _astream(self, p: OpenAiCompatibleProvider) -> int:
        n = 0
        async for _ in p.astream(REQUEST):
            n += 1
        return n

    def astream_default(self) -> int:
        return self.run(self._astream(self.p_default))

    def astream_h11(self) -> int:
        return self.run(self._astream(self.p_h11))

    # openai-python
    def openai_client(self, key: str) -> Any:
        client = self.oa.get(key)
        if client is None:
            import openai

            kw = _openai_kwargs(self.url)
            if key == "openai_sync":
                client = openai.OpenAI(**kw)
            elif key == "openai_async":
                client = openai.AsyncOpenAI(**kw)
            else:
                client = openai.AsyncOpenAI(**kw, http_client=openai.DefaultAioHttpClient())
            self.oa[key] = client
        return client

    def openai_sync(self) -> int:
        stream = self.openai_client("openai_sync").chat.completions.create(
            model="gpt-4o-mini", messages=OPENAI_MESSAGES, stream=True
        )
        return sum(1 for _ in stream)

    async def _openai_async(self, key: str) -> int:
        stream = await self.openai_client(key).chat.completions.create(
            model="gpt-4o-mini", messages=OPENAI_MESSAGES, stream=True
        )
        n = 0
        async for _ in stream:
            n += 1
        return n

    def openai_async(self) -> int:
        return self.run(self._openai_async("openai_async"))

    def openai_aiohttp(self) -> int:
        return self.run(self._openai_async("openai_aiohttp"))


def measure_transport_rows(
    kinds: tuple[str, ...],
    n_chunks: int,
    repeats: int,
    sdk_repeats: int,
    log: Callable[[str], None],
    openai: bool = True,
) -> tuple[dict[str, dict[str, Row]], dict[str, str]]:
    """Per-chunk CPU time of every row on every body, interleaved run by run."""
    unavailable: dict[str, str] = {}
    if not _have("aiohttp"):
        unavailable["floor_aiohttp"] = "aiohttp is not installed"
    if not openai:
        for key in SLOW:
            unavailable[key] = "left out of this run (Config.openai=False)"
    elif not _have("openai"):
        for key in SLOW:
            unavailable[key] = "openai-python is not installed"
    elif not (_have("httpx_aiohttp") and _have("aiohttp")):
        unavailable["openai_aiohttp"] = "openai's aiohttp extra is not installed"
    rows: dict[str, dict[str, Row]] = {key: {} for key in ROWS if key not in unavailable}
    with BodyServer() as server, contextlib.ExitStack() as stack:
        for kind in kinds:
            data = bodies.body(kind, n_chunks)
            n = bodies.count_chunks(data)
            c = _Contenders(kind, server.base_url(kind, n_chunks), stack)
            dialect = bodies.DIALECT[kind]
            reference = len(list(decode_stream(data, dialect)))
            fns: dict[str, Callable[[], int]] = {
                "floor_h11": c.floor_h11,
                "floor_h11_async": c.floor_h11_async,
                "floor_aiohttp": c.floor_aiohttp,
                "parse": lambda d=data, dl=dialect: sum(1 for _ in decode_stream(d, dl)),  # type: ignore[misc]
                "stream_h11": c.stream_h11,
                "astream_default": c.astream_default,
                "astream_h11": c.astream_h11,
                "openai_sync": c.openai_sync,
                "openai_async": c.openai_async,
                "openai_aiohttp": c.openai_aiohttp,
            }
            fns = {k: v for k, v in fns.items() if k in rows}
            for key, fn in fns.items():  # warm-up, and the check
                out = fn()
                if key in ("parse", "stream_h11", "astream_default", "astream_h11"):
                    ok = out == reference
                elif key in SLOW:
                    ok = out >= n
                else:
                    ok = out == len(data)
                if not ok:
                    raise AssertionError(f"{ROWS[key]} disagrees on the {kind} body ({out})")
            times: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
            for i in range(repeats):
                for key, fn in fns.items():
                    if key in SLOW and i >= sdk_repeats:
                        continue
                    times[key].append(_timed(fn))
            for key, t in times.items():
                rows[key][kind] = _row(t, n)
            c.close()
            log(
                f"  {kind}: "
                + ", ".join(f"{k} {rows[k][kind].cpu_median_us:.2f}" for k in fns)
                + " (CPU µs per chunk)"
            )
    return rows, unavailable


# -- 1,000 concurrent streams --------------------------------------------------------


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _gather_timed(
    make: Callable[[int], Coroutine[Any, Any, Any]], n: int
) -> tuple[list[Any], float, float]:
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = await asyncio.gather(*(make(i) for i in range(n)))
    return out, time.process_time() - c0, time.perf_counter() - t0


def _text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def _conc_provider(
    base_url: str, n: int, rounds: int, transport: str, expect: Any, dialect: str = "openai"
) -> list[tuple[float, float]]:
    factory = getattr(OpenAiCompatibleProvider, dialect)
    p = factory(api_key="bench-key", base_url=base_url, max_retries=0, async_transport=transport)

    async def one(i: int) -> list[Any]:
        return [e async for e in p.astream(expect.request(i))]

    results = []
    try:
        for _ in range(rounds):
            out, cpu, wall = await _gather_timed(one, n)
            expect.check(out)
            results.append((cpu, wall))
    finally:
        await p.aclose()
    return results


async def _conc_aiohttp(url: str, n: int, rounds: int, expect: Any) -> list[tuple[float, float]]:
    import aiohttp

    results = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=n), auto_decompress=False
    ) as session:

        async def one(i: int) -> bytes:
            headers = {"authorization": "Bearer bench-key", "content-type": "application/json"}
            async with session.post(url, data=expect.body(i), headers=headers) as r:
                parts = [chunk async for chunk in r.content.iter_any()]
            return b"".join(parts)

        for _ in range(rounds):
            out, cpu, wall = await _gather_timed(one, n)
            expect.check_raw(out)
            results.append((cpu, wall))
    return results


async def _conc_openai(
    base_url: str, n: int, rounds: int, expect: Any
) -> list[tuple[float, float]]:
    import openai

    client = openai.AsyncOpenAI(
        **_openai_kwargs(base_url), http_client=openai.DefaultAioHttpClient()
    )

    async def one(i: int) -> list[Any]:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": expect.text(i)}],
            stream=True,
        )
        return [chunk async for chunk in stream]

    results = []
    try:
        for _ in range(rounds):
            out, cpu, wall = await _gather_timed(one, n)
            expect.check_openai(out)
            results.append((cpu, wall))
    finally:
        await client.close()
    return results


class _LongExpect:
    """Every stream of the generated 200-chunk body: complete and in order."""

    def __init__(self, n_chunks: int) -> None:
        data = bodies.body("text", n_chunks)
        self.data = data
        self.chunks = bodies.count_chunks(data)
        events = list(decode_stream(data, "openai"))
        self.events = len(events)
        self.full_text = _text_of(events)

    def request(self, i: int) -> CompletionRequest:
        return REQUEST

    def text(self, i: int) -> str:
        return "Benchmark, please."

    def body(self, i: int) -> bytes:
        return b'{"stream":true}'

    def check(self, out: list[list[Any]]) -> None:
        for events in out:
            if not isinstance(events[-1], Done) or _text_of(events) != self.full_text:
                raise AssertionError("a concurrent stream was incomplete or out of order")

    def check_raw(self, out: list[bytes]) -> None:
        if any(b"data: [DONE]" not in body for body in out):
            raise AssertionError("a raw stream was incomplete")

    def check_openai(self, out: list[list[Any]]) -> None:
        for chunks in out:
            text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
            if text != self.full_text:
                raise AssertionError("an openai-python stream was incomplete or out of order")


class _EchoExpect:
    """The emulator's ``text`` scenario echoes each request's own user text."""

    def request(self, i: int) -> CompletionRequest:
        return CompletionRequest(messages=[Message.user(self.text(i))], max_tokens=64)

    def text(self, i: int) -> str:
        return f"stream {i} says {i * 7919 % 100003}"

    def body(self, i: int) -> bytes:
        return json.dumps(
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": self.text(i)}],
                "max_tokens": 64,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()

    def check(self, out: list[list[Any]]) -> None:
        for i, events in enumerate(out):
            if not isinstance(events[-1], Done) or _text_of(events) != f"Echo: {self.text(i)}":
                raise AssertionError(f"short stream {i} did not get its own echo")

    def check_raw(self, out: list[bytes]) -> None:
        for i, body in enumerate(out):
            if b"[DONE]" not in body or self.text(i).split()[-1].encode() not in body:
                raise AssertionError(f"raw short stream {i} is wrong")

    def check_openai(self, out: list[list[Any]]) -> None:
        for i, chunks in enumerate(out):
            text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
            if text != f"Echo: {self.text(i)}":
                raise AssertionError(f"openai-python short stream {i} got {text!r}")


def _summarise(runs: list[tuple[float, float]], n: int, chunks: int) -> dict[str, float]:
    cpu = statistics.median(c for c, _ in runs)
    wall = statistics.median(w for _, w in runs)
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_ms_per_request": cpu / n * 1e3,
        "chunks_per_cpu_s": n * chunks / cpu,
        "runs": len(runs),
    }


def _start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "provider_impl.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.terminate()
        raise RuntimeError(f"the emulator did not start: {url!r}")
    return proc, url.rstrip("/")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_PROFILE_GROUPS = (
    ("aiohttp (HTTP, C parser glue)", ("/aiohttp/", "/yarl/", "/multidict/", "/aiohappyeyeballs/")),
    ("asyncio (event loop, tasks)", ("/asyncio/",)),
    ("httpx (Response objects)", ("/httpx/", "/httpcore/", "/h11/")),
    (
        "provider_impl parse (sse, stream, adapter, events)",
        (
            "provider_impl/sse.py",
            "provider_impl/stream.py",
            "provider_impl/adapter.py",
            "provider_impl/events.py",
        ),
    ),
    (
        "provider_impl request (payload, types, JSON encode)",
        ("provider_impl/payload.py", "provider_impl/types.py", "json/"),
    ),
    (
        "provider_impl call (provider, policy, aio, body)",
        (
            "provider_impl/provider.py",
            "provider_impl/policy.py",
            "provider_impl/aio.py",
            "provider_impl/body.py",
            "provider_impl/transport.py",
        ),
    ),
)


def _profile_groups(stats: pstats.Stats) -> dict[str, float]:
    """Own time (tottime) by library, as shares of the profiled total."""
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    whole = 0.0
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        whole += tottime
        for label, parts in _PROFILE_GROUPS:
            if any(p in filename for p in parts):
                totals[label] = totals.get(label, 0.0) + tottime
                break
        else:
            totals["other (builtins, gc, the benchmark)"] = (
                totals.get("other (builtins, gc, the benchmark)", 0.0) + tottime
            )
    return {k: v / whole for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


async def _profiled_short(base_url: str, n: int) -> dict[str, float]:
    expect = _EchoExpect()
    p = OpenAiCompatibleProvider.openai(api_key="bench-key", base_url=base_url, max_retries=0)

    async def one(i: int) -> list[Any]:
        return [e async for e in p.astream(expect.request(i))]

    await asyncio.gather(*(one(i) for i in range(n)))  # warm: connections, caches
    prof = cProfile.Profile()
    prof.enable()
    out = await asyncio.gather(*(one(i) for i in range(n)))
    prof.disable()
    await p.aclose()
    expect.check(out)
    return _profile_groups(pstats.Stats(prof))


def measure_concurrency(
    n: int, long_chunks: int, rounds: int, openai: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    """The 1,000-stream rows: long (200 chunks, BodyServer) and short (emulator)."""
    _raise_fd_limit(2 * n + 200)
    have_aiohttp = _have("aiohttp")
    have_oa = openai and _have("openai") and _have("httpx_aiohttp") and have_aiohttp
    out: dict[str, Any] = {"streams": n, "long_chunks": long_chunks, "long": {}, "short": {}}
    transports = ["aiohttp", "httpx"] if have_aiohttp else ["httpx"]
    long = _LongExpect(long_chunks)
    out["long_chunks_per_stream"] = long.chunks
    with BodyServer() as server:
        base = server.base_url("text", long_chunks)
        url = base + "/chat/completions"
        plan: list[tuple[str, Callable[[], Coroutine[Any, Any, list[tuple[float, float]]]]]] = []
        if have_aiohttp:
            plan.append(("floor_aiohttp", lambda: _conc_aiohttp(url, n, rounds + 1, long)))
        for tr in transports:
            plan.append(
                (f"astream_{tr}", lambda tr=tr: _conc_provider(base, n, rounds + 1, tr, long))  # type: ignore[misc]
            )
        if have_oa:
            # About 20 s a round at 1,000 x 200 chunks: one round, connections opened in it
            # (a small share of its time), so openai-python is if anything favoured.
            plan.append(("openai_aiohttp", lambda: _conc_openai(base, n, 1, long)))
        for key, make in plan:
            runs = asyncio.run(make())
            runs = runs[1:] or runs  # the first round opens the connections
            out["long"][key] = _summarise(runs, n, long.chunks)
            s = out["long"][key]
            log(
                f"  long, {key}: {s['chunks_per_cpu_s']:,.0f} chunks per CPU-second, "
                f"{s['wall_s']:.2f} s wall"
            )
    proc, emu_url = _start_emulator()
    try:
        base = emu_url + "/openai/v1"
        echo = _EchoExpect()
        post = base + "/chat/completions"
        plan = []
        if have_aiohttp:
            plan.append(("floor_aiohttp", lambda: _conc_aiohttp(post, n, rounds + 1, echo)))
        for tr in transports:
            plan.append(
                (f"astream_{tr}", lambda tr=tr: _conc_provider(base, n, rounds + 1, tr, echo))  # type: ignore[misc]
            )
        if have_oa:
            plan.append(("openai_aiohttp", lambda: _conc_openai(base, n, rounds + 1, echo)))
        for key, make in plan:
            runs = asyncio.run(make())[1:]
            out["short"][key] = _summarise(runs, n, 1)
            log(f"  short, {key}: {out['short'][key]['cpu_ms_per_request']:.3f} ms CPU per request")
        if have_aiohttp:
            out["short_profile"] = asyncio.run(_profiled_short(base, n))
    finally:
        _stop(proc)
    return out


# -- conformance at scale -----------------------------------------------------------


@dataclass
class ConformanceRun:
    """One ``provider-impl conformance`` run in a child process."""

    wall_s: float
    cpu_s: float  # the child's user + system time
    returncode: int
    stderr: str
    matrix: dict[str, Any] | None  # its --json report; None when it did not run


def run_conformance(cassette_dir: Path) -> ConformanceRun:
    """The main job over ``cassette_dir``, timed from outside (wall and child CPU)."""
    exe = shutil.which("provider-impl")
    cmd = [exe] if exe else [sys.executable, "-c", "from provider_impl.cli import main; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "matrix.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*cmd, "conformance", "--cassette-dir", str(cassette_dir), "--json", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        matrix = json.loads(out.read_text()) if out.is_file() else None
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ConformanceRun(wall, cpu, proc.returncode, proc.stderr, matrix)


def _conformance_once(cassette_dir: Path) -> dict[str, Any]:
    run = run_conformance(cassette_dir)
    if run.matrix is None:
        return {"error": f"exit {run.returncode}: {run.stderr.strip()[-300:]}"}
    cells = [c for c in run.matrix.get("cells", {}).values() if c.get("status") != "n/a"]
    return {
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "suite_s": run.matrix.get("wall_time_s"),
        "cells": len(cells),
        "passed": sum(1 for c in cells if c.get("status") == "pass"),
    }


def measure_conformance_scale(log: Callable[[str], None]) -> dict[str, Any]:
    """The offline run with none, half and all of the real-traffic cassettes, and with
    them twice over (copies under new names): how its time grows with the cells."""
    src = ROOT / "cassettes"
    real = sorted((src / "real").rglob("*.yaml")) if (src / "real").is_dir() else []
    if not real:
        return {"status": "no real-traffic cassettes in cassettes/real"}
    points = []
    rng = random.Random(13)
    for label, share, copies in (
        ("no real traffic", 0.0, 0),
        ("half the real traffic", 0.5, 1),
        ("all of it (the shipped set)", 1.0, 1),
        ("the real traffic twice over", 1.0, 2),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            dst = Path(tmp) / "cassettes"
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("real"))
            chosen = real if share >= 1 else rng.sample(real, int(len(real) * share))
            for path in chosen:
                rel = path.relative_to(src)
                for k in range(copies):
                    target = dst / rel
                    if k:
                        target = target.with_name(f"{target.stem}-copy{k}{target.suffix}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
            n_cassettes = sum(1 for _ in dst.rglob("*.yaml"))
            result = _conformance_once(dst)
        result.update(label=label, cassettes=n_cassettes)
        points.append(result)
        if "error" in result:
            log(f"  {label}: {result['error']}")
        else:
            log(
                f"  {label}: {n_cassettes} cassettes, {result['cells']} cells, "
                f"{result['wall_s']:.2f} s wall, {result['cpu_s']:.2f} s CPU"
            )
    good = [p for p in points if "error" not in p]
    slope = None
    if len(good) >= 2 and good[-1]["cells"] != good[0]["cells"]:
        xs = [p["cells"] for p in good]
        ys = [p["cpu_s"] for p in good]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        fixed = my - slope * mx
    return {
        "status": "ran",
        "points": points,
        "per_cell_ms": None if slope is None else slope * 1e3,
        "fixed_s": None if slope is None else fixed,
    }
