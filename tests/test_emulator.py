"""Tests of the provider emulator, using httpx directly as the client."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from transports import PROVIDERS, TLS

from provider_impl.dialects import DIALECTS
from provider_impl.emulator import FAULTS, PROVIDER_PREFIXES, Emulator
from provider_impl.scenarios import SCENARIOS

KEY = "sk-emulator-test-0000"
AUTH = {"authorization": f"Bearer {KEY}"}

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extra": {"type": "object"},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}
WEATHER_ARGS = {"city": "Paris", "days": 3, "metric": True, "tags": [], "extra": {}}


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, verify=TLS) as c:
        yield c


def quiet_reset(emu: Emulator) -> None:
    """Reset the counters once earlier tests' connections have all closed."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        snap = emu.stats.snapshot()
        if snap["connections_opened"] == snap["connections_closed"]:
            break
        time.sleep(0.01)
    emu.reset_stats()


def settled_stats(emu: Emulator, timeout: float = 3.0, **expected: int) -> dict[str, int]:
    """The counters once they show ``expected`` (or after ``timeout`` seconds, as they are)."""
    deadline = time.monotonic() + timeout
    snap = emu.stats.snapshot()
    while any(snap[k] != v for k, v in expected.items()) and time.monotonic() < deadline:
        time.sleep(0.005)
        snap = emu.stats.snapshot()
    return snap


def body_for(provider: str, text: str = "hello there world", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": text},
        ],
        "stream": True,
    }
    if provider in ("openai", "claude_subscription", "gemini", "glm"):
        body["stream_options"] = {"include_usage": True}
    body.update(extra)
    return body


