"""Running a scenario's turns through a client: what recording and replay share.

One request, or two when the scenario sends the first reply's tool calls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from provider_impl.dialects import get_dialect
from provider_impl.errors import LlmError
from provider_impl.events import StreamEvent
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.response import response_from_events
from provider_impl.scenarios import SCENARIO_HEADER, Scenario
from provider_impl.types import CompletionRequest, CompletionResponse

__all__ = ["REPLAY_KEY", "Turns", "arun_turns", "run_turns", "scenario_client"]

# Any key: replay never reaches a provider, and the cassette holds none.
REPLAY_KEY = "replay-key"


def scenario_client(provider: str, scenario: Scenario, **kw: Any) -> OpenAiCompatibleProvider:
    """A client for ``provider`` that asks for ``scenario`` (the emulator reads the header)."""
    return OpenAiCompatibleProvider(
        get_dialect(provider),
        api_key=scenario.api_key or REPLAY_KEY,
        max_retries=scenario.max_retries,
        headers={SCENARIO_HEADER: scenario.name},
        **kw,
    )


@dataclass
class Turns:
    """What a scenario's call (or calls) produced: the last turn's events or
    response or error, and a two-turn scenario's first reply."""

    events: list[StreamEvent] = field(default_factory=list)
    response: CompletionResponse | None = None
    error: LlmError | None = None
    first: CompletionResponse | None = None


def _next_request(
    scenario: Scenario, request: CompletionRequest, out: Turns, turn: int
) -> CompletionRequest | None:
    """The request of the turn after ``turn``, or None when the scenario is over:
    it failed, it has one turn, or the first reply made no call to send back."""
    if out.error is not None or turn > 0 or scenario.tool_results is None:
        return None
    out.first = out.response or response_from_events(out.events)
    if not out.first.tool_calls:
        return None  # no call to send back: the checks report it
    return scenario.followup(request, out.first)


def _turn_requests(scenario: Scenario, provider: str, out: Turns) -> Iterator[CompletionRequest]:
    """The requests of ``scenario``'s turns, one at a time (sans-I/O): the caller
    sends each and puts what came back in ``out`` before asking for the next."""
    request: CompletionRequest | None = scenario.request_for(provider)
    turn = 0
    while request is not None:
        out.events, out.response = [], None
        yield request
        request, turn = _next_request(scenario, request, out, turn), turn + 1


@contextmanager
def _failure_into(out: Turns) -> Iterator[None]:
    """Keep a call's LlmError in ``out`` (the scenario may expect it)."""
    try:
        yield
    except LlmError as err:
        out.error = err


def _call(
    client: OpenAiCompatibleProvider, stream: bool, req: CompletionRequest, out: Turns
) -> None:
    """One turn through the sync client, into ``out``."""
    with _failure_into(out):
        if not stream:
            out.response = client.complete(req)
            return
        for ev in client.stream(req):  # appended one by one: the events before an error stay
            out.events.append(ev)


async def _acall(
    client: OpenAiCompatibleProvider, stream: bool, req: CompletionRequest, out: Turns
) -> None:
    """One turn through the async client, into ``out``."""
    with _failure_into(out):
        if not stream:
            out.response = await client.acomplete(req)
            return
        async for ev in client.astream(req):
            out.events.append(ev)


def run_turns(client: OpenAiCompatibleProvider, scenario: Scenario, provider: str) -> Turns:
    """Run ``scenario`` through the sync client: one request, or two when the
    scenario sends the first reply's tool calls back (``tool_results``)."""
    out = Turns()
    for request in _turn_requests(scenario, provider, out):
        _call(client, scenario.stream, request, out)
    return out


async def arun_turns(client: OpenAiCompatibleProvider, scenario: Scenario, provider: str) -> Turns:
    """``run_turns`` through the async client."""
    out = Turns()
    for request in _turn_requests(scenario, provider, out):
        await _acall(client, scenario.stream, request, out)
    return out
