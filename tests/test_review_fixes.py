"""Small behaviours settled in review: the invariant checker's ordering rules,
pricing through a dialect or a provider, scenario applicability from dialect data."""

from __future__ import annotations

import dataclasses

import pytest

from provider_impl import OpenAiCompatibleProvider, StopReason, Usage
from provider_impl.costs import estimate_cost
from provider_impl.dialects import _REGISTRY, DIALECTS, get_dialect, register_dialect
from provider_impl.events import (
    Connected,
    ContentBlockStart,
    ContentBlockStop,
    Done,
    MessageDelta,
    MessageStart,
    TextDelta,
    ToolUseComplete,
    ToolUseInputDelta,
)
from provider_impl.harness import rechunk_splits
from provider_impl.invariants import check_invariants
from provider_impl.scenarios import SCENARIOS

END = [MessageDelta(StopReason.END_TURN, "stop"), Usage(), Done()]


def test_checker_accepts_a_well_formed_stream() -> None:
    check_invariants(
        [
            Connected(),
            MessageStart("a", "m"),
            ContentBlockStart(0, "text"),
            TextDelta(0, "hi"),
            ContentBlockStop(0),
            *END,
        ]
    )


def test_checker_wants_message_start_before_any_block() -> None:
    with pytest.raises(AssertionError, match="before MessageStart"):
        check_invariants(
            [Connected(), ContentBlockStart(0, "text"), TextDelta(0, "x")], complete=False
        )
    with pytest.raises(AssertionError, match="MessageStart must come once"):
        check_invariants(
            [Connected(), MessageStart(None, None), MessageDelta(StopReason.END_TURN, None),
             MessageStart(None, None)],
            complete=False,
        )  # fmt: skip


def test_checker_reports_unparseable_fragments_as_a_rule_break() -> None:
    events = [
        Connected(),
        MessageStart(None, None),
        ContentBlockStart(0, "tool_use", "c1", "f"),
        ToolUseInputDelta(0, '{"a":'),
        ToolUseComplete(0, "c1", "f", {}),
    ]
    with pytest.raises(AssertionError, match="not JSON"):
        check_invariants(events, complete=False)


def test_costs_through_a_dialect_or_a_provider() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    claude = OpenAiCompatibleProvider.claude_subscription()
    by_name = estimate_cost(usage, "anthropic", claude.model)
    assert by_name == pytest.approx(18.0)
    assert estimate_cost(usage, claude, claude.model) == by_name
    assert estimate_cost(usage, claude.dialect, claude.model) == by_name
    assert estimate_cost(usage, "claude_subscription", claude.model) == by_name
    custom = OpenAiCompatibleProvider.custom(
        name="gateway", base_url="http://127.0.0.1:9/v1", default_model="gpt-4o",
        cost_provider="openai", api_key="gateway-key-1234",
    )  # fmt: skip
    assert estimate_cost(usage, custom, "gpt-4o") == pytest.approx(12.5)
    assert estimate_cost(usage, "gateway", "gpt-4o") is None
    with pytest.raises(TypeError):
        estimate_cost(usage, 3.14, "gpt-4o")


def test_scenario_applicability_comes_from_dialect_data() -> None:
    applies = {s: {n for n in DIALECTS if SCENARIOS[s].applies_to(n)} for s in SCENARIOS}
    assert applies["error_auth"] == {n for n, d in DIALECTS.items() if d.checks_key}
    assert "claude_subscription" not in applies["error_invalid_param"]
    assert get_dialect("claude_subscription").ignores_unknown_params
    assert applies["content_filter"] == {
        n for n, d in DIALECTS.items() if d.features.content_filter
    }
    # A renamed copy of a record gets the scenarios its flags allow, by data alone.
    copy = dataclasses.replace(get_dialect("mistral"), name="copy_of_mistral")
    register_dialect(copy)
    try:
        got = {s for s in SCENARIOS if SCENARIOS[s].applies_to("copy_of_mistral")}
        assert got == {s for s in SCENARIOS if SCENARIOS[s].applies_to("mistral")}
        reasoning = SCENARIOS["reasoning"]
        assert reasoning.request_for("copy_of_mistral") == reasoning.request_for("mistral")
    finally:
        _REGISTRY.pop("copy_of_mistral")


def test_rechunk_splits_of_tiny_bodies() -> None:
    assert rechunk_splits(b"") == [[b""]]
    assert rechunk_splits(b"x") == [[b"x"]]
    for pieces in rechunk_splits(b"data: x\n\n", seed=3):
        assert b"".join(pieces) == b"data: x\n\n"
