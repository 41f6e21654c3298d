"""Faults over real sockets: the provider (sync and async) against the loopback
emulator, with the emulator injecting each fault (``x-emulator-fault``).

What each test proves is in its docstring and in docs/RELIABILITY.md. Every
test compares what the client delivered with a clean run of the same request
(the emulator is deterministic), so "the events already received were
delivered" and "no duplicated output" are exact comparisons, not counts.
Request counts come from the emulator's own log (``recent_requests``), keyed
by a per-test marker header; timing assertions have real lower bounds and
generous upper margins for a loaded machine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from transports import MODES, PROVIDERS

from provider_impl import (
    CompletionRequest,
    LlmError,
    Message,
    OpenAiCompatibleProvider,
    Overloaded,
    RateLimited,
    StreamError,
)
from provider_impl.dialects import DIALECTS
from provider_impl.emulator import Emulator
from provider_impl.errors import ConnectionFailed, RequestTimeout
from provider_impl.events import Done, StreamEvent, TextDelta
from provider_impl.invariants import check_invariants

READ_TIMEOUT = 0.3
# Upper margin for timing on a loaded 2-core machine; lower bounds stay exact.
MARGIN = 2.0


def _request(words: int = 12) -> CompletionRequest:
    tag = uuid.uuid4().hex[:8]
    text = " ".join(f"w{i}-{tag}" for i in range(words))
    return CompletionRequest(messages=[Message.user(text)], max_tokens=256)


class Run:
    """One provider, one marker header; builds providers and counts their requests."""

    def __init__(self, emu: Emulator, provider: str, mode: str) -> None:
        self.emu = emu
        self.provider = provider
        self.mode = mode
        self.marker = uuid.uuid4().hex

    def make(self, fault: str = "", **kw: Any) -> OpenAiCompatibleProvider:
        headers = {"x-test-marker": self.marker, **kw.pop("headers", {})}
        if fault:
            headers["x-emulator-fault"] = fault
            headers.setdefault("x-emulator-request-key", self.marker)
        kw.setdefault("timeout", 10.0)
        kw.setdefault("max_retries", 2)
        return OpenAiCompatibleProvider(
            DIALECTS[self.provider],
            api_key="sk-test-faults-0123456789",
            base_url=self.emu.base_url(self.provider),
            headers=headers,
            **kw,
        )

    def requests(self) -> int:
        """Requests the emulator received with this run's marker."""
        return sum(
            1
            for r in list(self.emu.recent_requests)
            if r["headers"].get("x-test-marker") == self.marker
        )

    async def collect(
        self, p: OpenAiCompatibleProvider, req: CompletionRequest
    ) -> tuple[list[StreamEvent], LlmError | None, float]:
        """All events until the end or an error; the error; the elapsed seconds."""
        events: list[StreamEvent] = []
        t0 = time.monotonic()
        try:
            if self.mode == "sync":
                try:
                    for ev in p.stream(req):
                        events.append(ev)
                finally:
                    p.close()
            else:
                try:
                    async for ev in p.astream(req):
                        events.append(ev)
                finally:
                    await p.aclose()
        except LlmError as err:
            return events, err, time.monotonic() - t0
        return events, None, time.monotonic() - t0


async def clean_events(run: Run, req: CompletionRequest) -> list[StreamEvent]:
    """The same request without a fault: what a full, correct stream looks like."""
    events, err, _ = await Run(run.emu, run.provider, run.mode).collect(run.make(), req)
    assert err is None
    check_invariants(events)
    return events


