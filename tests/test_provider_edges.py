"""Edges found in review: key hygiene, JSON answers to streaming requests,
one provider across event loops, option validation."""

from __future__ import annotations

import asyncio
import json
import traceback

import httpx
import pytest

from provider_impl import (
    CompletionRequest,
    ContextLengthExceeded,
    Message,
    OpenAiCompatibleProvider,
    TransportError,
)
from provider_impl.emulator import Emulator
from provider_impl.errors import UsageError
from provider_impl.invariants import check_invariants
from provider_impl.response import response_from_events

REQ = CompletionRequest(messages=[Message.user("hi")], max_tokens=10)


def _json_transport(status: int, body: object) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(
            status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
    )


def test_a_key_read_from_a_file_with_its_newline_works() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(
            200,
            json={"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}]},
        )

    provider = OpenAiCompatibleProvider.openai(
        api_key="sk-test-KEYKEYKEYKEY1234\n",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert provider.complete(REQ).text == "ok"
    assert seen == ["Bearer sk-test-KEYKEYKEYKEY1234"]


@pytest.mark.parametrize(
    "bad", ["sk-test\nKEYKEYKEY1234", "sk-tést-KEYKEYKEY1234", "   ", "sk-\x00KEY12345678"]
)
def test_a_key_with_control_or_non_ascii_characters_is_refused_without_echo(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        OpenAiCompatibleProvider.mistral(api_key=bad)
    text = str(info.value) + "".join(traceback.format_exception(info.value))
    if bad.strip():
        assert bad.strip() not in text
    assert "MISTRAL" not in text or "mistral" in text


def test_a_malformed_request_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.LocalProtocolError("Illegal header value")

    provider = OpenAiCompatibleProvider.openai(
        api_key="sk-test-KEYKEYKEYKEY1234",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    waits: list[float] = []
    provider._sleep = waits.append
    with pytest.raises(TransportError) as info:
        provider.complete(REQ)
    assert type(info.value) is TransportError and waits == [] and calls == [1]


@pytest.mark.parametrize(
    "headers", [{"x-bad": "line\nbreak"}, {"bad name": "v"}, {"x-k": "caf\u00e9"}]
)
def test_bad_extra_headers_are_refused_up_front(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        OpenAiCompatibleProvider.openai(api_key="sk-test-KEYKEYKEYKEY1234", headers=headers)


@pytest.mark.parametrize("mode", ["stream", "astream", "complete", "acomplete"])
def test_a_200_json_error_is_the_same_typed_error_on_every_path(mode: str) -> None:
    body = {"error": {"code": "1261", "message": "Prompt exceeds max length"}}
    provider = OpenAiCompatibleProvider.glm(
        api_key="test-key-123456",
        http_client=httpx.Client(transport=_json_transport(200, body)),
        async_http_client=httpx.AsyncClient(transport=_json_transport(200, body)),
    )

    async def run() -> None:
        if mode == "stream":
            list(provider.stream(REQ))
        elif mode == "astream":
            [e async for e in provider.astream(REQ)]
        elif mode == "complete":
            provider.complete(REQ)
        else:
            await provider.acomplete(REQ)

    with pytest.raises(ContextLengthExceeded) as info:
        asyncio.run(run())
    assert info.value.code == "1261"


def test_a_json_completion_answering_a_stream_becomes_events() -> None:
    body = {
        "id": "x1",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "whole"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1},
    }
    provider = OpenAiCompatibleProvider.claude_subscription(
        http_client=httpx.Client(transport=_json_transport(200, body))
    )
    events = list(provider.stream(REQ))
    check_invariants(events)
    assert response_from_events(events).text == "whole"


def test_one_provider_serves_two_event_loops() -> None:
    with Emulator() as emu:
        provider = OpenAiCompatibleProvider.openai(
            api_key="sk-test-KEYKEYKEYKEY1234", base_url=emu.base_url("openai")
        )
        first = asyncio.run(provider.acomplete(REQ))
        second = asyncio.run(provider.acomplete(REQ))  # the first loop is closed by now
        assert first.text == second.text == "Echo: hi"

        async def closing() -> None:
            await provider.acomplete(REQ)
            await provider.aclose()

        asyncio.run(closing())


@pytest.mark.parametrize("option", ["backoff_base", "backoff_max", "max_retry_wait"])
def test_negative_backoff_options_are_refused(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        OpenAiCompatibleProvider.openai(api_key="sk-test-KEYKEYKEYKEY1234", **{option: -1})  # type: ignore[misc]


def test_count_tokens_refuses_bad_input_like_build_request() -> None:
    from provider_impl import InvalidRequest

    provider = OpenAiCompatibleProvider.openai(api_key="sk-test-KEYKEYKEYKEY1234")
    with pytest.raises(InvalidRequest) as info:
        provider.count_tokens(CompletionRequest(messages=[]))
    assert info.value.field == "messages"
    one = provider.count_tokens(CompletionRequest(messages=[Message.user("x" * 400)]))
    assert 100 <= one <= 130  # 400 characters of text plus the message's JSON
