"""The hand-off matrix: provider × provider through the bundled emulator.

Each cell starts the two-turn ``tool_round_trip`` conversation on one provider
(a tool call, Gemini 3 signing it), hands the history to another with
``hand_off`` and sends the follow-up there. A cell passes when the follow-up
body fits the target's request contract (``schema_errors``) and the project's
rules (``rule_errors``), and the target's emulated endpoint accepts it and
answers with the tool's result. It is n/a, with the reason, where a side has no
tool calling (``capabilities.tool_calling``). ``provider-impl conformance
--handoff`` prints it; ``conformance/test_handoff.py`` runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from provider_impl.dialects import DIALECTS, get_dialect
from provider_impl.emulator import Emulator
from provider_impl.errors import LlmError
from provider_impl.handoff import hand_off
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.response import response_from_events
from provider_impl.scenarios import SCENARIO_HEADER, SCENARIOS, Scenario
from provider_impl.types import CompletionRequest, Message, StopReason

__all__ = ["HANDOFF_SCENARIO", "HandoffCell", "handoff_cell", "handoff_matrix", "print_matrix"]

#: The conversation every cell holds: one tool call, then its result.
HANDOFF_SCENARIO = "tool_round_trip"
# Not key-shaped: the emulator only refuses keys containing "invalid".
_KEY = "handoff-matrix-key"

Status = Literal["pass", "fail", "n/a"]


@dataclass(frozen=True)
class HandoffCell:
    source: str
    target: str
    status: Status
    reason: str = ""
    # The follow-up body the target was sent (None when it was not built).
    followup: dict[str, Any] | None = field(default=None, compare=False)


def _client(provider: str, emulator: Emulator, scenario: Scenario) -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider(
        get_dialect(provider),
        api_key=_KEY,
        base_url=emulator.base_url(provider),
        max_retries=0,
        headers={SCENARIO_HEADER: scenario.name},
    )


def _followup_history(source: str, emulator: Emulator, scenario: Scenario) -> list[Message]:
    """The first turn on ``source``, as the conversation to hand over."""
    request = scenario.request_for(source)
    with _client(source, emulator, scenario) as client:
        first = response_from_events(client.stream(request))
    if not first.tool_calls:
        raise AssertionError(f"{source} made no tool call in the first turn")
    results = scenario.tool_results or {}
    turn = Message.assistant(first.text or None, first.tool_calls, reasoning=first.thinking)
    answers = [
        Message.tool_result(c.id, results.get(c.name, "no result")) for c in first.tool_calls
    ]
    return [*request.messages, turn, *answers]


def handoff_cell(source: str, target: str, emulator: Emulator) -> HandoffCell:
    """One cell: the conversation started on ``source`` finished on ``target``."""
    from provider_impl.schemas import rule_errors, schema_errors

    for name in (source, target):
        if not get_dialect(name).capabilities.tool_calling:
            return HandoffCell(
                source, target, "n/a", f"{name} has no tool calling (capabilities.tool_calling)"
            )
    scenario = SCENARIOS[HANDOFF_SCENARIO]
    try:
        history = _followup_history(source, emulator, scenario)
    except (LlmError, AssertionError) as err:
        return HandoffCell(source, target, "fail", f"first turn on {source}: {err}")
    base: CompletionRequest = scenario.request_for(target)
    followup = dataclasses.replace(base, messages=hand_off(history, target))
    with _client(target, emulator, scenario) as client:
        try:
            body = client.build_request(followup, stream=True)
        except LlmError as err:
            return HandoffCell(source, target, "fail", f"follow-up not built: {err}")
        problems = schema_errors(target, body) + rule_errors(target, body)
        if problems:
            return HandoffCell(source, target, "fail", f"contract: {problems[0]}", body)
        try:
            reply = response_from_events(client.stream(followup))
        except LlmError as err:
            return HandoffCell(source, target, "fail", f"refused: {err}", body)
    expected = scenario.expect_text
    if reply.stop_reason is not StopReason.END_TURN or not all(t in reply.text for t in expected):
        return HandoffCell(
            source, target, "fail", f"the reply did not use the tool result: {reply.text!r}", body
        )
    return HandoffCell(source, target, "pass", "", body)


def handoff_matrix(
    providers: Sequence[str] | None = None, *, emulator: Emulator | None = None
) -> list[HandoffCell]:
    """Every ordered pair of ``providers`` (default: every known one)."""
    names = list(providers or DIALECTS)
    if emulator is None:
        with Emulator() as emu:
            return [handoff_cell(s, t, emu) for s in names for t in names]
    return [handoff_cell(s, t, emulator) for s in names for t in names]


def print_matrix(cells: Sequence[HandoffCell]) -> None:
    """Rows: where the conversation started; columns: where it was finished."""
    names = list(dict.fromkeys(c.source for c in cells))
    by_pair = {(c.source, c.target): c for c in cells}
    mark = {"pass": "pass", "fail": "FAIL", "n/a": "n/a"}
    cols = ["from \\ to", *names]
    rows = [[s, *(mark[by_pair[(s, t)].status] for t in names)] for s in names]
    widths = [max(len(r[i]) for r in [cols, *rows]) for i in range(len(cols))]
    for row in [cols, ["-" * w for w in widths], *rows]:
        print("  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
    notes = [c for c in cells if c.status != "pass"]
    reasons: dict[str, str] = {}
    for c in notes:
        if c.status == "n/a":
            reasons.setdefault(c.reason, "")
        else:
            print(f"  FAIL {c.source} -> {c.target}: {c.reason}")
    for reason in reasons:
        print(f"  n/a: {reason}")
