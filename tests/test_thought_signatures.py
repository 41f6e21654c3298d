"""Gemini thought signatures end to end (issue 9, part 3).

Decoded from tool calls (streamed and whole) into ``ToolCall.thought_signature``,
kept through ``Message.assistant(tool_calls=...)``, sent back as
``tool_calls[].extra_content.google.thought_signature`` to the dialects whose
record says ``sends_thought_signatures`` and to no other; the emulator signs
``gemini-3*`` tool calls and answers a follow-up without the signature with
Google's 400.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from provider_impl import (
    CompletionRequest,
    InvalidRequest,
    Message,
    OpenAiCompatibleProvider,
    ToolCall,
    decode_response,
    decode_stream,
)
from provider_impl.dialects import BUILTIN, get_dialect
from provider_impl.emulator import Emulator
from provider_impl.emulator._dialects import unsigned_call
from provider_impl.events import ToolUseComplete
from provider_impl.harness import load_exchange
from provider_impl.payload import build_payload
from provider_impl.response import response_from_events
from provider_impl.scenarios import SCENARIO_HEADER, WEATHER
from provider_impl.schemas import rule_errors, schema_errors

ROOT = Path(__file__).resolve().parent.parent
REAL_GEMINI = sorted((ROOT / "cassettes" / "real" / "gemini").glob("*.yaml"))
GEMINI_3 = "gemini-3-flash-preview"


def _gemini(emu: Emulator) -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider.gemini(
        api_key="test-key",
        base_url=emu.base_url("gemini"),
        max_retries=0,
        headers={SCENARIO_HEADER: "tool_round_trip"},
    )


def _ask(model: str) -> CompletionRequest:
    return CompletionRequest(
        messages=[Message.user("What is the weather in Paris?")],
        model=model,
        tools=[WEATHER],
        max_tokens=256,
    )


def _first_turn(client: OpenAiCompatibleProvider, request: CompletionRequest, stream: bool) -> Any:
    if stream:
        return response_from_events(list(client.stream(request)))
    return client.complete(request)


def _followup(request: CompletionRequest, calls: tuple[ToolCall, ...]) -> CompletionRequest:
    answers = [Message.tool_result(c.id, "18 degrees and sunny") for c in calls]
    return dataclasses.replace(
        request, messages=[*request.messages, Message.assistant(tool_calls=calls), *answers]
    )


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_gemini_3_signature_comes_back_on_the_follow_up(emu: Emulator, stream: bool) -> None:
    with _gemini(emu) as client:
        request = _ask(GEMINI_3)
        reply = _first_turn(client, request, stream)
        (call,) = reply.tool_calls
        assert call.thought_signature  # decoded from extra_content.google.thought_signature
        followup = _followup(request, reply.tool_calls)
        answer = _first_turn(client, followup, stream)
        assert "18 degrees" in answer.text
        # What went on the wire: the signature, exactly as it came, where it came from.
        body = client.build_request(followup, stream=stream)
        sent = body["messages"][1]["tool_calls"][0]
        assert sent["extra_content"] == {"google": {"thought_signature": call.thought_signature}}
        assert schema_errors("gemini", body) == [] and rule_errors("gemini", body) == []


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_gemini_3_follow_up_without_the_signature_gets_googles_400(
    emu: Emulator, stream: bool
) -> None:
    with _gemini(emu) as client:
        request = _ask(GEMINI_3)
        reply = _first_turn(client, request, stream)
        unsigned = tuple(dataclasses.replace(c, thought_signature=None) for c in reply.tool_calls)
        with pytest.raises(InvalidRequest) as err:
            _first_turn(client, _followup(request, unsigned), stream)
    assert err.value.status_code == 400
    assert err.value.code == "INVALID_ARGUMENT"
    assert "Function call is missing a thought_signature" in err.value.message
    assert "default_api:get_weather` , position 2." in err.value.message


def test_gemini_2_5_neither_signs_nor_asks_for_a_signature(emu: Emulator) -> None:
    with _gemini(emu) as client:
        request = _ask("gemini-2.5-flash")
        reply = client.complete(request)
        assert [c.thought_signature for c in reply.tool_calls] == [None]
        assert "18 degrees" in client.complete(_followup(request, reply.tool_calls)).text


def test_the_emulator_checks_only_the_current_turn() -> None:
    def call(sig: str | None) -> dict[str, Any]:
        c: dict[str, Any] = {"id": "a", "type": "function", "function": {"name": "f"}}
        if sig is not None:
            c["extra_content"] = {"google": {"thought_signature": sig}}
        return c

    def turn(*calls: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"role": "assistant", "tool_calls": list(calls)}, {"role": "tool", "content": "r"}]

    system = [{"role": "system", "content": "s"}]
    user = [{"role": "user", "content": "q"}]
    # An older turn (before the last user message) may lack signatures.
    assert unsigned_call(user + turn(call(None)) + user + turn(call("s"))) is None
    # Only the first call of a step is signed; the second may have none.
    assert unsigned_call(system + user + turn(call("s"), call(None))) is None
    # Positions count Gemini's contents: no system message, tool results folded into one.
    assert unsigned_call(system + user + turn(call(None))) == ("f", 2)
    two_results = [{"role": "tool", "content": "r2"}]
    steps = turn(call("s")) + two_results + turn(call(None))
    assert unsigned_call(system + user + steps) == ("f", 4)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish:
        choice["finish_reason"] = finish
    return b"data: " + json.dumps({"id": "x", "model": "m", "choices": [choice]}).encode() + b"\n\n"


def test_a_signature_on_any_fragment_of_a_streamed_call_is_kept() -> None:
    body = b"".join(
        [
            _chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f"}}]}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "function": {"arguments": '{"a": 1}'},
                            "extra_content": {"google": {"thought_signature": "SIG"}},
                        }
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g"}}]}),
            _chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )
    calls = [e for e in decode_stream(body, "openai") if isinstance(e, ToolUseComplete)]
    assert [(c.id, c.thought_signature) for c in calls] == [("c1", "SIG"), ("c2", None)]
    assert calls[0].to_dict()["thought_signature"] == "SIG"
    assert "thought_signature" not in calls[1].to_dict()  # unsigned calls look as before


def test_gemini_parallel_calls_keep_the_one_signature_on_the_first() -> None:
    signed = {"extra_content": {"google": {"thought_signature": "S1"}}}
    message = {
        "role": "assistant",
        "tool_calls": [
            {"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}, **signed},
            {"id": "", "type": "function", "function": {"name": "g", "arguments": "{}"}},
        ],
    }
    whole = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    reply = decode_response(whole, "gemini")
    assert [c.thought_signature for c in reply.tool_calls] == ["S1", None]
    body = build_payload(
        CompletionRequest([Message.user("q"), Message.assistant(tool_calls=reply.tool_calls)]),
        get_dialect("gemini"),
        GEMINI_3,
        stream=False,
    )
    sent = body["messages"][1]["tool_calls"]
    assert sent[0]["extra_content"]["google"]["thought_signature"] == "S1"
    assert "extra_content" not in sent[1]


@pytest.mark.parametrize(
    "dialect",
    # A dialect that cannot call tools refuses the conversation (test_payload).
    [d for d in BUILTIN if d.capabilities.tool_calling],
    ids=lambda d: d.name,
)
def test_only_dialects_that_take_signatures_receive_them(dialect: Any) -> None:
    call = ToolCall("call12345", "get_weather", {"city": "Paris"}, thought_signature="SIG")
    request = CompletionRequest(
        [Message.user("q"), Message.assistant(tool_calls=[call]), Message.tool_result(call.id, "r")]
    )
    body = build_payload(request, dialect, dialect.default_model, stream=False)
    sent = body["messages"][1]["tool_calls"][0]
    assert ("extra_content" in sent) == dialect.sends_thought_signatures
    assert rule_errors(dialect, body) == []
    assert schema_errors(dialect.contract_name, body) == []
    # The project's rule catches a body that would leak one to the others.
    sent["extra_content"] = {"google": {"thought_signature": "SIG"}}
    leaked = rule_errors(dialect, body)
    assert bool(leaked) != dialect.sends_thought_signatures
    assert all("tool_calls[0].extra_content" in e for e in leaked)


@pytest.mark.parametrize("bad", ["", 42, b"SIG"])
def test_a_bad_signature_is_refused_naming_the_field(bad: Any) -> None:
    call = ToolCall("call12345", "f", {}, thought_signature=bad)
    request = CompletionRequest([Message.user("q"), Message.assistant(tool_calls=[call])])
    with pytest.raises(InvalidRequest) as err:
        build_payload(request, get_dialect("gemini"), GEMINI_3, stream=False)
    assert err.value.field == "messages[1].tool_calls[0].thought_signature"


def _messages(body: bytes, sse: bool) -> list[dict[str, Any]]:
    """The reply's message, or every streamed delta, as plain JSON."""
    if not sse:
        return [json.loads(body)["choices"][0]["message"]]
    chunks = [
        json.loads(line[5:])
        for line in body.decode().splitlines()
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")
    ]
    return [ch["delta"] for c in chunks for ch in c.get("choices") or [] if "delta" in ch]


