"""OpenRouter, the sixth built-in provider, held against its real traffic.

The truth is cassettes/real/openrouter/ (75 real exchanges): the emulator must
produce the shapes found there, the decoder must read them, and the request
contract must accept every request OpenRouter answered with a 2xx.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from provider_impl import ContextLengthExceeded, OpenAiCompatibleProvider, RateLimited, StreamError
from provider_impl.classify import classify_error
from provider_impl.dialects import BUILTIN, get_dialect
from provider_impl.emulator import Emulator
from provider_impl.events import ThinkingDelta
from provider_impl.harness import RecordedExchange, decode_recorded, load_exchange
from provider_impl.response import response_from_events
from provider_impl.scenarios import SCENARIO_HEADER, get_scenario
from provider_impl.schemas import schema_errors

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "cassettes" / "real" / "openrouter"
REAL_CASSETTES = sorted(REAL.glob("*.yaml"))
Keys = dict[str, set[str]]


def _real(name: str) -> RecordedExchange:
    return load_exchange(REAL / f"{name}.yaml")


def _frames(body: bytes) -> tuple[list[Any], list[str]]:
    """(JSON data chunks, comment lines) of an SSE body."""
    chunks: list[Any] = []
    comments: list[str] = []
    for block in body.decode("utf-8").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    return chunks, comments


def _add(keys: Keys, where: str, obj: Any) -> None:
    if isinstance(obj, dict):
        keys[where] |= set(obj)


def _chunk_keys(chunks: list[Any], keys: Keys) -> None:
    for chunk in chunks:
        _add(keys, "chunk", chunk)
        _add(keys, "chunk.error", chunk.get("error"))
        _usage_keys(chunk.get("usage"), keys)
        for choice in chunk.get("choices") or []:
            _add(keys, "choice", choice)
            delta = choice.get("delta") or {}
            _add(keys, "delta", delta)
            for call in delta.get("tool_calls") or []:
                _add(keys, "tool_call", call)
            for detail in delta.get("reasoning_details") or []:
                _add(keys, "reasoning_detail", detail)


def _reply_keys(reply: Any, keys: Keys) -> None:
    _add(keys, "reply", reply)
    _usage_keys(reply.get("usage"), keys)
    for choice in reply["choices"]:
        _add(keys, "reply.choice", choice)
        message = choice["message"]
        _add(keys, "message", message)
        for call in message.get("tool_calls") or []:
            _add(keys, "message.tool_call", call)
        for detail in message.get("reasoning_details") or []:
            _add(keys, "reasoning_detail", detail)


def _usage_keys(usage: Any, keys: Keys) -> None:
    if isinstance(usage, dict):
        _add(keys, "usage", usage)
        for name, value in usage.items():
            _add(keys, f"usage.{name}", value)


@pytest.fixture(scope="module")
def real_keys() -> Keys:
    keys: Keys = defaultdict(set)
    for path in REAL_CASSETTES:
        ex = load_exchange(path)
        if ex.status != 200:
            continue
        if ex.is_sse:
            _chunk_keys(_frames(ex.body)[0], keys)
        else:
            _reply_keys(json.loads(ex.body), keys)
    return keys


def _emulated(emu: Emulator, scenario: str, *, stream: bool) -> httpx.Response:
    """What the emulator answers to the request the client builds for ``scenario``."""
    client = OpenAiCompatibleProvider.openrouter(api_key="any-key-for-the-emulator")
    body = client.build_request(get_scenario(scenario).request_for("openrouter"), stream=stream)
    return httpx.post(
        emu.base_url("openrouter") + "/chat/completions",
        json=body,
        headers={"authorization": "Bearer any-key", SCENARIO_HEADER: scenario},
    )


# ------------------------------------------------------------------ the record


def test_openrouter_is_a_builtin_with_its_documented_endpoint() -> None:
    d = get_dialect("openrouter")
    assert d in BUILTIN
    assert d.base_url == "https://openrouter.ai/api/v1"
    assert d.api_key_env == "OPENROUTER_API_KEY"
    assert d.wire == "openrouter" and d.contract_name == "openrouter"


def test_the_builder_sends_max_tokens_and_no_deprecated_usage_option() -> None:
    client = OpenAiCompatibleProvider.openrouter(api_key="k")
    body = client.build_request(get_scenario("text").request, stream=True)
    assert body["max_tokens"] == 256 and "max_completion_tokens" not in body
    assert "stream_options" not in body  # usage comes anyway (see the emulator test below)
    assert body["model"] == get_dialect("openrouter").default_model
    assert schema_errors("openrouter", body) == []


def test_the_default_model_is_one_the_real_traffic_used() -> None:
    models = {load_exchange(p).request_body.get("model") for p in REAL_CASSETTES}
    assert get_dialect("openrouter").default_model in models


# ------------------------------------------------------------- the contract


@pytest.mark.parametrize("path", REAL_CASSETTES, ids=lambda p: p.stem)
def test_the_contract_accepts_every_real_request(path: Path) -> None:
    ex = load_exchange(path)
    assert schema_errors("openrouter", ex.request_body) == []


def test_the_contract_still_types_what_it_knows() -> None:
    body = dict(
        _real(
            "pydantic-ai__test_openrouter_thinking_high_emits_effort_high__i0_e40969"
        ).request_body
    )
    assert schema_errors("openrouter", body) == []
    assert schema_errors("openrouter", {**body, "reasoning": {"effort": "extreme"}})
    assert schema_errors("openrouter", {**body, "provider": {"order": "anthropic"}})
    assert schema_errors("openrouter", {**body, "models": "openai/gpt-4o"})
    assert schema_errors("openrouter", {**body, "tools": [{"type": "web_search"}]})
    # Unknown parameters are ignored by OpenRouter, so the contract lets them pass.
    assert schema_errors("openrouter", {**body, "frobnicate": True}) == []


# ------------------------------------------------ the emulator vs the real shapes


STREAMED = ("text", "tool_call", "parallel_tool_calls", "reasoning", "max_tokens_length")
WHOLE = ("text_nonstream", "tool_call", "reasoning")


def test_emulated_chunks_use_only_keys_real_chunks_have(emu: Emulator, real_keys: Keys) -> None:
    keys: Keys = defaultdict(set)
    comments: set[str] = set()
    for scenario in STREAMED:
        r = _emulated(emu, scenario, stream=True)
        assert r.status_code == 200, r.text
        assert r.text.startswith(": OPENROUTER PROCESSING\n\n")
        chunks, lines = _frames(r.content)
        _chunk_keys(chunks, keys)
        comments |= set(lines)
        assert "usage" in chunks[-1] and all("usage" not in c for c in chunks[:-1])
    for where, found in keys.items():
        assert found <= real_keys[where], (where, found - real_keys[where])
    # The gateway's own fields are there, as in the real traffic.
    assert {"provider"} <= keys["chunk"]
    assert {"native_finish_reason"} <= keys["choice"]
    assert {"reasoning", "reasoning_details"} <= keys["delta"]
    assert {"cost", "is_byok", "cost_details"} <= keys["usage"]
    real_comments = set()
    for path in REAL_CASSETTES:
        ex = load_exchange(path)
        if ex.is_sse:
            real_comments |= set(_frames(ex.body)[1])
    assert comments == real_comments == {": OPENROUTER PROCESSING"}


def test_emulated_replies_use_only_keys_real_replies_have(emu: Emulator, real_keys: Keys) -> None:
    keys: Keys = defaultdict(set)
    keepalive = re.compile(rb"(\n {9}\n)+\{")
    for scenario in WHOLE:
        r = _emulated(emu, scenario, stream=False)
        assert r.status_code == 200, r.text
        assert keepalive.match(r.content), r.content[:40]
        _reply_keys(r.json(), keys)
    for where, found in keys.items():
        assert found <= real_keys[where], (where, found - real_keys[where])
    assert {"provider"} <= keys["reply"] and {"native_finish_reason"} <= keys["reply.choice"]
    assert {"reasoning", "reasoning_details", "tool_calls"} <= keys["message"]
    # Real OpenRouter pads a whole reply with the same whitespace lines.
    assert any(
        keepalive.match(load_exchange(p).body)
        for p in REAL_CASSETTES
        if not load_exchange(p).is_sse
    )


def _shape(value: Any) -> Any:
    """Keys and leaf types, recursively: what two bodies must share to look alike."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_the_emulated_429_has_the_real_429s_shape(emu: Emulator) -> None:
    r = _emulated(emu, "error_rate_limit", stream=False)
    assert r.status_code == 429
    real = _real("pydantic-ai__test_openrouter_errors_raised__i0_7ce89f")
    assert real.status == 429
    assert _shape(r.json()) == _shape(json.loads(real.body))
    assert r.json()["error"]["message"] == json.loads(real.body)["error"]["message"]