def wait_until(cond: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def all_connections_closed(emu: Emulator) -> bool:
    s = emu.stats.snapshot()
    return s["connections_opened"] == s["connections_closed"]


def assert_clean_prefix(got: list[StreamEvent], clean: list[StreamEvent]) -> None:
    """What was delivered before the error is exactly the start of the clean stream."""
    assert got == clean[: len(got)], "delivered events differ from the clean stream"
    assert not any(isinstance(e, Done) for e in got), "Done after a failure"
    check_invariants(got, complete=False)


# ----------------------------------------------------------------- reset


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_reset_mid_stream_is_a_stream_error_after_the_delivered_events(
    emu: Emulator, provider: str, mode: str
) -> None:
    """TCP reset after 2 data frames: the events of those frames are delivered,
    then StreamError (cause: the httpx error), no Done, no retry."""
    run = Run(emu, provider, mode)
    req = _request()
    clean = await clean_events(run, req)
    p = run.make("reset", headers={"x-emulator-fault-after": "2"})
    got, err, _ = await run.collect(p, req)
    assert isinstance(err, StreamError), repr(err)
    assert isinstance(err.__cause__, httpx.TransportError)
    assert any(isinstance(e, TextDelta) for e in got)
    assert_clean_prefix(got, clean)
    assert len(got) < len(clean)
    assert run.requests() == 2  # the clean run and the faulted one: no retry


# -------------------------------------------------------------- truncate


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_truncated_final_frame_is_a_stream_error(
    emu: Emulator, provider: str, mode: str
) -> None:
    """Half of the last JSON frame, then a clean end of body: StreamError, no Done."""
    run = Run(emu, provider, mode)
    req = _request()
    clean = await clean_events(run, req)
    got, err, _ = await run.collect(run.make("truncate"), req)
    assert isinstance(err, StreamError), repr(err)
    assert "truncated" in err.message
    assert_clean_prefix(got, clean)


@pytest.mark.parametrize("mode", MODES)
async def test_a_body_cut_inside_an_early_frame_is_a_stream_error(emu: Emulator, mode: str) -> None:
    run = Run(emu, "openai", mode)
    req = _request()
    clean = await clean_events(run, req)
    p = run.make("truncate", headers={"x-emulator-fault-after": "3"})
    got, err, _ = await run.collect(p, req)
    assert isinstance(err, StreamError)
    assert_clean_prefix(got, clean)
    assert len(got) < len(clean) - 3


# ----------------------------------------------------------------- stall


@pytest.mark.parametrize("mode", MODES)
async def test_a_stall_before_the_headers_is_a_request_timeout(emu: Emulator, mode: str) -> None:
    """Nothing for 10 s against a 0.3 s read timeout: RequestTimeout after >= 0.3 s
    and well before the stall ends; not retried; the server sees the client leave."""
    run = Run(emu, "glm", mode)
    before = emu.stats.snapshot()["streams_aborted_by_client"]
    p = run.make("stall", timeout=READ_TIMEOUT, headers={"x-emulator-stall-seconds": "10"})
    got, err, elapsed = await run.collect(p, _request())
    assert isinstance(err, RequestTimeout), repr(err)
    assert isinstance(err.__cause__, httpx.TimeoutException)
    assert got == []  # no Connected: no status ever arrived
    assert READ_TIMEOUT * 0.95 <= elapsed < READ_TIMEOUT + MARGIN, elapsed
    assert run.requests() == 1
    assert wait_until(lambda: emu.stats.streams_aborted_by_client > before)


@pytest.mark.parametrize(
    ("provider", "mode"), [("openai", "sync"), ("gemini", "async"), ("mistral", "async-h11")]
)
async def test_a_stall_mid_stream_is_a_request_timeout_after_the_delivered_events(
    emu: Emulator, provider: str, mode: str
) -> None:
    run = Run(emu, provider, mode)
    req = _request()
    clean = await clean_events(run, req)
    p = run.make(
        "stall",
        timeout=READ_TIMEOUT,
        headers={"x-emulator-stall-seconds": "10", "x-emulator-fault-after": "3"},
    )
    got, err, elapsed = await run.collect(p, req)
    assert isinstance(err, RequestTimeout), repr(err)
    assert_clean_prefix(got, clean)
    assert any(isinstance(e, TextDelta) for e in got)
    assert READ_TIMEOUT * 0.95 <= elapsed < READ_TIMEOUT + MARGIN, elapsed


async def test_a_stall_on_complete_is_a_request_timeout(emu: Emulator) -> None:
    run = Run(emu, "mistral", "sync")
    p = run.make("stall", timeout=READ_TIMEOUT, headers={"x-emulator-stall-seconds": "10"})
    t0 = time.monotonic()
    with pytest.raises(RequestTimeout):
        await p.acomplete(_request())
    elapsed = time.monotonic() - t0
    await p.aclose()
    assert READ_TIMEOUT * 0.95 <= elapsed < READ_TIMEOUT + MARGIN


# ------------------------------------------------------------ 503 then ok


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_503_then_success_is_one_retry_and_one_clean_stream(
    emu: Emulator, provider: str, mode: str
) -> None:
    """The first attempt gets 503 (before any event), the retry streams: the caller
    sees exactly the clean stream once, and the server got exactly two requests.
    A dialect whose 5xx are not worth retrying (retry_server_errors=False: each
    attempt is a CLI run) gets the typed error after the one request."""
    run = Run(emu, provider, mode)
    req = _request()
    clean = await clean_events(run, req)
    p = run.make("unavailable_then_ok", backoff_base=0.05)
    got, err, _ = await run.collect(p, req)
    if not DIALECTS[provider].retry_server_errors:
        assert isinstance(err, Overloaded) and err.status_code == 503, repr(err)
        assert got == [] and run.requests() == 1 + 1
        return
    assert err is None, repr(err)
    assert got == clean  # one Connected, no duplicated events, nothing lost
    assert run.requests() == 1 + 2


# --------------------------------------------------------------------- 429

#: The 429 tests sleep this share of each wait the provider asks for.
WAIT_SCALE = 0.1


def scaled_waits(p: OpenAiCompatibleProvider) -> list[float]:
    """The waits ``p`` asks for between attempts, in order. Each is slept for real,
    scaled by ``WAIT_SCALE``, so the retry still comes after a real pause without
    the run spending the server's whole Retry-After."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds * WAIT_SCALE)

    async def asleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds * WAIT_SCALE)

    p._sleep = sleep
    p._asleep = asleep
    return waits


@pytest.mark.parametrize("mode", MODES)
async def test_429_retry_after_is_waited_then_the_stream_is_clean(emu: Emulator, mode: str) -> None:
    """429 with Retry-After: 1, then success: the client waits the 1 s (the
    server's value, not its 0.01 s backoff) before the one retry."""
    run = Run(emu, "openai", mode)
    req = _request()
    clean = await clean_events(run, req)
    p = run.make("rate_limit", backoff_base=0.01, headers={"x-emulator-retry-after": "1"})
    waits = scaled_waits(p)
    got, err, elapsed = await run.collect(p, req)
    assert err is None, repr(err)
    assert got == clean
    assert run.requests() == 1 + 2
    assert waits == [1.0]
    assert WAIT_SCALE <= elapsed < WAIT_SCALE + MARGIN, elapsed


@pytest.mark.parametrize("mode", MODES)
async def test_429_retries_are_bounded_by_max_retries_then_rate_limited(
    emu: Emulator, mode: str
) -> None:
    """Refused every time: max_retries + 1 requests, a wait of the Retry-After (1 s)
    before each retry, then RateLimited(retry_after=1.0). (sync: max_retries=2;
    async: 1.)"""
    retries = 2 if mode == "sync" else 1
    run = Run(emu, "mistral", mode)
    p = run.make(
        "rate_limit",
        max_retries=retries,
        backoff_base=0.01,
        headers={"x-emulator-retry-after": "1", "x-emulator-fail-times": str(retries + 1)},
    )
    waits = scaled_waits(p)
    got, err, elapsed = await run.collect(p, _request())
    assert isinstance(err, RateLimited), repr(err)
    assert err.retry_after == 1.0 and err.status_code == 429
    assert got == []
    assert run.requests() == retries + 1
    assert waits == [1.0] * retries
    assert WAIT_SCALE * retries <= elapsed < WAIT_SCALE * retries + MARGIN, elapsed


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_with_no_retries_left_is_rate_limited_at_once(
    emu: Emulator, provider: str
) -> None:
    """Every dialect's 429 body and header: typed RateLimited, no wait, one request."""
    run = Run(emu, provider, "async")
    p = run.make("rate_limit", max_retries=0, headers={"x-emulator-retry-after": "1"})
    got, err, elapsed = await run.collect(p, _request())
    assert isinstance(err, RateLimited), repr(err)
    assert run.requests() == 1 and elapsed < 1.0
    if not DIALECTS[provider].features.rate_limit_status:
        # The limit arrives as a 200 reply naming its reset time (the Claude CLI's
        # usage-limit answer): the wait is until then, not the header's.
        assert err.reset_at is not None and err.status_code is None
        assert err.retry_after == pytest.approx(err.reset_at - time.time(), abs=5)
        return
    assert err.retry_after == 1.0
    assert got == []


async def test_a_retry_after_above_the_cap_is_not_waited(emu: Emulator) -> None:
    """Retry-After: 30 with max_retry_wait=5: RateLimited at once, no 30 s sleep."""
    run = Run(emu, "glm", "sync")
    p = run.make("rate_limit", max_retry_wait=5.0, headers={"x-emulator-retry-after": "30"})
    _, err, elapsed = await run.collect(p, _request())
    assert isinstance(err, RateLimited) and err.retry_after == 30.0
    assert run.requests() == 1 and elapsed < MARGIN


# ------------------------------------------------ errors after the first event


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_error_after_events_is_not_retried_and_nothing_is_duplicated(
    emu: Emulator, provider: str, mode: str
) -> None:
    """An in-band error after 2 frames, with retries available: the error is raised
    after the delivered events, the request is not sent again, no event repeats."""
    run = Run(emu, provider, mode)
    req = _request()
    clean = await clean_events(run, req)
    p = run.make("error_frame", max_retries=3, headers={"x-emulator-fault-after": "2"})
    got, err, _ = await run.collect(p, req)
    assert isinstance(err, LlmError), repr(err)
    assert_clean_prefix(got, clean)
    assert any(isinstance(e, TextDelta) for e in got)
    assert run.requests() == 1 + 1


# --------------------------------------------------- the client walks away


def _aborted(emu: Emulator) -> int:
    return emu.stats.snapshot()["streams_aborted_by_client"]


TRICKLE = {"x-emulator-trickle-ms": "200"}


@pytest.mark.parametrize("how", ["break", "close"])
def test_breaking_out_of_stream_closes_the_connection(emu: Emulator, how: str) -> None:
    """Leave a trickling stream after the first text: the server sees the client
    go (its stream is aborted, the connection closed) within a few frames."""
    assert wait_until(lambda: all_connections_closed(emu))
    before = _aborted(emu)
    run = Run(emu, "openai", "sync")
    p = run.make("trickle", headers=TRICKLE)
    t0 = time.monotonic()
    if how == "break":
        for ev in p.stream(_request(30)):
            if isinstance(ev, TextDelta):
                break  # the generator is dropped here and closed by the runtime
    else:
        gen = p.stream(_request(30))
        for ev in gen:
            if isinstance(ev, TextDelta):
                gen.close()
                break
    assert time.monotonic() - t0 < 3.0  # 30 trickled frames would take 6 s
    assert wait_until(lambda: _aborted(emu) > before, 3.0)
    p.close()
    assert wait_until(lambda: all_connections_closed(emu), 3.0)


@pytest.mark.parametrize("mode", MODES[1:])
async def test_aclose_closes_the_connection(emu: Emulator, mode: str) -> None:
    assert wait_until(lambda: all_connections_closed(emu))
    before = _aborted(emu)
    run = Run(emu, "gemini", mode)
    p = run.make("trickle", headers=TRICKLE)
    agen = p.astream(_request(30))
    async for ev in agen:
        if isinstance(ev, TextDelta):
            break
    await agen.aclose()
    await asyncio.sleep(0)
    assert wait_until(lambda: _aborted(emu) > before, 3.0)
    await p.aclose()
    assert wait_until(lambda: all_connections_closed(emu), 3.0)


@pytest.mark.parametrize("mode", MODES[1:])
async def test_cancelling_the_task_closes_the_connection(emu: Emulator, mode: str) -> None:
    assert wait_until(lambda: all_connections_closed(emu))
    before = _aborted(emu)
    run = Run(emu, "mistral", mode)
    p = run.make("trickle", headers=TRICKLE)
    first_text = asyncio.Event()
    seen: list[StreamEvent] = []

    async def consume() -> None:
        async for ev in p.astream(_request(30)):
            seen.append(ev)
            if isinstance(ev, TextDelta):
                first_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_text.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(isinstance(e, Done) for e in seen)
    for _ in range(300):
        if _aborted(emu) > before:
            break
        await asyncio.sleep(0.01)
    assert _aborted(emu) > before
    await p.aclose()
    for _ in range(300):
        if all_connections_closed(emu):
            break
        await asyncio.sleep(0.01)
    assert all_connections_closed(emu)


# ------------------------------------------------------- nobody listening


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused_is_connection_failed_after_the_retries(mode: str) -> None:
    with Emulator() as gone:
        url = gone.base_url("openai")
    p = OpenAiCompatibleProvider(
        DIALECTS["openai"], api_key="sk-test", base_url=url, max_retries=2, backoff_base=0.01
    )
    events: list[StreamEvent] = []
    with pytest.raises(ConnectionFailed) as info:
        if mode == "sync":
            events.extend(p.stream(_request()))
        else:
            async for ev in p.astream(_request()):
                events.append(ev)
    p.close()
    await p.aclose()
    assert events == []
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("mode", MODES)
async def test_streams_read_to_their_end_reuse_one_connection(emu: Emulator, mode: str) -> None:
    """A stream read to its end (through ``[DONE]`` and the HTTP message's end) hands
    its connection back to the pool: three calls in a row open one connection."""
    run = Run(emu, "openai", mode)
    p = run.make()
    before = emu.stats.snapshot()["connections_opened"]
    try:
        for _ in range(3):
            if mode == "sync":
                events = list(p.stream(_request()))
            else:
                events = [ev async for ev in p.astream(_request())]
            assert isinstance(events[-1], Done)
    finally:
        if mode == "sync":
            p.close()
        else:
            await p.aclose()
    assert emu.stats.snapshot()["connections_opened"] - before == 1
