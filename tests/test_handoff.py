"""hand_off: a conversation rewritten for another provider's dialect record, and
the emulator's Mistral id check that makes the rewrite necessary."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from provider_impl import (
    CompletionRequest,
    InvalidRequest,
    Message,
    OpenAiCompatibleProvider,
    ToolCall,
    ToolDefinition,
)
from provider_impl.dialect_file import dialect_from_toml, dialect_to_toml
from provider_impl.dialects import CLAUDE_SUBSCRIPTION, DIALECTS, GEMINI, GLM, MISTRAL, OPENAI
from provider_impl.emulator import Emulator
from provider_impl.handoff import hand_off, hand_off_request
from provider_impl.schemas import schema_errors

WEATHER = ToolDefinition("get_weather", "Weather.", {"type": "object", "properties": {}})
SIG = "c2lnbmVkIGJ5IGdlbWluaQ=="
NINE = re.compile(r"[A-Za-z0-9]{9}")


def _history() -> list[Message]:
    return [
        Message.user("Weather in Paris and Rome?"),
        Message.assistant(
            "Checking.",
            [
                ToolCall("call_0", "get_weather", {"city": "Paris"}, SIG),
                ToolCall("call_1", "get_weather", {"city": "Rome"}),
            ],
            reasoning="Two cities, two calls.",
        ),
        Message.tool_result("call_1", "20 degrees"),
        Message.tool_result("call_0", "18 degrees"),
        Message.assistant(tool_calls=[ToolCall("abcDEF123", "get_weather", {"city": "Oslo"})]),
        Message.tool_result("abcDEF123", "3 degrees"),
    ]


def test_ids_are_rewritten_for_mistral_and_results_follow_their_calls() -> None:
    out = hand_off(_history(), "mistral")
    calls = [c for m in out for c in m.tool_calls]
    assert all(NINE.fullmatch(c.id) for c in calls)
    assert len({c.id for c in calls}) == 3
    assert calls[2].id == "abcDEF123"  # already Mistral's shape: kept
    # Each result answers the call its old id named.
    by_city = {c.arguments["city"]: c.id for c in calls}
    assert [m.tool_call_id for m in out if m.role == "tool"] == [
        by_city["Rome"],
        by_city["Paris"],
        by_city["Oslo"],
    ]
    assert hand_off(_history(), "mistral") == out  # deterministic
    # Everything else is untouched.
    assert [m.content for m in out] == [m.content for m in _history()]


def test_derived_ids_never_collide_with_kept_or_each_other() -> None:
    ids = [f"call_{i}" for i in range(300)]
    msgs = [Message.user("go"), Message.assistant(tool_calls=[ToolCall(i, "f") for i in ids])]
    msgs += [Message.tool_result(i, "ok") for i in ids]
    out = hand_off(msgs, MISTRAL)
    new = [c.id for c in out[1].tool_calls]
    assert len(set(new)) == 300 and all(NINE.fullmatch(i) for i in new)
    assert [m.tool_call_id for m in out[2:]] == new


def test_ids_are_kept_for_targets_that_take_any_id() -> None:
    out = hand_off(_history(), OPENAI)
    assert [c.id for m in out for c in m.tool_calls] == ["call_0", "call_1", "abcDEF123"]


def test_thought_signatures_only_for_gemini_with_a_placeholder_for_foreign_steps() -> None:
    gemini = hand_off(_history(), GEMINI)
    assert gemini[1].tool_calls[0].thought_signature == SIG  # its own: kept
    assert gemini[1].tool_calls[1].thought_signature is None  # only a step's first call
    assert GEMINI.foreign_thought_signature is not None
    assert gemini[4].tool_calls[0].thought_signature == GEMINI.foreign_thought_signature
    for target in ("openai", "mistral", "glm", "openrouter"):
        assert all(
            c.thought_signature is None for m in hand_off(_history(), target) for c in m.tool_calls
        )


def test_reasoning_goes_back_where_the_record_names_a_key_and_is_dropped_elsewhere() -> None:
    req = CompletionRequest(messages=_history(), tools=[WEATHER])
    glm = OpenAiCompatibleProvider(GLM, api_key="k" * 10).build_request(hand_off_request(req, GLM))
    assert glm["messages"][1]["reasoning_content"] == "Two cities, two calls."
    assert schema_errors("glm", glm) == []
    gemini_req = hand_off_request(req, GEMINI)
    assert gemini_req.messages[1].reasoning is None
    body = OpenAiCompatibleProvider(GEMINI, api_key="k" * 10).build_request(gemini_req)
    assert schema_errors("gemini", body) == []
    # Sent to Gemini as it is, a reasoning key on the message breaks Gemini's contract.
    bad = dict(body, messages=[*body["messages"]])
    bad["messages"][1] = {**bad["messages"][1], "reasoning_content": "x"}
    assert schema_errors("gemini", bad)


def test_a_target_without_tools_refuses_tool_turns_naming_the_field() -> None:
    caps = dataclasses.replace(CLAUDE_SUBSCRIPTION.capabilities, tool_calling=False)
    no_tools = dataclasses.replace(CLAUDE_SUBSCRIPTION, name="no_tools", capabilities=caps)
    with pytest.raises(InvalidRequest) as info:
        hand_off(_history(), no_tools)
    assert info.value.field == "messages[1].tool_calls"
    with pytest.raises(InvalidRequest) as info:
        hand_off([Message.user("x"), Message.tool_result("a", "b")], no_tools)
    assert info.value.field == "messages[1].tool_call_id"
    with pytest.raises(InvalidRequest) as info:
        hand_off_request(CompletionRequest(messages=[Message.user("x")], tools=[WEATHER]), no_tools)
    assert info.value.field == "tools"
    assert hand_off([Message.user("plain")], no_tools) == (Message.user("plain"),)


def test_tool_call_id_format_survives_a_dialect_file() -> None:
    back = dialect_from_toml(dialect_to_toml(MISTRAL))
    assert back.tool_call_ids == MISTRAL.tool_call_ids
    assert dialect_from_toml(dialect_to_toml(OPENAI)).tool_call_ids is None
    assert dialect_from_toml(dialect_to_toml(GEMINI)).foreign_thought_signature == (
        GEMINI.foreign_thought_signature
    )


def test_the_emulated_mistral_refuses_other_ids_as_mistral_does(emu: Emulator) -> None:
    client = OpenAiCompatibleProvider(
        DIALECTS["mistral"],
        api_key="k" * 12,
        base_url=emu.base_url("mistral"),
        max_retries=0,
        headers={"x-emulator-scenario": "tool_result_followup"},
    )
    req = CompletionRequest(messages=_history(), tools=[WEATHER], max_tokens=64)
    with pytest.raises(InvalidRequest) as info:
        client.complete(req)
    assert info.value.status_code == 400 and info.value.code == "3280"
    assert "Tool call id was call_0 but must be a-z, A-Z, 0-9, with a length of 9." in str(
        info.value
    )
    # The tool result's id is checked too, not only the call's.
    only_result = [
        Message.user("x"),
        Message.assistant(tool_calls=[ToolCall("abcDEF123", "get_weather")]),
        Message.tool_result("abcDEF123", "ok"),
    ]
    body = client.build_request(CompletionRequest(messages=only_result, tools=[WEATHER]))
    body["messages"][2]["tool_call_id"] = "call-1"
    import httpx

    r = httpx.post(
        emu.base_url("mistral") + "/chat/completions",
        json=body,
        headers={"authorization": "Bearer " + "k" * 12},
    )
    assert r.status_code == 400 and "Tool call id was call-1" in r.json()["message"]
    assert client.complete(hand_off_request(req, "mistral")).text


def test_cli_prints_the_handoff_matrix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from provider_impl.cli import main

    out_json = tmp_path / "handoff.json"
    code = main(
        [
            "conformance",
            "--handoff",
            "--provider",
            "glm",
            "--provider",
            "mistral",
            "--json",
            str(out_json),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^glm\s+pass\s+pass$", out, re.M), out
    assert "4 cells passed, 0 failed, 0 n/a" in out
    cells = json.loads(out_json.read_text())["handoff"]
    assert {(c["source"], c["target"]) for c in cells} == {
        (s, t) for s in ("glm", "mistral") for t in ("glm", "mistral")
    }
