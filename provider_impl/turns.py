"""Running a scenario's turns through a client: what recording and replay share.

One request, or two when the scenario sends the first reply's tool calls back.
"""

from __future__ import annotations

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


def run_turns(client: OpenAiCompatibleProvider, scenario: Scenario, provider: str) -> Turns:
    """Run ``scenario`` through the sync client: one request, or two when the
    scenario sends the first reply's tool calls back (``tool_results``)."""
    request: CompletionRequest | None = scenario.request_for(provider)
    out = Turns()
    turn = 0
    while request is not None:
        out.events, out.response = [], None
        try:
            if scenario.stream:
                for ev in client.stream(request):  # the events before an error stay
                    out.events.append(ev)
            else:
                out.response = client.complete(request)
        except LlmError as err:
            out.error = err
        request, turn = _next_request(scenario, request, out, turn), turn + 1
    return out


async def arun_turns(client: OpenAiCompatibleProvider, scenario: Scenario, provider: str) -> Turns:
    """``run_turns`` through the async client."""
    request: CompletionRequest | None = scenario.request_for(provider)
    out = Turns()
    turn = 0
    while request is not None:
        out.events, out.response = [], None
        try:
            if scenario.stream:
                async for ev in client.astream(request):
                    out.events.append(ev)
            else:
                out.response = await client.acomplete(request)
        except LlmError as err:
            out.error = err
        request, turn = _next_request(scenario, request, out, turn), turn + 1
    return out
