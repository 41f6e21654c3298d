"""The hand-off matrix (provider × provider through the emulator), one test per cell.

Green where both sides call tools; n/a with the reason (read from
``capabilities.tool_calling``) elsewhere. ``provider-impl conformance --handoff``
prints the same matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from provider_impl.dialects import _REGISTRY, CLAUDE_SUBSCRIPTION, get_dialect
from provider_impl.emulator import Emulator
from provider_impl.handoff_matrix import handoff_cell, handoff_matrix
from provider_impl.scenarios import providers

PAIRS = [(s, t) for s in providers() for t in providers()]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_handoff_cell(emu: Emulator, source: str, target: str) -> None:
    cell = handoff_cell(source, target, emu)
    tools = [n for n in (source, target) if not get_dialect(n).capabilities.tool_calling]
    if tools:
        assert cell.status == "n/a" and tools[0] in cell.reason, cell
        return
    assert cell.status == "pass", cell.reason
    assert cell.followup is not None
    # The follow-up answers the call it hands over, under the id the target was sent.
    msgs = cell.followup["messages"]
    call_ids = [c["id"] for m in msgs for c in m.get("tool_calls") or []]
    assert [m["tool_call_id"] for m in msgs if m["role"] == "tool"] == call_ids


def test_a_provider_without_tools_is_na_with_the_reason(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    caps = dataclasses.replace(CLAUDE_SUBSCRIPTION.capabilities, tool_calling=False)
    toolless = dataclasses.replace(
        CLAUDE_SUBSCRIPTION, name="toolless", capabilities=caps, contract="claude_subscription"
    )
    monkeypatch.setitem(_REGISTRY, "toolless", toolless)  # for this test only
    cells = handoff_matrix(["mistral", "toolless"], emulator=emu)
    status = {(c.source, c.target): c for c in cells}
    assert status[("mistral", "mistral")].status == "pass"
    for pair in (("mistral", "toolless"), ("toolless", "mistral"), ("toolless", "toolless")):
        assert status[pair].status == "n/a"
        assert "toolless has no tool calling" in status[pair].reason


def test_without_hand_off_the_cells_that_need_it_fail(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The matrix is not green by default: the same conversations sent as they came
    are refused by the emulated Mistral (ids) and Gemini 3 (signatures)."""
    import provider_impl.handoff_matrix as hm

    monkeypatch.setattr(hm, "hand_off", lambda history, target: tuple(history))
    to_mistral = hm.handoff_cell("openai", "mistral", emu)
    assert to_mistral.status == "fail" and "Tool call id was" in to_mistral.reason
    to_gemini = hm.handoff_cell("mistral", "gemini", emu)
    assert to_gemini.status == "fail" and "thought_signature" in to_gemini.reason