def post(
    client: httpx.Client,
    emu: Emulator,
    provider: str,
    body: Any,
    scenario: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    h = dict(AUTH)
    if scenario:
        h["x-emulator-scenario"] = scenario
    h.update(headers or {})
    url = emu.base_url(provider) + "/chat/completions"
    if isinstance(body, (bytes, str)):
        return client.post(url, content=body, headers=h)
    return client.post(url, json=body, headers=h)


def parse_sse(text: str) -> tuple[list[Any], list[str], bool]:
    """(JSON data frames, comment lines, saw [DONE]) of an SSE body."""
    frames: list[Any] = []
    comments: list[str] = []
    done = False
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        data_lines = []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("data:"):
                data_lines.append(line[5:].lstrip(" "))
        if not data_lines:
            continue
        data = "\n".join(data_lines)
        if data == "[DONE]":
            done = True
        else:
            frames.append(json.loads(data))
    return frames, comments, done


def stream_text(frames: list[Any]) -> str:
    out = []
    for f in frames:
        for ch in f.get("choices", []):
            content = ch.get("delta", {}).get("content")
            if isinstance(content, str) and not ch["delta"].get("extra_content"):
                out.append(content)
    return "".join(out)


# ---------------------------------------------------------------- text streams


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_stream_framing(emu: Emulator, client: httpx.Client, provider: str) -> None:
    r = post(client, emu, provider, body_for(provider), "text")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["transfer-encoding"] == "chunked"
    frames, comments, done = parse_sse(r.text)
    assert done and r.text.endswith("data: [DONE]\n\n")
    assert stream_text(frames) == "Echo: hello there world"
    text_chunks = [f for f in frames if stream_text([f])]
    assert len(text_chunks) >= 3, "reply must be split across several chunks"

    if provider == "openai":
        assert all(re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", f["id"]) for f in frames)
        assert len({f["id"] for f in frames}) == 1
        assert r.headers["x-request-id"].startswith("req_")
        assert frames[0]["choices"][0]["delta"]["role"] == "assistant"
        assert frames[-1]["choices"] == []
        usage = frames[-1]["usage"]
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert all(f["usage"] is None for f in frames[:-1])
        assert frames[-2]["choices"][0]["finish_reason"] == "stop"
        # Without include_usage there is no usage chunk at all.
        r2 = post(client, emu, provider, {**body_for(provider), "stream_options": {}}, "text")
        frames2, _, _ = parse_sse(r2.text)
        assert all("usage" not in f for f in frames2)
        assert frames2[-1]["choices"][0]["finish_reason"] == "stop"
    elif provider == "gemini":
        assert r.headers["content-encoding"] == "gzip"
        assert all("id" not in f for f in frames)
        totals = [f["usage"]["completion_tokens"] for f in frames]
        assert totals == sorted(totals) and totals[0] < totals[-1]
        for f in frames[:-1]:
            assert "finish_reason" not in f["choices"][0]
        assert frames[-1]["choices"][0]["finish_reason"] == "stop"
    elif provider == "mistral":
        assert all(re.fullmatch(r"[0-9a-f]{32}", f["id"]) for f in frames)
        assert "x-kong-request-id" in r.headers
        assert frames[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert all("usage" not in f for f in frames[:-1])
        assert frames[-1]["choices"][0]["finish_reason"] == "stop"
        assert set(frames[-1]["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
        assert all("finish_reason" in f["choices"][0] for f in frames)
    elif provider == "openrouter":
        # As in cassettes/real/openrouter: keep-alive comments first, the gateway's
        # fields on every chunk, the finish chunk twice, usage (with cost) on the last.
        assert r.text.startswith(": OPENROUTER PROCESSING\n\n")
        assert set(comments) == {": OPENROUTER PROCESSING"}
        assert all(re.fullmatch(r"gen-\d{10}-[A-Za-z0-9]{20}", f["id"]) for f in frames)
        assert r.headers["x-generation-id"] == frames[0]["id"]
        assert all(f["provider"] and "native_finish_reason" in f["choices"][0] for f in frames)
        assert [f["choices"][0]["finish_reason"] for f in frames[-2:]] == ["stop", "stop"]
        assert [("usage" in f) for f in frames] == [False] * (len(frames) - 1) + [True]
        usage = frames[-1]["usage"]
        assert usage["cost"] > 0 and usage["is_byok"] is False
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    elif provider == "glm":
        assert all(re.fullmatch(r"\d{14}[0-9a-f]{16}", f["id"]) for f in frames)
        assert all(f["choices"][0]["delta"]["role"] == "assistant" for f in frames)
        assert all("finish_reason" not in f["choices"][0] for f in frames[:-1])
        last = frames[-1]
        assert last["choices"][0]["finish_reason"] == "stop"
        assert "cached_tokens" in last["usage"]["prompt_tokens_details"]
        assert "reasoning_tokens" in last["usage"]["completion_tokens_details"]
    else:
        # claude-max-api-proxy (routes.js): ":ok" first, nothing else but data; no
        # usage even when asked for; content chunks name claude-sonnet-4 until the
        # CLI's model is known (tests/test_claude_proxy_emulator.py: the real one agrees).
        assert r.text.startswith(":ok\n\n") and comments == [":ok"]
        assert all(re.fullmatch(r"chatcmpl-[0-9a-f]{24}", f["id"]) for f in frames)
        assert frames[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
        assert all("usage" not in f for f in frames)
        assert {f["model"] for f in frames[:-1]} == {"claude-sonnet-4"}
        assert frames[-1]["model"] == "claude-opus-4"  # "test-model" runs as opus


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_nonstream_shape(emu: Emulator, client: httpx.Client, provider: str) -> None:
    body = body_for(provider, "just once", stream=False)
    body.pop("stream_options", None)
    r = post(client, emu, provider, body, "text_nonstream")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["content"] == "Echo: just once"
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] > 0
    # Gemini's whole replies carry an id too (only its chunks have none).
    assert isinstance(data["id"], str) and data["id"]
    if provider == "glm":
        assert data["request_id"] == data["id"]


def test_responses_are_deterministic(emu: Emulator, client: httpx.Client) -> None:
    a = post(client, emu, "openai", body_for("openai"), "tool_call")
    b = post(client, emu, "openai", body_for("openai"), "tool_call")
    assert a.text == b.text
    assert a.headers["x-request-id"] == b.headers["x-request-id"]
    c = post(client, emu, "openai", body_for("openai", "something else"), "tool_call")
    assert parse_sse(c.text)[0][0]["id"] != parse_sse(a.text)[0][0]["id"]


# ----------------------------------------------------------------- tool calls


TOOL_PROVIDERS = [p for p in PROVIDERS if DIALECTS[p].capabilities.tool_calling]


@pytest.mark.parametrize("provider", TOOL_PROVIDERS)
def test_tool_call_stream(emu: Emulator, client: httpx.Client, provider: str) -> None:
    body = body_for(provider, "weather in Paris?", tools=[WEATHER_TOOL])
    r = post(client, emu, provider, body, "tool_call")
    assert r.status_code == 200, r.text
    frames, _, done = parse_sse(r.text)
    assert done
    call_chunks = [
        f for f in frames if f.get("choices") and f["choices"][0]["delta"].get("tool_calls")
    ]
    finishes = [
        f["choices"][0]["finish_reason"]
        for f in frames
        if f.get("choices") and f["choices"][0].get("finish_reason")
    ]
    if provider in ("openai", "claude_subscription"):
        first = call_chunks[0]["choices"][0]["delta"]["tool_calls"][0]
        assert first["index"] == 0 and first["type"] == "function"
        assert first["function"] == {"name": "get_weather", "arguments": ""}
        assert first["id"].startswith("call_")
        frags = []
        for f in call_chunks[1:]:
            (tc,) = f["choices"][0]["delta"]["tool_calls"]
            assert tc["index"] == 0 and "id" not in tc
            assert 1 <= len(tc["function"]["arguments"]) <= 8
            frags.append(tc["function"]["arguments"])
        assert len(frags) >= 3
        assert json.loads("".join(frags)) == WEATHER_ARGS
        assert finishes == ["tool_calls"]
        if provider == "claude_subscription":
            assert stream_text(frames) == "I'll check that for you."
        else:
            assert stream_text(frames) == ""
    elif provider == "openrouter":
        first = call_chunks[0]["choices"][0]["delta"]
        assert first["content"] is None and first["role"] == "assistant"
        (head,) = first["tool_calls"]
        assert head["function"] == {"name": "get_weather", "arguments": ""}
        frags = [f["choices"][0]["delta"]["tool_calls"][0] for f in call_chunks[1:]]
        assert all(tc["index"] == 0 and "id" not in tc for tc in frags)
        assert json.loads("".join(tc["function"]["arguments"] for tc in frags)) == WEATHER_ARGS
        assert finishes == ["tool_calls", "tool_calls"]
        assert stream_text(frames) == ""
    elif provider == "gemini":
        assert len(call_chunks) == 1
        (tc,) = call_chunks[0]["choices"][0]["delta"]["tool_calls"]
        assert tc["id"] == "" and "index" not in tc
        assert tc["function"]["name"] == "get_weather"
        assert json.loads(tc["function"]["arguments"]) == WEATHER_ARGS
        assert finishes == ["stop"]
    elif provider == "mistral":
        assert len(call_chunks) == 1
        chunk = call_chunks[0]
        (tc,) = chunk["choices"][0]["delta"]["tool_calls"]
        assert re.fullmatch(r"[A-Za-z0-9]{9}", tc["id"])
        assert "index" not in tc and "type" not in tc
        assert json.loads(tc["function"]["arguments"]) == WEATHER_ARGS
        assert chunk["choices"][0]["finish_reason"] == "tool_calls"
        assert "usage" in chunk
    else:
        reasoning_idx = [
            i for i, f in enumerate(frames) if f["choices"][0]["delta"].get("reasoning_content")
        ]
        call_idx = frames.index(call_chunks[0])
        assert reasoning_idx and max(reasoning_idx) < call_idx
        (tc,) = call_chunks[0]["choices"][0]["delta"]["tool_calls"]
        assert tc["index"] == 0 and re.fullmatch(r"call_[0-9a-f]{24}", tc["id"])
        assert json.loads(tc["function"]["arguments"]) == WEATHER_ARGS
        assert finishes == ["tool_calls"]
        usage = frames[-1]["usage"]
        assert usage["completion_tokens_details"]["reasoning_tokens"] > 0


@pytest.mark.parametrize("provider", TOOL_PROVIDERS)
def test_parallel_tool_calls(emu: Emulator, client: httpx.Client, provider: str) -> None:
    body = body_for(provider, "weather and time", tools=[WEATHER_TOOL, TIME_TOOL])
    r = post(client, emu, provider, body, "parallel_tool_calls")
    frames, _, _ = parse_sse(r.text)
    calls: dict[int, dict[str, str]] = {}
    order = 0
    for f in frames:
        if not f.get("choices"):
            continue
        for tc in f["choices"][0]["delta"].get("tool_calls") or []:
            idx = tc.get("index")
            if idx is None:  # Gemini / Mistral: whole calls, no index
                idx = order
                order += 1
            entry = calls.setdefault(idx, {"name": "", "arguments": ""})
            fn = tc.get("function", {})
            entry["name"] += fn.get("name", "")
            entry["arguments"] += fn.get("arguments", "")
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["arguments"]) == {"zone": "Paris"}
    if provider in ("mistral", "gemini"):
        chunks = [f for f in frames if f["choices"][0]["delta"].get("tool_calls")]
        assert len(chunks) == 1 and len(chunks[0]["choices"][0]["delta"]["tool_calls"]) == 2


def test_parallel_same_tool_twice_differs(emu: Emulator, client: httpx.Client) -> None:
    body = body_for("mistral", "twice", tools=[WEATHER_TOOL])
    frames, _, _ = parse_sse(post(client, emu, "mistral", body, "parallel_tool_calls").text)
    calls = frames[1]["choices"][0]["delta"]["tool_calls"]
    args = [json.loads(c["function"]["arguments"]) for c in calls]
    assert args[0] != args[1] and args[1]["city"] == "London"
    # Mistral serialises arguments with spaces, as the real API does.
    assert '"city": "Paris"' in calls[0]["function"]["arguments"]


def test_tool_result_followup(emu: Emulator, client: httpx.Client) -> None:
    body = {
        "model": "m",
        "stream": True,
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21C"},
        ],
    }
    frames, _, _ = parse_sse(post(client, emu, "openai", body, "tool_result_followup").text)
    assert "Sunny, 21C" in stream_text(frames)


# ----------------------------------------------------------- other scenarios


def test_reasoning_per_provider(emu: Emulator, client: httpx.Client) -> None:
    r = post(client, emu, "openai", body_for("openai", "think"), "reasoning")
    frames, _, _ = parse_sse(r.text)
    assert frames[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    assert stream_text(frames) == "Echo: think"

    frames, _, _ = parse_sse(post(client, emu, "gemini", body_for("gemini"), "reasoning").text)
    thoughts = [f for f in frames if f["choices"][0]["delta"].get("extra_content")]
    assert thoughts and thoughts[0]["choices"][0]["delta"]["extra_content"] == {
        "google": {"thought": True}
    }

    frames, _, _ = parse_sse(post(client, emu, "mistral", body_for("mistral"), "reasoning").text)
    lists = [f for f in frames if isinstance(f["choices"][0]["delta"].get("content"), list)]
    assert lists[0]["choices"][0]["delta"]["content"][0]["type"] == "thinking"
    assert stream_text(frames) == "Echo: hello there world"

    frames, _, _ = parse_sse(post(client, emu, "glm", body_for("glm"), "reasoning").text)
    assert frames[0]["choices"][0]["delta"].get("reasoning_content")


def test_max_tokens_and_stop_sequence(emu: Emulator, client: httpx.Client) -> None:
    body = body_for("mistral", "a b c d e f", max_tokens=3)
    frames, _, _ = parse_sse(post(client, emu, "mistral", body, "max_tokens_length").text)
    assert frames[-1]["choices"][0]["finish_reason"] == "length"
    assert frames[-1]["usage"]["completion_tokens"] == 3
    r = post(
        client, emu, "mistral", body, "max_tokens_length", {"x-emulator-variant": "model_length"}
    )
    assert parse_sse(r.text)[0][-1]["choices"][0]["finish_reason"] == "model_length"

    body = body_for("openai", "one two three four", stop=["three"])
    frames, _, _ = parse_sse(post(client, emu, "openai", body, "stop_sequence").text)
    text = stream_text(frames)
    assert text == "Echo: one two " and "three" not in text
    assert frames[-2]["choices"][0]["finish_reason"] == "stop"
    body = body_for("openai", "Count from 1 to 10.", stop=["5"])
    frames, _, _ = parse_sse(post(client, emu, "openai", body, "stop_sequence").text)
    assert stream_text(frames) == "Echo: Count from 1 to 10. Then: 1, 2, 3, 4, "


def test_system_multi_turn(emu: Emulator, client: httpx.Client) -> None:
    body = body_for("glm", "third")
    body["messages"][1:1] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
    ]
    frames, _, _ = parse_sse(post(client, emu, "glm", body, "system_multi_turn").text)
    assert stream_text(frames).startswith("You said 2 things in 4 messages; system: Be brief.")


@pytest.mark.parametrize(
    ("provider", "finish"),
    [("openai", "content_filter"), ("gemini", "content_filter"), ("glm", "sensitive")],
)
def test_content_filter(emu: Emulator, client: httpx.Client, provider: str, finish: str) -> None:
    frames, _, _ = parse_sse(post(client, emu, provider, body_for(provider), "content_filter").text)
    reasons = [f["choices"][0].get("finish_reason") for f in frames if f["choices"]]
    assert finish in reasons


def test_unicode_split_inside_a_character(emu: Emulator, client: httpx.Client) -> None:
    url = emu.base_url("openai") + "/chat/completions"
    headers = {**AUTH, "x-emulator-scenario": "unicode"}
    with client.stream("POST", url, json=body_for("openai"), headers=headers) as r:
        raw_chunks = list(r.iter_raw())
    split_seen = False
    for chunk in raw_chunks:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            split_seen = True
    assert split_seen, "some HTTP chunk must end inside a multi-byte character"
    body = b"".join(raw_chunks)
    for ch in ("\u2028", "\u2029", "\u0085", "👩\u200d💻", "日本語"):
        assert ch.encode() in body  # raw on the wire, not \u-escaped
    frames, _, done = parse_sse(body.decode("utf-8"))
    assert done and "\u2028line\u2029paragraph\u0085next-line" in stream_text(frames)


def test_gemini_gzip_on_the_wire(emu: Emulator, client: httpx.Client) -> None:
    url = emu.base_url("gemini") + "/chat/completions"
    with client.stream("POST", url, json=body_for("gemini"), headers=AUTH) as r:
        assert r.headers["content-encoding"] == "gzip"
        raw = b"".join(r.iter_raw())
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw).decode().endswith("data: [DONE]\n\n")
    # Non-streaming and error bodies are gzip too, and absent when not accepted.
    r2 = post(client, emu, "gemini", {"model": "g", "messages": [{"role": "user", "content": "x"}]})
    assert r2.headers["content-encoding"] == "gzip" and r2.json()["object"] == "chat.completion"
    r3 = post(client, emu, "gemini", body_for("gemini"), headers={"accept-encoding": "identity"})
    assert "content-encoding" not in r3.headers and parse_sse(r3.text)[2]


# ------------------------------------------------------------- auth & errors


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("key", [None, "sk-invalid-abcdefghijklmnop"])
def test_auth_rejection(
    emu: Emulator, client: httpx.Client, provider: str, key: str | None
) -> None:
    url = emu.base_url(provider) + "/chat/completions"
    headers = {"authorization": f"Bearer {key}"} if key else {}
    r = client.post(url, json=body_for(provider), headers=headers)
    if provider == "claude_subscription":
        assert r.status_code == 200  # the local proxy ignores auth
        return
    assert r.status_code == 401
    if key:
        assert key not in r.text
    data = r.json()
    if provider == "openai":
        assert data["error"]["code"] == "invalid_api_key"
        assert data["error"]["type"] == "invalid_request_error" and data["error"]["param"] is None
        if key:
            assert "sk-...mnop" in data["error"]["message"]
    elif provider == "gemini":
        assert isinstance(data, list)
        assert data[0]["error"]["code"] == 401 and data[0]["error"]["status"] == "UNAUTHENTICATED"
    elif provider == "mistral":
        assert data["message"] == "Unauthorized"
        assert re.fullmatch(r"[0-9a-f]{32}", data["request_id"])
    elif provider == "openrouter":
        message = "User not found." if key else "No auth credentials found"
        assert data == {"error": {"message": message, "code": 401}}
    else:
        assert data["error"]["code"] in {"1000", "1001", "1002", "1003", "1004"}


def test_gemini_alternative_key_locations(emu: Emulator, client: httpx.Client) -> None:
    url = emu.base_url("gemini") + "/chat/completions"
    assert client.post(url, json=body_for("gemini"), headers={"x-goog-api-key": KEY}).is_success
    assert client.post(url + f"?key={KEY}", json=body_for("gemini")).is_success
    assert client.post(url + "?key=invalid", json=body_for("gemini")).status_code == 401


@pytest.mark.parametrize("field", ["stream_options", "max_completion_tokens"])
def test_mistral_422_extra_forbidden(emu: Emulator, client: httpx.Client, field: str) -> None:
    value: Any = {"include_usage": True} if field == "stream_options" else 50
    body = {**body_for("mistral"), field: value}
    r = post(client, emu, "mistral", body)
    assert r.status_code == 422
    data = r.json()
    assert data["object"] == "error" and data["type"] == "invalid_request_error"
    (detail,) = data["message"]["detail"]
    assert detail == {
        "type": "extra_forbidden",
        "loc": ["body", field],
        "msg": "Extra inputs are not permitted",
        "input": value,
    }


def test_unknown_field_rejections(emu: Emulator, client: httpx.Client) -> None:
    r = post(client, emu, "openai", {**body_for("openai"), "foo": 1})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "message": "Unrecognized request argument supplied: foo",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    r = post(client, emu, "gemini", {**body_for("gemini"), "foo": 1})
    assert r.status_code == 400
    (err,) = r.json()
    assert err["error"]["status"] == "INVALID_ARGUMENT"
    assert 'Unknown name "foo": Cannot find field.' in err["error"]["message"]
    r = post(client, emu, "glm", {**body_for("glm"), "foo": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "1210"
    r = post(client, emu, "claude_subscription", {**body_for("claude_subscription"), "foo": 1})
    assert r.status_code == 200
    r = post(
        client, emu, "openai", {**body_for("openai"), "max_tokens": 5, "max_completion_tokens": 5}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_json(emu: Emulator, client: httpx.Client, provider: str) -> None:
    r = post(client, emu, provider, b"{not json")
    assert r.status_code == 400
    r.json()  # the error itself is JSON in the provider's shape


def test_context_length_with_oversized_prompt(emu: Emulator, client: httpx.Client) -> None:
    big = "x" * 600_000  # 150,000 estimated tokens > 128,000
    r = post(client, emu, "openai", body_for("openai", big))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded"
    assert "maximum context length is 128000 tokens" in err["message"]
    assert "resulted in 150003 tokens" in err["message"]  # + "Be brief." (9 chars)
    # The same prompt fits in Gemini's window.
    assert post(client, emu, "gemini", body_for("gemini", big)).status_code == 200


ERROR_STATUS = {
    "error_rate_limit": {p: 429 for p in PROVIDERS},
    "error_context_length": {p: 400 for p in PROVIDERS},
    "error_overloaded": {
        "openai": 503,
        "gemini": 503,
        "mistral": 503,
        "glm": 500,
        "claude_subscription": 500,  # the proxy answers every CLI failure so
        "openrouter": 502,
    },
    "error_invalid_param": {
        "openai": 400,
        "gemini": 400,
        "mistral": 422,
        "glm": 400,
        "claude_subscription": 400,
        "openrouter": 400,
    },
    "error_auth": {p: 401 for p in PROVIDERS},
}


@pytest.mark.parametrize("scenario", list(ERROR_STATUS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_scenarios(emu: Emulator, client: httpx.Client, provider: str, scenario: str) -> None:
    if not SCENARIOS[scenario].applies_to(provider):
        pytest.skip(f"{scenario} does not apply to {provider} (its record's flags)")
    r = post(client, emu, provider, body_for(provider), scenario)
    assert r.status_code == ERROR_STATUS[scenario][provider], r.text
    data = r.json()
    if provider == "gemini":
        assert isinstance(data, list) and "status" in data[0]["error"]
    if scenario == "error_rate_limit":
        assert r.headers["retry-after"] == "2"
        if provider == "openai":
            assert r.headers["retry-after-ms"] == "2000"
            assert data["error"]["code"] == "rate_limit_exceeded"
        if provider == "gemini":
            details = data[0]["error"]["details"]
            assert {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": "2s",
            } in details
        if provider == "mistral":
            assert data["code"] == "1300" and data["type"] == "rate_limited"
        if provider == "glm":
            assert data["error"]["code"] == "1302"
    if scenario == "error_context_length":
        if provider == "glm":
            assert data["error"]["code"] == "1261"
        if provider == "mistral":
            assert data["code"] == "3051"
    if scenario == "error_invalid_param":
        assert "not_a_real_param" in r.text


def test_in_stream_errors(emu: Emulator, client: httpx.Client) -> None:
    frames, _, done = parse_sse(
        post(client, emu, "openai", body_for("openai"), "error_in_stream").text
    )
    assert frames[-1]["error"]["type"] == "server_error" and not done
    assert stream_text(frames[:-1])
    frames, _, done = parse_sse(
        post(
            client, emu, "claude_subscription", body_for("claude_subscription"), "error_in_stream"
        ).text
    )
    assert "error" in frames[-1] and done
    frames, _, _ = parse_sse(post(client, emu, "glm", body_for("glm"), "error_in_stream").text)
    assert frames[-1]["choices"][0]["finish_reason"] == "network_error"
    frames, _, _ = parse_sse(
        post(client, emu, "mistral", body_for("mistral"), "error_in_stream").text
    )
    assert frames[-1]["choices"][0]["finish_reason"] == "error"
    frames, _, _ = parse_sse(
        post(client, emu, "gemini", body_for("gemini"), "error_in_stream").text
    )
    assert frames[-1][0]["error"]["status"] == "INTERNAL"
    frames, _, done = parse_sse(
        post(client, emu, "openrouter", body_for("openrouter"), "error_in_stream").text
    )
    assert frames[-1]["error"]["code"] == 502 and done
    assert frames[-1]["choices"][0]["finish_reason"] == "error"


def test_routing_errors(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(emu.url + "/nope/v1/chat/completions", json={}, headers=AUTH)
    assert r.status_code == 404 and "error" in r.json()
    r = client.post(emu.base_url("openai") + "/completions", json={}, headers=AUTH)
    assert r.status_code == 404
    r = client.get(emu.base_url("openai") + "/chat/completions", headers=AUTH)
    assert r.status_code == 405
    r = post(client, emu, "openai", body_for("openai"), "no_such_scenario")
    assert r.status_code == 400 and "no_such_scenario" in r.json()["error"]["message"]
    r = post(client, emu, "openai", body_for("openai"), headers={"x-emulator-fault": "nope"})
    assert r.status_code == 400


def test_bad_http_gets_400_and_server_survives(emu: Emulator, client: httpx.Client) -> None:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 400 ")
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\r\nContent-Length: zz\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")
    assert post(client, emu, "openai", body_for("openai")).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /openai/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n",
        b"POST /openai/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /openai/v1/chat/completions HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
        b"POST /openai/v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{",
        b"\x00\xff\xfe garbage",
    ],
)
def test_malformed_http_never_kills_the_server(
    emu: Emulator, client: httpx.Client, raw: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply == b"" or re.match(rb"HTTP/1\.1 (400|413|431|501|505) ", reply)
    assert post(client, emu, "glm", body_for("glm")).status_code == 200


def test_keep_alive_and_chunked_request_body(emu: Emulator) -> None:
    quiet_reset(emu)
    with httpx.Client(timeout=5) as c:
        for _ in range(3):
            assert post(c, emu, "mistral", body_for("mistral")).status_code == 200
        payload = json.dumps(body_for("mistral", "chunked body")).encode()
        r = c.post(
            emu.base_url("mistral") + "/chat/completions",
            content=iter([payload[:10], payload[10:]]),
            headers=AUTH,
        )
        assert "Echo: chunked body" in stream_text(parse_sse(r.text)[0])
    # The server counts a stream as completed after its last write returns, which
    # can be after the client has read that last byte: wait for the count, bounded.
    stats = settled_stats(emu, streams_completed=4)
    assert stats["connections_opened"] == 1 and stats["requests"] == 4
    assert stats["streams_completed"] == 4


# --------------------------------------------------------------------- faults


def test_fault_reset_breaks_the_body(emu: Emulator, client: httpx.Client) -> None:
    url = emu.base_url("openai") + "/chat/completions"
    headers = {**AUTH, "x-emulator-fault": "reset", "x-emulator-fault-after": "2"}
    received = b""
    with (
        pytest.raises(httpx.TransportError),
        client.stream("POST", url, json=body_for("openai"), headers=headers) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            received += chunk
    assert received.count(b"data: ") == 2 and b"[DONE]" not in received


def test_fault_stall_exceeds_read_timeout(emu: Emulator) -> None:
    quiet_reset(emu)
    headers = {"x-emulator-fault": "stall", "x-emulator-stall-seconds": "5"}
    with httpx.Client(timeout=httpx.Timeout(5, read=0.3)) as c:
        t0 = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            post(c, emu, "glm", body_for("glm"), headers=headers)
        assert time.monotonic() - t0 < 2
        # Mid-stream stall: headers and a frame arrive, then silence.
        url = emu.base_url("glm") + "/chat/completions"
        h = {**AUTH, **headers, "x-emulator-fault-after": "1"}
        got = b""
        with (
            pytest.raises(httpx.ReadTimeout),
            c.stream("POST", url, json=body_for("glm"), headers=h) as r,
        ):
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                got += chunk
        assert got.count(b"data: ") == 1
    # The server notices the client leaving during a stall and counts the abort.
    deadline = time.monotonic() + 3
    while emu.stats.streams_aborted_by_client < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.stats.streams_aborted_by_client == 2


def test_fault_truncate(emu: Emulator, client: httpx.Client) -> None:
    for provider in ("openai", "gemini"):
        r = post(
            client, emu, provider, body_for(provider), headers={"x-emulator-fault": "truncate"}
        )
        assert r.status_code == 200
        assert b"[DONE]" not in r.content
        tail = r.text.rsplit("\n\n", 1)[-1]
        assert tail.startswith("data: {") and not tail.endswith("}")


def test_fault_error_frame(emu: Emulator, client: httpx.Client) -> None:
    headers = {"x-emulator-fault": "error_frame", "x-emulator-fault-after": "1"}
    frames, _, done = parse_sse(
        post(client, emu, "openai", body_for("openai"), headers=headers).text
    )
    assert len(frames) == 2 and "error" in frames[1] and not done


@pytest.mark.parametrize(("fault", "status"), [("rate_limit", 429), ("unavailable_then_ok", 503)])
def test_fault_fail_then_succeed(
    emu: Emulator, client: httpx.Client, fault: str, status: int
) -> None:
    key = f"key-{fault}-{time.monotonic_ns()}"
    headers = {
        "x-emulator-fault": fault,
        "x-emulator-request-key": key,
        "x-emulator-fail-times": "2",
        "x-emulator-retry-after": "3",
    }
    for _ in range(2):
        r = post(client, emu, "mistral", body_for("mistral"), headers=headers)
        assert r.status_code == status
        if fault == "rate_limit":
            assert r.headers["retry-after"] == "3"
    r = post(client, emu, "mistral", body_for("mistral"), headers=headers)
    assert r.status_code == 200 and parse_sse(r.text)[2]
    # After a success the same key fails afresh (a new retry cycle) ...
    assert post(client, emu, "mistral", body_for("mistral"), headers=headers).status_code == status
    # ... and so does another key.
    other = {**headers, "x-emulator-request-key": key + "-other"}
    assert post(client, emu, "mistral", body_for("mistral"), headers=other).status_code == status


def test_fault_trickle_and_client_disconnect_is_counted(emu: Emulator) -> None:
    quiet_reset(emu)
    headers = {"x-emulator-fault": "trickle", "x-emulator-trickle-ms": "100"}
    url = emu.base_url("openai") + "/chat/completions"
    with httpx.Client(timeout=5) as c:
        t0 = time.monotonic()
        with c.stream("POST", url, json=body_for("openai"), headers={**AUTH, **headers}) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    break  # walk away after the first frame
        assert time.monotonic() - t0 < 1
    deadline = time.monotonic() + 3
    while emu.stats.streams_aborted_by_client < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = emu.stats.snapshot()
    assert stats["streams_aborted_by_client"] == 1
    assert stats["streams_completed"] == 0
    while emu.stats.connections_closed < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.stats.connections_closed == emu.stats.connections_opened == 1

    # A complete trickled stream takes (frames - 1) * delay.
    with httpx.Client(timeout=5) as c:
        t0 = time.monotonic()
        r = post(c, emu, "glm", body_for("glm"), headers=headers)
        assert parse_sse(r.text)[2] and time.monotonic() - t0 >= 0.4


def test_fault_names_are_documented() -> None:
    assert set(FAULTS) == {
        "reset",
        "stall",
        "truncate",
        "error_frame",
        "rate_limit",
        "unavailable_then_ok",
        "trickle",
        "keepalive",
        "trickle_head",
        "trickle_bytes",
        "gzip_bomb",
    }
    assert {"text", "tool_call", "error_in_stream", "unicode"} <= set(SCENARIOS)


# ---------------------------------------------------------------- concurrency


def test_200_concurrent_streams(emu: Emulator) -> None:
    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
        async with httpx.AsyncClient(timeout=20, limits=limits) as c:

            async def one(i: int) -> str:
                provider = PROVIDERS[i % len(PROVIDERS)]
                url = emu.base_url(provider) + "/chat/completions"
                async with c.stream(
                    "POST",
                    url,
                    json=body_for(provider, f"client number {i}"),
                    headers={**AUTH, "x-emulator-fault": "trickle", "x-emulator-trickle-ms": "5"},
                ) as r:
                    assert r.status_code == 200
                    text = (await r.aread()).decode()
                frames, _, done = parse_sse(text)
                assert done
                return stream_text(frames)

            return await asyncio.gather(*(one(i) for i in range(200)))

    quiet_reset(emu)
    texts = asyncio.run(run())
    assert texts == [f"Echo: client number {i}" for i in range(200)]
    assert emu.stats.streams_completed == 200


# ------------------------------------------------------------- async and CLI


async def test_serve_inside_a_running_loop() -> None:
    emulator = Emulator()
    await emulator.start_async()
    task = asyncio.create_task(emulator.serve())
    try:
        async with httpx.AsyncClient() as c:
            r = await c.post(
                emulator.base_url("openai") + "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "in loop"}]},
                headers=AUTH,
            )
        assert r.json()["choices"][0]["message"]["content"] == "Echo: in loop"
        # stream_options is only allowed with stream:true on OpenAI.
        async with httpx.AsyncClient() as c:
            r = await c.post(
                emulator.base_url("openai") + "/chat/completions",
                json=body_for("openai", stream=False),
                headers=AUTH,
            )
        assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options"
    finally:
        await emulator.stop_async()
        await task


def test_cli_main_prints_urls_and_serves() -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "provider_impl.emulator", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        lines = [proc.stdout.readline().strip() for _ in PROVIDER_PREFIXES]
        assert f"openai: {base}/openai/v1" in lines
        r = httpx.post(
            base + "/glm/api/paas/v4/chat/completions",
            json=body_for("glm", "via cli"),
            headers=AUTH,
            timeout=5,
        )
        assert "Echo: via cli" in stream_text(parse_sse(r.text)[0])
    finally:
        proc.terminate()
        proc.wait(timeout=5)
