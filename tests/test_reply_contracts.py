"""The reply contracts (provider_impl/schemas/replies/) against real and emulated replies."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from transports import PROVIDERS, TLS

from provider_impl.dialects import get_dialect
from provider_impl.emulator import Emulator
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.scenarios import SCENARIO_HEADER, SCENARIOS
from provider_impl.schemas.replies import (
    REPLY_CONTRACTS,
    REPLY_KINDS,
    load_reply_schema,
    reply_errors,
    reply_objects,
)

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
REAL = CASSETTES / "real"
# Each folder of real traffic and the contract its replies must fit.
REAL_CONTRACT = {name: name for name in REPLY_CONTRACTS}
# The built-in dialects the emulator renders.


def _violations(provider: str, body: bytes, sse: bool, where: str) -> tuple[int, list[str]]:
    count, problems = 0, []
    for kind, obj in reply_objects(body, sse=sse):
        count += 1
        problems += [f"{where} ({kind}): {e}" for e in reply_errors(provider, obj, kind)]
    return count, problems


# ------------------------------------------------------------------ the files


@pytest.mark.parametrize("provider", REPLY_CONTRACTS)
@pytest.mark.parametrize("kind", REPLY_KINDS)
def test_contract_is_a_valid_schema_with_the_core_fields(provider: str, kind: str) -> None:
    schema = load_reply_schema(provider, kind)  # type: ignore[arg-type]
    Draft202012Validator.check_schema(schema)
    assert schema["title"] and schema["description"]
    if kind == "error":
        return
    assert {"object", "created", "model", "choices"} <= set(schema["required"])
    assert schema["properties"]["object"]["const"] == (
        "chat.completion.chunk" if kind == "chunk" else "chat.completion"
    )
    assert schema.get("additionalProperties", True) is True
    choice = schema["properties"]["choices"]["items"]
    assert "index" in choice["required"]
    assert ("delta" if kind == "chunk" else "message") in choice["required"]
    if kind == "completion":
        assert {"id", "usage"} <= set(schema["required"])


def test_generated_files_are_up_to_date() -> None:
    pytest.importorskip("genson")
    spec = importlib.util.spec_from_file_location(
        "gen_reply_contracts", ROOT / "scripts" / "gen_reply_contracts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


# --------------------------------------------------------------- real traffic


def test_every_real_traffic_folder_has_a_contract() -> None:
    folders = {p.name for p in REAL.iterdir() if p.is_dir()}
    assert folders, "no real traffic under cassettes/real"
    assert folders <= set(REAL_CONTRACT)


# Every real reply and every emulator cassette against its contract: the
# conformance suite (test_real_traffic.py, test_conformance.py).


# ----------------------------------------------------------- emulated replies


def _live(emu: Emulator, provider: str, scenario: str, stream: bool) -> httpx.Response:
    client = OpenAiCompatibleProvider(get_dialect(provider), api_key="emulator-key")
    body = client.build_request(SCENARIOS[scenario].request_for(provider), stream=stream)
    return httpx.post(
        emu.base_url(provider) + "/chat/completions",
        json=body,
        headers={"authorization": "Bearer emulator-key", SCENARIO_HEADER: scenario},
        timeout=10,
        verify=TLS,
    )


_REPLY_SCENARIOS = [name for name in SCENARIOS if not name.startswith("error_")]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_live_emulator_output_fits_the_contracts(emulator: Emulator, provider: str) -> None:
    """Every reply scenario, streamed and whole, plus the in-band error stream."""
    kinds: set[str] = set()
    problems: list[str] = []
    for scenario in [*_REPLY_SCENARIOS, "error_in_stream"]:
        if not SCENARIOS[scenario].applies_to(provider):
            continue
        for stream in (True, False) if scenario in _REPLY_SCENARIOS else (True,):
            reply = _live(emulator, provider, scenario, stream)
            assert reply.status_code == 200, (scenario, stream, reply.text)
            sse = reply.headers["content-type"].startswith("text/event-stream")
            assert sse is stream
            for kind, obj in reply_objects(reply.content, sse=sse):
                kinds.add(kind)
                where = f"{scenario} stream={stream} ({kind})"
                problems += [f"{where}: {e}" for e in reply_errors(provider, obj, kind)]
    assert problems == []
    assert kinds == {"chunk", "completion", "error"} or provider in ("mistral", "glm")


@pytest.mark.parametrize(("model", "has_fingerprint"), [("gpt-5-mini", False), ("gpt-4o", True)])
def test_emulated_openai_fingerprint_follows_the_model_family(
    emulator: Emulator, model: str, has_fingerprint: bool
) -> None:
    # Real gpt-5*/o4 replies say system_fingerprint: null; gpt-4o ones carry "fp_...".
    client = OpenAiCompatibleProvider(get_dialect("openai"), api_key="k", model=model)
    replies = []
    for stream in (True, False):
        body = client.build_request(SCENARIOS["text"].request_for("openai"), stream=stream)
        reply = httpx.post(
            emulator.base_url("openai") + "/chat/completions",
            json=body,
            headers={"authorization": "Bearer k", SCENARIO_HEADER: "text"},
            timeout=10,
        )
        replies += list(reply_objects(reply.content, sse=stream))
    assert {kind for kind, _ in replies} == {"chunk", "completion"}
    assert {obj["system_fingerprint"] is not None for _, obj in replies} == {has_fingerprint}
    assert [reply_errors("openai", obj, kind) for kind, obj in replies] == [[]] * len(replies)


# ------------------------------------------------------------ refusals, paths

_CHUNK: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion.chunk",
    "created": 1767225600,
    "model": "gpt-4o",
    "system_fingerprint": None,
    "choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}],
}
_GLM_COMPLETION: dict[str, Any] = {
    "id": "20260101080000aabbccddeeff0011",
    "object": "chat.completion",
    "created": 1767225600,
    "model": "glm-4.7",
    "request_id": "20260101080000aabbccddeeff0011",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "",
                "reasoning_content": "Call it.",
                "tool_calls": [
                    {
                        "id": "call_-7807255211226955507",
                        "index": 0,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 10,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 3},
    },
}


def test_valid_examples_fit_and_a_new_field_is_harmless() -> None:
    assert reply_errors("openai", _CHUNK) == []
    assert reply_errors("glm", _GLM_COMPLETION, "completion") == []
    extra = copy.deepcopy(_CHUNK)
    extra["brand_new_field"] = {"any": "thing"}
    extra["choices"][0]["delta"]["annotations"] = []
    assert reply_errors("openai", extra) == []


def test_a_wrong_type_is_refused_naming_its_path() -> None:
    chunk = copy.deepcopy(_CHUNK)
    chunk["choices"][0]["index"] = "0"
    assert reply_errors("openai", chunk) == ["$.choices[0].index: '0' is not of type 'integer'"]


def test_a_missing_required_field_is_refused_naming_its_path() -> None:
    completion = copy.deepcopy(_GLM_COMPLETION)
    del completion["id"]
    del completion["usage"]["total_tokens"]
    assert reply_errors("glm", completion, "completion") == [
        "$.usage: 'total_tokens' is a required property",
        "$: 'id' is a required property",
    ]


def test_an_id_of_the_wrong_shape_is_refused() -> None:
    completion = copy.deepcopy(_GLM_COMPLETION)
    completion["choices"][0]["message"]["tool_calls"][0]["id"] = "call_0123456789abcdef01234567"
    (error,) = reply_errors("glm", completion, "completion")
    assert error.startswith("$.choices[0].message.tool_calls[0].id: ")
    assert "does not match" in error


def test_an_undocumented_finish_reason_and_a_wrong_object_are_refused() -> None:
    chunk = copy.deepcopy(_CHUNK)
    chunk["object"] = "chat.completion"
    chunk["choices"][0]["finish_reason"] = "done"
    errors = reply_errors("openai", chunk)
    assert len(errors) == 2
    assert errors[0].startswith("$.choices[0].finish_reason: 'done' is not one of")
    assert errors[1] == "$.object: 'chat.completion.chunk' was expected"


def test_gemini_whole_reply_with_tool_calls_must_say_tool_calls() -> None:
    reply = {
        "id": "3SE-aKjdCcCEz7IPxpqjCA",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gemini-2.5-pro",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    assert reply_errors("gemini", reply, "completion") == []
    reply["choices"][0]["finish_reason"] = "stop"
    (error,) = reply_errors("gemini", reply, "completion")
    assert error.startswith("$.choices[0].finish_reason: ")


def test_error_frames() -> None:
    assert (
        reply_errors("openai", {"error": {"message": "boom", "type": "server_error"}}, "error")
        == []
    )
    gemini = [{"error": {"code": 500, "message": "Internal", "status": "INTERNAL"}}]
    assert reply_errors("gemini", gemini, "error") == []
    assert reply_errors("openai", {"error": {"message": 5}}, "error") != []
    assert reply_errors("openai", {"error": {}}, "error") != []


def test_reply_objects_sorts_a_stream_into_chunks_and_error_frames() -> None:
    body = (
        b": keep-alive\n\n"
        + b"data: "
        + json.dumps(_CHUNK).encode()
        + b"\n\n"
        + b'data: {"error": {"message": "boom"}}\n\n'
        + b"data: [DONE]\n\n"
    )
    assert [kind for kind, _ in reply_objects(body, sse=True)] == ["chunk", "error"]
    assert list(reply_objects(b'{"a": 1}', sse=False)) == [("completion", {"a": 1})]
    with pytest.raises(ValueError, match="not JSON"):
        list(reply_objects(b"data: {oops\n\n", sse=True))


def test_unknown_provider_or_kind_is_a_value_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        reply_errors("anthropic", {})
    assert all(name in str(info.value) for name in REPLY_CONTRACTS)
    with pytest.raises(ValueError, match="chunk, completion, error"):
        reply_errors("openai", {}, "stream")  # type: ignore[arg-type]


def test_load_reply_schema_hands_out_copies() -> None:
    load_reply_schema("mistral", "completion")["properties"].clear()
    assert load_reply_schema("mistral", "completion")["properties"]
