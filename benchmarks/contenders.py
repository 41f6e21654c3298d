"""What the per-chunk rows run: the parse floor, httpx-sse, openai-python and this
library over an ``httpx.MockTransport``. Each returns the chunks it saw, or an
iterator of events to consume. ``benchmarks.ab`` times some of them too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from benchmarks import bodies
from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider

READ_SIZE = 64 * 1024  # what httpcore asks the socket for; the mock transports use it too
REQUEST = CompletionRequest(messages=[Message(role="user", content="Benchmark, please.")])


def consume(events: Iterable[object]) -> int:
    n = 0
    for _ in events:
        n += 1
    return n


def _floor(data: bytes, loads: Callable[[bytes], object]) -> int:
    """The floor: cut frames on the blank line, strip ``data: ``, parse the JSON."""
    n = 0
    for frame in data.split(b"\n\n"):
        if frame.startswith(b"data: "):
            payload = frame[6:]
            if payload != b"[DONE]":
                loads(payload)
                n += 1
    return n


def floor_json(data: bytes) -> int:
    return _floor(data, json.loads)


def floor_orjson(data: bytes) -> int:
    import orjson

    return _floor(data, orjson.loads)


class _Pieces(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        data = self._data
        for i in range(0, len(data), READ_SIZE):
            yield data[i : i + READ_SIZE]


def mock_client(data: bytes) -> httpx.Client:
    """An httpx client whose every request gets a 200 SSE response with ``data``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Pieces(data)
        )

    return httpx.Client(transport=httpx.MockTransport(handler))


def httpx_sse_json(client: httpx.Client) -> int:
    from httpx_sse import connect_sse

    n = 0
    loads = json.loads
    with connect_sse(
        client, "POST", "http://bench.invalid/v1/chat/completions", json={"stream": True}
    ) as source:
        for sse in source.iter_sse():
            if sse.data != "[DONE]":
                loads(sse.data)
                n += 1
    return n


def openai_client(data: bytes) -> Any:
    """An openai-python client over a MockTransport; raises if this openai can't use httpx."""
    import openai

    client = openai.OpenAI(
        api_key="bench", base_url="http://bench.invalid/v1", http_client=mock_client(data)
    )
    if consume_openai(client) < 1:
        raise RuntimeError("openai-python yielded no chunks")
    return client


def consume_openai(client: Any) -> int:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Benchmark, please."}],
        stream=True,
    )
    return consume(stream)


def provider_for(kind: str, **kwargs: Any) -> OpenAiCompatibleProvider:
    """This library's provider for a body kind's dialect (no retries: a failure is a bug)."""
    factory = getattr(OpenAiCompatibleProvider, bodies.DIALECT[kind])
    provider: OpenAiCompatibleProvider = factory(api_key="bench-key", max_retries=0, **kwargs)
    return provider
