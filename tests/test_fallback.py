"""FallbackProvider through the loopback emulator, sync and async (docs/FALLBACK.md).

Each provider in a chain carries its own marker header, so the emulator's
request log says exactly which provider was contacted and how often; faults
and errors come from the emulator (``x-emulator-scenario`` / ``x-emulator-fault``),
never from mocks. Costs are checked against the cost table's prices and each
provider's own token estimate, worked out here independently of the policy.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from provider_impl import (
    CompletionRequest,
    CompletionResponse,
    ContextLengthExceeded,
    FallbackProvider,
    InvalidRequest,
    LlmError,
    Message,
    OpenAiCompatibleProvider,
    RateLimited,
)
from provider_impl.costs import COST_TABLE
from provider_impl.dialects import DIALECTS
from provider_impl.emulator import Emulator
from provider_impl.errors import RequestTimeout
from provider_impl.events import Connected, TextDelta
from provider_impl.fallback import (
    CircuitBreaker,
    FallbackBudgetExceeded,
    FallbackEvent,
    NoProviderAvailable,
    ProviderSwitched,
)
from provider_impl.invariants import check_invariants
from provider_impl.response import response_from_events

MODES = ("sync", "async")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Chain:
    """Providers on the emulator, each with its own marker; counts their requests."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.markers: list[str] = []

    def make(
        self,
        provider: str,
        *,
        scenario: str = "text",
        fault: str = "",
        api_key: str = "sk-test-fallback-0123456789",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> OpenAiCompatibleProvider:
        marker = uuid.uuid4().hex
        self.markers.append(marker)
        h = {"x-test-marker": marker, "x-emulator-scenario": scenario, **(headers or {})}
        if fault:
            h["x-emulator-fault"] = fault
            h.setdefault("x-emulator-request-key", marker)
        kw.setdefault("timeout", 10.0)
        kw.setdefault("max_retries", 0)
        return OpenAiCompatibleProvider(
            DIALECTS[provider],
            api_key=api_key,
            base_url=self.emu.base_url(provider),
            headers=h,
            **kw,
        )

    def requests(self, i: int) -> int:
        """Requests the emulator received from the chain's provider ``i``."""
        return sum(
            1
            for r in list(self.emu.recent_requests)
            if r["headers"].get("x-test-marker") == self.markers[i]
        )


def _request(text: str = "Say hello to the fallback chain.") -> CompletionRequest:
    return CompletionRequest(
        messages=[Message.user(f"{text} {uuid.uuid4().hex[:6]}")], max_tokens=256
    )


async def collect(
    fb: FallbackProvider, req: CompletionRequest, mode: str
) -> tuple[list[FallbackEvent], LlmError | None]:
    events: list[FallbackEvent] = []
    try:
        if mode == "sync":
            for ev in fb.stream(req):
                events.append(ev)
        else:
            async for ev in fb.astream(req):
                events.append(ev)
    except LlmError as err:
        return events, err
    return events, None


async def complete(fb: FallbackProvider, req: CompletionRequest, mode: str) -> CompletionResponse:
    if mode == "sync":
        return fb.complete(req)
    return await fb.acomplete(req)


def _plain(events: list[FallbackEvent]) -> list[Any]:
    return [e for e in events if not isinstance(e, ProviderSwitched)]


def _switches(events: list[FallbackEvent]) -> list[ProviderSwitched]:
    return [e for e in events if isinstance(e, ProviderSwitched)]


# -- moving on: only before content, only on what another provider can cure -----------


CURABLE = {
    # name: (how the primary fails, the reason the switch reports)
    "rate_limit": ({"scenario": "error_rate_limit"}, "rate_limited"),
    "overloaded": ({"scenario": "error_overloaded"}, "overloaded"),
    "auth": ({"api_key": "invalid-key-for-fallback"}, "auth"),
    "timeout_before_first_event": (
        {"fault": "stall", "headers": {"x-emulator-stall-seconds": "3"}, "timeout": 0.3},
        "timeout",
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CURABLE))
async def test_curable_error_moves_the_stream_before_content(
    emu: Emulator, mode: str, case: str
) -> None:
    """A 429 (and each other curable error) on the primary moves the stream to the
    secondary before any content: the caller sees ProviderSwitched, then exactly the
    secondary's clean stream, and nothing of the primary."""
    chain = Chain(emu)
    how, reason = CURABLE[case]
    primary = chain.make("openai", **how)
    fb = FallbackProvider([primary, chain.make("mistral")])
    req = _request()
    events, err = await collect(fb, req, mode)
    assert err is None
    switch = _switches(events)
    assert events[0] is switch[0] and len(switch) == 1
    assert (switch[0].from_provider, switch[0].to_provider, switch[0].reason) == (
        "openai",
        "mistral",
        reason,
    )
    clean = list(chain.make("mistral").stream(req))
    assert _plain(events) == clean
    check_invariants(_plain(events), connected=True)
    assert chain.requests(0) == 1 and chain.requests(1) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_no_switch_after_the_first_content_event(emu: Emulator, mode: str) -> None:
    """A timeout (a curable kind) after text has been delivered is raised: the
    secondary is never asked, and what was delivered is the primary's own start."""
    chain = Chain(emu)
    primary = chain.make(
        "openai",
        fault="stall",
        headers={"x-emulator-fault-after": "3", "x-emulator-stall-seconds": "3"},
        timeout=0.3,
    )
    fb = FallbackProvider([primary, chain.make("mistral")])
    events, err = await collect(fb, _request(), mode)
    assert isinstance(err, RequestTimeout)
    assert any(isinstance(e, TextDelta) for e in events)
    assert not _switches(events)
    assert chain.requests(1) == 0


@pytest.mark.parametrize("mode", MODES)
async def test_an_error_no_provider_can_cure_is_raised(emu: Emulator, mode: str) -> None:
    chain = Chain(emu)
    fb = FallbackProvider([chain.make("openai", scenario="error_invalid_param"), chain.make("glm")])
    req = CompletionRequest(
        messages=[Message.user("x")], extra_body={"not_a_real_param": True}, max_tokens=64
    )
    events, err = await collect(fb, req, mode)
    assert isinstance(err, InvalidRequest) and events == []
    assert chain.requests(1) == 0


@pytest.mark.parametrize("mode", MODES)
async def test_context_length_goes_to_a_larger_window_only(emu: Emulator, mode: str) -> None:
    """OpenAI's window is full: Mistral (no larger) is skipped, Gemini (larger) is used."""
    chain = Chain(emu)
    fb = FallbackProvider(
        [
            chain.make("openai", scenario="error_context_length"),
            chain.make("mistral"),
            chain.make("gemini"),
        ]
    )
    events, err = await collect(fb, _request(), mode)
    assert err is None
    (switch,) = _switches(events)
    assert (switch.to_provider, switch.reason) == ("gemini", "context_length")
    assert chain.requests(1) == 0 and chain.requests(2) == 1
    # With no larger window in the chain the error itself comes back.
    chain2 = Chain(emu)
    fb2 = FallbackProvider(
        [chain2.make("openai", scenario="error_context_length"), chain2.make("mistral")]
    )
    _, err2 = await collect(fb2, _request(), mode)
    assert isinstance(err2, ContextLengthExceeded) and chain2.requests(1) == 0


@pytest.mark.parametrize("mode", MODES)
async def test_complete_falls_back_and_reports_the_switch(emu: Emulator, mode: str) -> None:
    chain = Chain(emu)
    seen: list[ProviderSwitched] = []
    fb = FallbackProvider(
        [chain.make("glm", scenario="error_rate_limit"), chain.make("openai")],
        on_switch=seen.append,
    )
    req = _request()
    reply = await complete(fb, req, mode)
    assert reply.text == chain.make("openai").complete(req).text
    assert [(s.from_provider, s.to_provider) for s in seen] == [("glm", "openai")]


# -- cost warnings and the budget ---------------------------------------------------


def _cost(provider: OpenAiCompatibleProvider, req: CompletionRequest) -> float:
    """USD for the prompt estimate and max_tokens at the table's prices."""
    price = COST_TABLE[f"{provider.dialect.pricing_key}:{provider.model}"]
    tokens = provider.count_tokens(req)
    return (tokens * price.input_per_mtok + req.max_tokens * price.output_per_mtok) / 1e6


@pytest.mark.parametrize("mode", MODES)
async def test_a_dearer_switch_warns_with_the_ratio(
    emu: Emulator, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """GLM -> the Claude proxy (Sonnet prices): several times dearer than the primary,
    so ProviderSwitched carries the ratio and a logging warning says so."""
    chain = Chain(emu)
    primary, secondary = (
        chain.make("glm", scenario="error_rate_limit"),
        chain.make("claude_subscription"),
    )
    req = _request()
    ratio = _cost(secondary, req) / _cost(primary, req)
    assert ratio > 3
    fb = FallbackProvider([primary, secondary])
    with caplog.at_level(logging.WARNING, logger="provider_impl.fallback"):
        events, err = await collect(fb, req, mode)
    assert err is None
    (switch,) = _switches(events)
    assert switch.over_cost_ratio and switch.cost_ratio == pytest.approx(ratio)
    assert switch.estimated_cost == pytest.approx(_cost(secondary, req))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{ratio:.1f}x" in r.getMessage() for r in warnings)


@pytest.mark.parametrize("mode", MODES)
async def test_a_cheaper_switch_does_not_warn(
    emu: Emulator, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    chain = Chain(emu)
    primary = chain.make("claude_subscription", scenario="error_overloaded")
    secondary = chain.make("glm")
    req = _request()
    fb = FallbackProvider([primary, secondary])
    with caplog.at_level(logging.WARNING, logger="provider_impl.fallback"):
        events, err = await collect(fb, req, mode)
    assert err is None
    (switch,) = _switches(events)
    assert not switch.over_cost_ratio
    assert switch.cost_ratio == pytest.approx(_cost(secondary, req) / _cost(primary, req))
    assert switch.cost_ratio is not None and switch.cost_ratio < 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("mode", MODES)
async def test_budget_refuses_a_dear_switch_with_a_typed_error(emu: Emulator, mode: str) -> None:
    chain = Chain(emu)
    primary = chain.make("glm", scenario="error_rate_limit")
    secondary = chain.make("claude_subscription")
    req = _request()
    budget = (_cost(primary, req) + _cost(secondary, req)) / 2  # the primary fits, not the switch
    fb = FallbackProvider([primary, secondary], budget=budget)
    events, err = await collect(fb, req, mode)
    assert isinstance(err, FallbackBudgetExceeded) and events == []
    assert (err.from_provider, err.to_provider) == ("glm", "claude_subscription")
    assert err.estimated_cost == pytest.approx(_cost(secondary, req)) and err.budget == budget
    assert isinstance(err.__cause__, RateLimited)
    assert chain.requests(1) == 0
    # complete() refuses the same way; a budget above the estimate lets it through.
    with pytest.raises(FallbackBudgetExceeded):
        await complete(FallbackProvider([primary, secondary], budget=budget), req, mode)
    roomy = FallbackProvider([primary, secondary], budget=_cost(secondary, req) * 1.01)
    assert (await complete(roomy, req, mode)).text


# -- the circuit breaker -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_breaker_opens_skips_then_half_opens_and_closes(emu: Emulator, mode: str) -> None:
    """Two consecutive failures open the primary's circuit; while open it is not
    contacted; after the cool-down one request probes it, and its success closes it."""
    chain = Chain(emu)
    clock = Clock()
    # The first two requests to the primary get 429 (retry-after 1 s), then it recovers.
    primary = chain.make(
        "openai",
        fault="rate_limit",
        headers={"x-emulator-fail-times": "2", "x-emulator-retry-after": "1"},
    )
    fb = FallbackProvider(
        [primary, chain.make("mistral")],
        breaker=CircuitBreaker(failure_threshold=2, cool_down=10.0),
        clock=clock,
    )
    req = _request()
    for expected_primary_requests in (1, 2):
        events, err = await collect(fb, req, mode)
        assert err is None and _switches(events)[0].reason == "rate_limited"
        assert chain.requests(0) == expected_primary_requests
        clock.now += 2  # past the 1 s retry-after hold
    assert fb.policy.state(0) == "open"
    events, err = await collect(fb, req, mode)
    assert err is None and _switches(events)[0].reason == "circuit_open"
    assert chain.requests(0) == 2  # skipped while open
    clock.now += 10
    assert fb.policy.state(0) == "half_open"
    events, err = await collect(fb, req, mode)
    assert err is None and not _switches(events)
    assert chain.requests(0) == 3 and chain.requests(1) == 3
    assert fb.policy.state(0) == "closed"


@pytest.mark.parametrize("mode", MODES)
async def test_breaker_reopens_when_the_probe_fails(emu: Emulator, mode: str) -> None:
    chain = Chain(emu)
    clock = Clock()
    primary = chain.make("openai", scenario="error_overloaded")
    fb = FallbackProvider(
        [primary, chain.make("glm")],
        breaker=CircuitBreaker(failure_threshold=1, cool_down=5.0),
        clock=clock,
    )
    await collect(fb, _request(), mode)
    assert fb.policy.state(0) == "open"
    clock.now += 5
    assert fb.policy.state(0) == "half_open"
    events, err = await collect(fb, _request(), mode)
    assert err is None and _switches(events)[0].reason == "overloaded"
    assert chain.requests(0) == 2 and fb.policy.state(0) == "open"


@pytest.mark.parametrize("mode", MODES)
async def test_breaker_honours_retry_after_below_the_threshold(emu: Emulator, mode: str) -> None:
    """One 429 that says "retry after 30 s" keeps the primary out for 30 s, although
    one failure is far below the threshold; after that it is asked again."""
    chain = Chain(emu)
    clock = Clock()
    primary = chain.make(
        "openai",
        fault="rate_limit",
        headers={"x-emulator-fail-times": "1", "x-emulator-retry-after": "30"},
    )
    fb = FallbackProvider(
        [primary, chain.make("mistral")],
        breaker=CircuitBreaker(failure_threshold=5, cool_down=1.0),
        clock=clock,
    )
    await collect(fb, _request(), mode)
    assert fb.policy.state(0) == "closed" and not fb.policy.available(0)
    clock.now += 29
    events, _ = await collect(fb, _request(), mode)
    assert chain.requests(0) == 1 and _switches(events)[0].reason == "circuit_open"
    clock.now += 2
    events, err = await collect(fb, _request(), mode)
    assert err is None and not _switches(events) and chain.requests(0) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_every_circuit_open_raises_no_provider_available(emu: Emulator, mode: str) -> None:
    chain = Chain(emu)
    clock = Clock()
    fb = FallbackProvider(
        [
            chain.make("openai", scenario="error_overloaded"),
            chain.make("glm", scenario="error_overloaded"),
        ],
        breaker=CircuitBreaker(failure_threshold=1, cool_down=7.0),
        clock=clock,
    )
    _, err = await collect(fb, _request(), mode)
    assert err is not None and err.provider == "glm"  # the last provider's own error
    _, err = await collect(fb, _request(), mode)
    assert isinstance(err, NoProviderAvailable) and err.retry_after == pytest.approx(7.0)
    assert chain.requests(0) == 1 and chain.requests(1) == 1


# -- the interface -------------------------------------------------------------------


def test_interface_is_a_providers(emu: Emulator) -> None:
    chain = Chain(emu)
    a, b = chain.make("glm"), chain.make("mistral")
    fb = FallbackProvider([a, b])
    req = _request()
    assert fb.build_request(req) == a.build_request(req)
    assert fb.count_tokens(req) == a.count_tokens(req)
    assert fb.capabilities.max_output_tokens == min(
        a.capabilities.max_output_tokens, b.capabilities.max_output_tokens
    )
    assert fb.capabilities.vision is False  # GLM has none
    # Bad input for the primary raises at the call, before any I/O.
    with pytest.raises(InvalidRequest):
        fb.stream(CompletionRequest(messages=[]))
    assert chain.requests(0) == 0
    # Past the primary the request goes without the primary's model and extra_body.
    dressed = CompletionRequest(messages=req.messages, model="glm-4.7", extra_body={"x": 1})
    body = fb.build_request_for(dressed, 1)
    assert body["model"] == b.model and "x" not in body
    with pytest.raises(ValueError):
        FallbackProvider([])
    with pytest.raises(ValueError):
        FallbackProvider([a], max_cost_ratio=0)


def test_stream_events_are_a_clean_stream_after_the_switch(emu: Emulator) -> None:
    """Connected and MessageStart are held until content, so a failed attempt leaves
    no half-started stream behind: one Connected, right after the switch."""
    chain = Chain(emu)
    fb = FallbackProvider([chain.make("openai", scenario="error_rate_limit"), chain.make("glm")])
    events = list(fb.stream(_request()))
    assert isinstance(events[0], ProviderSwitched) and isinstance(events[1], Connected)
    assert sum(isinstance(e, Connected) for e in events) == 1
    assert response_from_events(_plain(events)).text
