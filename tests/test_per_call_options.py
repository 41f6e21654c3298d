"""Issue 12 part 3: one call's own timeout, headers and extra_body, on one provider.

A two-call agent loop runs against a mock transport that records what each
call sent: the body, the headers and the timeout httpx was given.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from provider_impl import (
    CompletionRequest,
    InvalidRequest,
    Message,
    OpenAiCompatibleProvider,
    ResponseFormat,
    ToolDefinition,
)
from provider_impl.response import response_from_events

TOOL = ToolDefinition("get_weather", "Weather.", {"type": "object", "properties": {}})


def _reply(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "r",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }


CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ],
}
SSE = (
    b'data: {"id":"s","model":"m","choices":[{"index":0,"delta":{"content":"ok"}}]}\n\n'
    b'data: {"id":"s","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], httpx.Headers, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.sent.append((body, request.headers, request.extensions["timeout"]))
        if body.get("stream"):
            return httpx.Response(200, content=SSE, headers={"content-type": "text/event-stream"})
        last = body["messages"][-1]
        if last["role"] == "tool":
            return httpx.Response(200, json=_reply({"role": "assistant", "content": "18C"}, "stop"))
        return httpx.Response(200, json=_reply(CALL, "tool_calls"))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def provider(recorder: Recorder) -> OpenAiCompatibleProvider:
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    return OpenAiCompatibleProvider.openai(
        api_key="test-key-123456", http_client=client, headers={"x-team": "core"}
    )


def test_a_two_call_agent_loop_with_per_call_timeout_and_headers(
    provider: OpenAiCompatibleProvider, recorder: Recorder
) -> None:
    messages = [Message.user("Weather in Paris?")]
    first = provider.complete(
        CompletionRequest(messages=messages, tools=[TOOL]),
        timeout=5,
        headers={"x-trace-id": "turn-1"},
    )
    assert first.tool_calls[0].id == "c1"
    messages += [
        Message.assistant(tool_calls=first.tool_calls),
        Message.tool_result("c1", "18C"),
    ]
    second = provider.complete(
        CompletionRequest(messages=messages, tools=[TOOL]),
        timeout=httpx.Timeout(30.0, connect=2.0),
        headers={"x-trace-id": "turn-2", "x-team": "override"},
        extra_body={"metadata": {"turn": "2"}},
    )
    assert second.text == "18C"
    (body1, headers1, timeout1), (body2, headers2, timeout2) = recorder.sent
    assert headers1["x-trace-id"] == "turn-1" and headers1["x-team"] == "core"
    assert headers2["x-trace-id"] == "turn-2" and headers2["x-team"] == "override"
    assert headers2["authorization"] == "Bearer test-key-123456"
    assert timeout1["read"] == 5.0 and timeout2["read"] == 30.0 and timeout2["connect"] == 2.0
    assert "metadata" not in body1 and body2["metadata"] == {"turn": "2"}
    # The provider's own settings are untouched by either call.
    provider.complete(CompletionRequest(messages=[Message.user("again")]))
    _, headers3, timeout3 = recorder.sent[2]
    assert "x-trace-id" not in headers3 and headers3["x-team"] == "core"
    assert timeout3["read"] == provider.dialect.read_timeout


def test_stream_takes_the_same_options(
    provider: OpenAiCompatibleProvider, recorder: Recorder
) -> None:
    request = CompletionRequest(messages=[Message.user("Hi")], extra_body={"user": "a"})
    events = list(
        provider.stream(request, timeout=7.5, headers={"x-req": "1"}, extra_body={"user": "b"})
    )
    assert response_from_events(events).text == "ok"
    body, headers, timeout = recorder.sent[0]
    assert body["user"] == "b"  # the call's extra_body is merged after the request's
    assert headers["x-req"] == "1" and timeout["read"] == 7.5


async def test_async_calls_take_the_same_options(recorder: Recorder) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    provider = OpenAiCompatibleProvider.openai(api_key="test-key-123456", async_http_client=client)
    request = CompletionRequest(messages=[Message.user("Hi")], tools=[TOOL])
    reply = await provider.acomplete(
        request, timeout=3, headers={"x-a": "1"}, extra_body={"seed": 1}
    )
    assert reply.tool_calls
    events = [
        e
        async for e in provider.astream(CompletionRequest(messages=[Message.user("Hi")]), timeout=4)
    ]
    assert response_from_events(events).text == "ok"
    (body1, headers1, timeout1), (_, _, timeout2) = recorder.sent
    assert body1["seed"] == 1 and headers1["x-a"] == "1"
    assert (timeout1["read"], timeout2["read"]) == (3.0, 4.0)
    await client.aclose()


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": -1.0}, ValueError, "timeout"),
        ({"timeout": "5"}, ValueError, "timeout"),
        ({"headers": {"bad header": "x"}}, ValueError, "header"),
        ({"headers": {"x-a": "caf\u00e9"}}, ValueError, "ASCII"),
        ({"headers": ["x-a"]}, TypeError, "mapping"),
        ({"extra_body": ["seed"]}, InvalidRequest, "extra_body"),
        ({"extra_body": {"x": float("nan")}}, InvalidRequest, "extra_body.x"),
        ({"timout": 5}, TypeError, "timout"),
    ],
)
@pytest.mark.parametrize("method", ["complete", "stream", "acomplete", "astream"])
def test_bad_per_call_options_are_refused_before_any_io(
    provider: OpenAiCompatibleProvider,
    recorder: Recorder,
    method: str,
    options: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    request = CompletionRequest(messages=[Message.user("Hi")])
    with pytest.raises(error, match=words):
        call = getattr(provider, method)(request, **options)
        if method == "acomplete":  # its checks run when awaited
            asyncio.run(call)
    assert recorder.sent == []


def test_complete_parses_a_json_schema_reply(recorder: Recorder) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=_reply({"role": "assistant", "content": '{"a": 1}'}, "stop")
        )

    client = httpx.Client(transport=httpx.MockTransport(handler))
    provider = OpenAiCompatibleProvider.openai(api_key="test-key-123456", http_client=client)
    schema = ResponseFormat.json_schema("A", {"type": "object"})
    asked = provider.complete(
        CompletionRequest(messages=[Message.user("x")], response_format=schema)
    )
    assert asked.parsed == {"a": 1}
    plain = provider.complete(CompletionRequest(messages=[Message.user("x")]))
    assert plain.parsed is None and plain.text == '{"a": 1}'
