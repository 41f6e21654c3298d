"""Retry-After on a 503 is honoured too, and dummy keys stay out of dialect reprs."""

from __future__ import annotations

import httpx

from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider, Overloaded
from provider_impl.classify import classify_error


def test_overloaded_carries_retry_after() -> None:
    err = classify_error(503, {"retry-after": "3"}, b'{"error":{"message":"busy"}}')
    assert isinstance(err, Overloaded) and err.retry_after == 3.0
    assert classify_error(503, {}, b"").retry_after is None  # type: ignore[attr-defined]


def test_a_503_retry_after_sets_the_wait() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, headers={"retry-after": "4"}, json={"error": {}})
        return httpx.Response(
            200,
            json={
                "id": "x",
                "model": "m",
                "choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}],
            },
        )

    provider = OpenAiCompatibleProvider.openai(
        api_key="test-key-123456", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    waits: list[float] = []
    provider._sleep = waits.append
    resp = provider.complete(CompletionRequest(messages=[Message.user("hi")]))
    assert resp.text == "ok" and len(calls) == 2
    assert len(waits) == 1 and waits[0] >= 4.0


def test_custom_default_key_is_not_in_the_dialect_repr() -> None:
    provider = OpenAiCompatibleProvider.custom(
        name="local",
        base_url="http://127.0.0.1:9/v1",
        default_model="m",
        default_api_key="local-secret-key-abcdef",
    )
    assert "local-secret-key-abcdef" not in repr(provider.dialect)
    assert "local-secret-key-abcdef" not in repr(provider)