@pytest.mark.parametrize("path", REAL_GEMINI, ids=lambda p: p.stem)
def test_real_gemini_signatures_are_decoded_and_sent_back(path: Path) -> None:
    """Every signature in a real Gemini reply comes back, unchanged, on the follow-up."""
    exchange = load_exchange(path)
    found: set[str] = set()
    for message in _messages(exchange.body, exchange.is_sse):
        found |= {
            c["extra_content"]["google"]["thought_signature"]
            for c in message.get("tool_calls") or []
            if "thought_signature" in (c.get("extra_content") or {}).get("google", {})
        }
        google = (message.get("extra_content") or {}).get("google", {})
        if message.get("tool_calls") and "thought_signature" in google:
            found.add(google["thought_signature"])  # Gemini 2.5 put it on the message
    if exchange.is_sse:
        reply = response_from_events(list(decode_stream(exchange.body, "gemini")))
    else:
        reply = decode_response(exchange.body, "gemini")
    assert {c.thought_signature for c in reply.tool_calls} - {None} == found
    if not reply.tool_calls:
        return
    request = CompletionRequest([Message.user("q")], model=exchange.request_body["model"])
    body = build_payload(
        _followup(request, reply.tool_calls), get_dialect("gemini"), "m", stream=False
    )
    sent = {
        c["extra_content"]["google"]["thought_signature"]
        for c in body["messages"][1]["tool_calls"]
        if "extra_content" in c
    }
    assert sent == found
    assert schema_errors("gemini", body) == [] and rule_errors("gemini", body) == []


def test_the_real_corpus_holds_a_signed_gemini_call() -> None:
    """The test above is not vacuous: at least one real reply carries a signature."""
    signed = [p for p in REAL_GEMINI if b"thought_signature" in load_exchange(p).body]
    assert signed
