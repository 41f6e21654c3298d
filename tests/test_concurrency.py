"""Many concurrent ``astream()`` calls against the loopback emulator.

Each stream sends its own request (a distinct user text; the emulator's
``text`` scenario echoes the last user message), so a stream that received
another stream's bytes, lost some, or got them twice shows up as a wrong echo
or a broken invariant. Open file descriptors are counted before the emulator
starts and after it stops (its sockets live in this process too), so the count
must return exactly to the baseline once the client is closed.

The normal suite runs 1,000 streams on one shared ``httpx.AsyncClient`` sized
for them (about 6 s here), and 200 and 1,000 on a provider's own default client,
on each async transport (aiohttp, httpx's h11; ``mode``, see ``conftest.py``).
Figures in docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from transports import MODES, PROVIDERS

from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider
from provider_impl.dialects import DIALECTS
from provider_impl.emulator import Emulator
from provider_impl.events import ContentBlockStart, Done, StreamEvent, TextDelta
from provider_impl.invariants import check_invariants


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def ensure_fd_room(needed: int) -> None:
    """Both ends of every connection live in this process: raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@dataclass
class LoadResult:
    streams: int
    seconds: float
    baseline_fds: int
    peak_fds: int
    after_fds: int
    emulator: dict[str, int]
    slowest_stream: float = 0.0

    def line(self) -> str:
        return (
            f"{self.streams} streams in {self.seconds:.2f}s "
            f"({self.streams / self.seconds:.0f}/s, slowest stream {self.slowest_stream:.2f}s); "
            f"fds baseline {self.baseline_fds}, "
            f"peak {self.peak_fds}, after {self.after_fds}; emulator {self.emulator}"
        )


def echo_text(events: list[StreamEvent]) -> str:
    text_blocks = {e.index for e in events if isinstance(e, ContentBlockStart)}
    return "".join(e.text for e in events if isinstance(e, TextDelta) and e.index in text_blocks)


async def run_load(
    n: int,
    client: str,
    *,
    providers_used: tuple[str, ...] = PROVIDERS,
    timeout: float | None = 60.0,
) -> LoadResult:
    """``n`` concurrent streams, spread over ``providers_used``.

    ``client``: ``"shared"`` is one ``httpx.AsyncClient`` with
    ``max_connections=n`` (100 kept alive) passed as ``async_http_client`` to every provider;
    ``"default"`` lets each provider make its own (httpx's default limits:
    100 connections, 20 kept alive). ``timeout=None``: the provider's default
    (60 s, connect 10 s; the pool wait is bounded by the 60 s too).
    """
    ensure_fd_room(2 * n + 100)
    gc.collect()
    baseline = open_fds()
    peak = baseline
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop_sampling.is_set():
            peak = max(peak, open_fds())
            await asyncio.sleep(0.005)

    emu = Emulator(backlog=4096)
    emu.start()
    shared: httpx.AsyncClient | None = None
    providers: dict[str, OpenAiCompatibleProvider] = {}
    try:
        kw: dict[str, Any] = {}
        if client == "shared":
            shared = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout or 60.0),
                # Keep-alive as DEFAULT_LIMITS: httpcore's pool rescans every idle
                # connection against all the others on each event (docs/RELIABILITY.md).
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=100),
            )
            kw["async_http_client"] = shared
        for name in providers_used:
            providers[name] = OpenAiCompatibleProvider(
                DIALECTS[name],
                api_key="sk-test-load-0123456789",
                base_url=emu.base_url(name),
                timeout=timeout,
                max_retries=0,  # a failure must show, not be papered over
                **kw,
            )

        slowest = 0.0

        async def one(i: int) -> tuple[int, str, list[StreamEvent]]:
            nonlocal slowest
            text = f"stream {i} says {i * 7919 % 100003} and nothing else #{i}"
            p = providers[providers_used[i % len(providers_used)]]
            req = CompletionRequest(messages=[Message.user(text)], max_tokens=64)
            started = time.monotonic()
            events = [ev async for ev in p.astream(req)]
            slowest = max(slowest, time.monotonic() - started)
            return i, text, events

        sampler = asyncio.create_task(sample())
        t0 = time.monotonic()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        seconds = time.monotonic() - t0
        stop_sampling.set()
        await sampler

        assert len(results) == n
        for i, text, events in results:
            check_invariants(events)
            assert isinstance(events[-1], Done), i
            got = echo_text(events)
            assert got == f"Echo: {text}", f"stream {i} got {got!r}"
    finally:
        stop_sampling.set()
        for p in providers.values():
            await p.aclose()  # closes only the clients the providers made themselves
        if shared is not None:
            await shared.aclose()
        # The server must see every client socket close by itself (before stop()).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            emulator = emu.stats.snapshot()
            if emulator["connections_opened"] == emulator["connections_closed"]:
                break
            await asyncio.sleep(0.02)
        emu.stop()
    gc.collect()
    deadline = time.monotonic() + 5
    while open_fds() != baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return LoadResult(n, seconds, baseline, peak, open_fds(), emulator, slowest)


def check(result: LoadResult) -> None:
    print(result.line())
    assert result.after_fds == result.baseline_fds, result.line()
    assert result.emulator["requests"] == result.streams
    assert result.emulator["streams_completed"] == result.streams
    assert result.emulator["streams_aborted_by_client"] == 0
    assert result.emulator["connections_opened"] == result.emulator["connections_closed"]


async def test_1000_concurrent_streams_each_get_their_own_events() -> None:
    """1,000 streams over the five providers on one shared AsyncClient sized for
    them: every stream completes with exactly its own echo, fds return to baseline."""
    result = await run_load(1000, "shared")
    check(result)
    # The streams really ran at once: most connections were open together.
    assert result.peak_fds >= result.baseline_fds + 1000


@pytest.mark.parametrize("mode", MODES[1:])
async def test_200_concurrent_streams_on_a_providers_default_client(mode: str) -> None:
    check(await run_load(200, "default", providers_used=("openai",)))


@pytest.mark.parametrize("mode", MODES[1:])
async def test_1000_concurrent_streams_on_a_providers_default_client(mode: str) -> None:
    """1,000 streams through one provider's own client and default timeout: the
    library's DEFAULT_LIMITS (1,000 connections) carry them without queueing in
    httpcore's pool, which rescans every waiter on each event (with httpx's
    default 100 connections this took ~50 s)."""
    check(await run_load(1000, "default", providers_used=("openai",), timeout=None))