def test_the_emulated_in_band_error_looks_like_the_real_one(emu: Emulator) -> None:
    r = _emulated(emu, "error_in_stream", stream=True)
    chunks, _ = _frames(r.content)
    emulated = chunks[-1]
    real_chunks, _ = _frames(_real("pydantic-ai__test_openrouter_stream_error__i0_d46e6c").body)
    (real,) = [c for c in real_chunks if "error" in c]
    assert set(emulated) - {"usage"} <= set(real)
    assert set(real["error"]) <= set(emulated["error"])
    assert type(emulated["error"]["code"]) is type(real["error"]["code"]) is int
    # The documented failure finish reason (docs: streaming, errors during streaming).
    assert emulated["choices"][0]["finish_reason"] == "error"


@pytest.mark.parametrize(
    ("key", "message"), [(None, "No auth credentials found"), ("invalid-key", "User not found.")]
)
def test_401_bodies(emu: Emulator, key: str | None, message: str) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    r = httpx.post(
        emu.base_url("openrouter") + "/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert r.status_code == 401
    assert r.json() == {"error": {"message": message, "code": 401}}


def test_reasoning_exclude_keeps_the_reasoning_out(emu: Emulator) -> None:
    body = {
        "model": "z-ai/glm-4.6",
        "messages": [{"role": "user", "content": "think"}],
        "stream": True,
        "reasoning": {"effort": "low", "exclude": True},
    }
    url = emu.base_url("openrouter") + "/chat/completions"
    headers = {"authorization": "Bearer k", SCENARIO_HEADER: "reasoning"}
    chunks, _ = _frames(httpx.post(url, json=body, headers=headers).content)
    assert not any(c["choices"][0]["delta"].get("reasoning") for c in chunks)
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    body["reasoning"] = {"effort": "low"}
    chunks, _ = _frames(httpx.post(url, json=body, headers=headers).content)
    assert any(c["choices"][0]["delta"].get("reasoning") for c in chunks)


# --------------------------------------------------- decoding the real traffic


@pytest.mark.parametrize("path", REAL_CASSETTES, ids=lambda p: p.stem)
def test_every_real_exchange_decodes(path: Path) -> None:
    ex = load_exchange(path)
    out = decode_recorded(ex, "openrouter")
    if ex.status >= 400:
        assert isinstance(out.exception, RateLimited)  # the corpus's 4xx are two 429s
        return
    if "stream_error" in path.stem:
        assert isinstance(out.exception, StreamError)
        return
    assert out.exception is None, out.error
    resp = out.response or response_from_events(out.raw_events).to_dict()
    assert resp["text"] or resp["tool_calls"]
    assert resp["usage"]["output_tokens"]


# Expectations read by hand from each cassette's body.
SPOT_CHECKS = [
    (
        "fantasy__simple__i0_346f44",  # whole reply padded with whitespace lines
        {"text": "Oi! 😊", "stop": "end_turn", "usage": (19, 7, 0, 0), "tools": []},
    ),
    (
        "fantasy__tool__i0_24b44d",  # Claude via Amazon Bedrock, content null
        {
            "text": "",
            "stop": "tool_use",
            "usage": (577, 54, 0, 0),
            "tools": [
                (
                    "toolu_bdrk_0156sNzvRkpm2xuxFNs2N49s",
                    "weather",
                    {"location": "Florence, Italy"},
                )
            ],
        },
    ),
    (
        "magentic__test_openrouter_chat_model_complete_streamed_response__i0_96c2fd",
        {
            "text": "My favorite city is Kyoto, Japan! Let me check the weather there for you.",
            "stop": "tool_use",
            "usage": (173, 40, 0, 0),
            "tools": [
                (
                    "chatcmpl-tool-8841ebdbc1974669a96e3801a0338190",
                    "get_weather",
                    {"location": "Kyoto, Japan"},
                )
            ],
        },
    ),
    (
        "fantasy__multi_tool_streaming__i0_0a36ba",  # grok: reasoning, then two calls
        {
            "text": "",
            "stop": "tool_use",
            "usage": (441, 267, 153, 199),
            "tools": [
                ("call_67055809", "add", {"a": 2, "b": 3}),
                ("call_54693838", "multiply", {"a": 2, "b": 3}),
            ],
        },
    ),
]


@pytest.mark.parametrize(("name", "want"), SPOT_CHECKS, ids=[s[0] for s in SPOT_CHECKS])
def test_real_exchanges_decode_to_what_they_say(name: str, want: dict[str, Any]) -> None:
    out = decode_recorded(_real(name), "openrouter")
    assert out.exception is None, out.error
    resp = out.response or response_from_events(out.raw_events).to_dict()
    assert resp["text"] == want["text"]
    assert resp["stop_reason"] == want["stop"]
    usage = resp["usage"]
    got = (
        usage["input_tokens"],
        usage["output_tokens"],
        usage["cache_read_input_tokens"],
        usage["reasoning_tokens"],
    )
    assert got == want["usage"]
    calls = resp["tool_calls"]
    assert [(c["id"], c["name"], c["arguments"]) for c in calls] == want["tools"]


def test_reasoning_details_do_not_double_the_thinking() -> None:
    ex = _real("fantasy__multi_tool_streaming__i0_0a36ba")
    chunks, _ = _frames(ex.body)
    said = "".join(c["choices"][0]["delta"].get("reasoning") or "" for c in chunks)
    details = "".join(
        d.get("summary") or d.get("text") or ""
        for c in chunks
        for d in c["choices"][0]["delta"].get("reasoning_details") or []
    )
    assert said and details == said  # the same reasoning, twice on the wire
    out = decode_recorded(ex, "openrouter")
    thinking = "".join(e.thinking for e in out.raw_events if isinstance(e, ThinkingDelta))
    assert thinking == said


def test_the_real_in_band_error_is_a_stream_error_after_the_thinking() -> None:
    out = decode_recorded(
        _real("pydantic-ai__test_openrouter_stream_error__i0_d46e6c"), "openrouter"
    )
    assert isinstance(out.exception, StreamError)
    assert out.error is not None
    assert out.error["message"] == "Token limit reached" and out.error["code"] == "400"
    thinking = "".join(e.thinking for e in out.raw_events if isinstance(e, ThinkingDelta))
    assert thinking == "We need to respond to a greeting. The user"


def test_the_real_429_is_rate_limited() -> None:
    out = decode_recorded(
        _real("pydantic-ai__test_openrouter_errors_raised__i1_a61e80"), "openrouter"
    )
    assert isinstance(out.exception, RateLimited)
    assert out.error is not None and out.error["status_code"] == 429


def test_openrouter_context_errors_give_their_numbers() -> None:
    # The wording OpenRouter uses (public captures of its 400).
    body = {
        "error": {
            "message": "This endpoint's maximum context length is 32768 tokens. However, you "
            "requested about 36397 tokens (36397 of text input). Please reduce the length of "
            'either one, or use the "middle-out" transform to compress your prompt '
            "automatically.",
            "code": 400,
        }
    }
    err = classify_error(400, {}, body, get_dialect("openrouter"))
    assert isinstance(err, ContextLengthExceeded)
    assert (err.max_tokens, err.requested_tokens) == (32768, 36397)


def test_readme_lists_every_builtin_provider() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    factories = re.search(r"factories \(([^)]*)\)", readme)
    assert factories is not None
    for dialect in BUILTIN:
        assert f"`{dialect.name}`" in factories.group(1)
        assert dialect.api_key_env is None or dialect.api_key_env in readme
    assert "OpenRouter" in readme
