"""OpenAiCompatibleProvider over httpx.MockTransport: errors on all four paths, retries,
transport failures, early close, keys from the environment, non-streaming bodies."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from invariants import assert_invariants
from wire import DONE, chunk, collected_text, of_type, sse

from provider_impl import (
    AuthenticationFailed,
    CompletionRequest,
    CompletionResponse,
    ContextLengthExceeded,
    DeserializationError,
    InvalidRequest,
    LlmError,
    Message,
    OpenAiCompatibleProvider,
    Overloaded,
    RateLimited,
    StopReason,
    StreamError,
    ToolCall,
    TransportError,
    Usage,
)
from provider_impl.classify import classify_error
from provider_impl.dialects import ProviderCapabilities
from provider_impl.emulator import Emulator
from provider_impl.errors import ConnectionFailed, ProviderError, RequestTimeout, UsageError
from provider_impl.events import Connected, Done, TextDelta
from provider_impl.invariants import check_invariants
from provider_impl.response import response_from_events

REQ = CompletionRequest(messages=[Message(role="user", content="hi")], max_tokens=50)
MODES = ["complete", "stream", "acomplete", "astream"]
Handler = Callable[[httpx.Request], httpx.Response]

FACTORIES: dict[str, Callable[..., OpenAiCompatibleProvider]] = {
    "openai": OpenAiCompatibleProvider.openai,
    "gemini": OpenAiCompatibleProvider.gemini,
    "mistral": OpenAiCompatibleProvider.mistral,
    "glm": OpenAiCompatibleProvider.glm,
    "claude_subscription": OpenAiCompatibleProvider.claude_subscription,
}


def ok_stream(text: str = "Hello there") -> bytes:
    return sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": text[:5]}),
        chunk({"content": text[5:]}),
        chunk({}, "stop"),
        {
            "id": "chatcmpl-test",
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        },
        DONE,
    )


def ok_json(text: str = "Hello there") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
    }


def ok_response(request: httpx.Request) -> httpx.Response:
    """A success in whichever form the request asked for."""
    if json.loads(request.content)["stream"]:
        return httpx.Response(
            200, content=ok_stream(), headers={"content-type": "text/event-stream"}
        )
    return httpx.Response(200, json=ok_json())


class Server:
    """A scripted MockTransport handler that records every request."""

    def __init__(self, *script: Handler | httpx.Response | Exception) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            if isinstance(step, httpx.RequestError):
                step._request = request
            raise step
        if isinstance(step, httpx.Response):
            return httpx.Response(step.status_code, headers=step.headers, content=step.content)
        return step(request)


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body in pieces; may fail after them or hang; records being closed."""

    def __init__(
        self, pieces: list[bytes], *, fail: Exception | None = None, hang: bool = False
    ) -> None:
        self.pieces = pieces
        self.fail = fail
        self.hang = hang
        self.closed = False
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for p in self.pieces:
            self.sent += 1
            yield p
        if self.fail is not None:
            raise self.fail
        if self.hang:
            raise AssertionError("a sync stream cannot hang in this test")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for p in self.pieces:
            self.sent += 1
            yield p
        if self.fail is not None:
            raise self.fail
        if self.hang:
            await asyncio.sleep(3600)

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def make(name: str, server: Handler, **kw: Any) -> tuple[OpenAiCompatibleProvider, list[float]]:
    transport = httpx.MockTransport(server)
    kw.setdefault("api_key", "test-key")
    provider = FACTORIES[name](
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **kw,
    )
    delays: list[float] = []

    async def asleep(delay: float) -> None:
        delays.append(delay)

    provider._sleep = delays.append
    provider._asleep = asleep
    return provider, delays


async def call(
    provider: OpenAiCompatibleProvider, mode: str, req: CompletionRequest = REQ
) -> tuple[Any, list[Any]]:
    """Run one call; returns (result or error, events yielded before the end)."""
    events: list[Any] = []
    try:
        if mode == "complete":
            return provider.complete(req), events
        if mode == "acomplete":
            return await provider.acomplete(req), events
        if mode == "stream":
            for ev in provider.stream(req):
                events.append(ev)
        else:
            async for ev in provider.astream(req):
                events.append(ev)
        return None, events
    except LlmError as err:
        return err, events


# -- each error shape, on all four paths -----------------------------------------------------

SHAPES: list[tuple[str, str, int, dict[str, str], Any, type, str | None]] = [
    (
        "openai-401",
        "openai",
        401,
        {"x-request-id": "req_1"},
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
        AuthenticationFailed,
        "invalid_api_key",
    ),
    (
        "openai-404",
        "openai",
        404,
        {},
        {
            "error": {
                "message": "The model `nope` does not exist",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
        InvalidRequest,
        "model_not_found",
    ),
    (
        "openai-context",
        "openai",
        400,
        {},
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, "
                "your messages resulted in 200000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        ContextLengthExceeded,
        "context_length_exceeded",
    ),
    (
        "openai-429",
        "openai",
        429,
        {"retry-after-ms": "20"},
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
        RateLimited,
        "rate_limit_exceeded",
    ),
    (
        "gemini-429",
        "gemini",
        429,
        {},
        [
            {
                "error": {
                    "code": 429,
                    "message": "Resource exhausted",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}
                    ],
                }
            }
        ],
        RateLimited,
        "RESOURCE_EXHAUSTED",
    ),
    (
        "gemini-400",
        "gemini",
        400,
        {},
        [{"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT"}}],
        InvalidRequest,
        "INVALID_ARGUMENT",
    ),
    (
        "gemini-503",
        "gemini",
        503,
        {},
        [{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}],
        Overloaded,
        "UNAVAILABLE",
    ),
    (
        "mistral-422",
        "mistral",
        422,
        {},
        {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "stream_options"],
                    "msg": "Extra inputs are not permitted",
                    "input": {},
                }
            ]
        },
        InvalidRequest,
        "extra_forbidden",
    ),
    (
        "mistral-1300",
        "mistral",
        429,
        {"Retry-After": "1"},
        {
            "object": "error",
            "message": "Requests rate limit exceeded",
            "type": "rate_limited",
            "param": None,
            "code": "1300",
        },
        RateLimited,
        "1300",
    ),
    (
        "mistral-401",
        "mistral",
        401,
        {},
        {"message": "Unauthorized", "request_id": "abc123"},
        AuthenticationFailed,
        None,
    ),
    (
        "glm-1001",
        "glm",
        401,
        {},
        {"error": {"code": "1001", "message": "身份验证失败"}},
        AuthenticationFailed,
        "1001",
    ),
    (
        "glm-1261",
        "glm",
        400,
        {},
        {"error": {"code": "1261", "message": "Prompt 超长"}},
        ContextLengthExceeded,
        "1261",
    ),
    (
        "glm-1302",
        "glm",
        429,
        {},
        {"error": {"code": "1302", "message": "并发数过高"}},
        RateLimited,
        "1302",
    ),
    (
        "glm-1113",
        "glm",
        429,
        {},
        {"error": {"code": "1113", "message": "余额不足"}},
        ProviderError,
        "1113",
    ),
    (
        "claude-529",
        "claude_subscription",
        529,
        {"request-id": "req_x"},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        Overloaded,
        "overloaded_error",
    ),
    (
        "html-502",
        "openai",
        502,
        {"content-type": "text/html"},
        "<html><body>502 Bad Gateway</body></html>",
        Overloaded,
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "status", "headers", "payload", "cls", "code"),
    SHAPES,
    ids=[s[0] for s in SHAPES],
)
async def test_error_shapes_are_the_same_typed_error_on_every_path(
    case: str,
    name: str,
    status: int,
    headers: dict[str, str],
    payload: Any,
    cls: type,
    code: str | None,
) -> None:
    raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    seen = []
    for mode in MODES:
        server = Server(httpx.Response(status, headers=headers, content=raw))
        provider, delays = make(name, server, max_retries=0)
        err, events = await call(provider, mode)
        assert type(err) is cls, (mode, err)
        assert events == []  # no Connected before a 2xx
        assert len(server.requests) == 1 and delays == []
        assert err.provider == name and err.status_code == status and err.code == code
        seen.append(
            (
                type(err),
                err.message,
                err.code,
                err.request_id,
                getattr(err, "retry_after", None),
                getattr(err, "field", None),
            )
        )
    assert all(s == seen[0] for s in seen), seen


def test_error_shape_details_reach_the_caller() -> None:
    server = Server(
        httpx.Response(
            422,
            json={
                "detail": [
                    {
                        "type": "extra_forbidden",
                        "loc": ["body", "max_completion_tokens"],
                        "msg": "Extra inputs are not permitted",
                    }
                ]
            },
        )
    )
    provider, _ = make("mistral", server, max_retries=0)
    with pytest.raises(InvalidRequest) as info:
        provider.complete(REQ)
    assert info.value.field == "max_completion_tokens"

    server = Server(
        httpx.Response(
            429,
            headers={"retry-after-ms": "20"},
            json={"error": {"message": "slow", "code": "rate_limit_exceeded"}},
        )
    )
    provider, _ = make("openai", server, max_retries=0)
    with pytest.raises(RateLimited) as rl:
        list(provider.stream(REQ))
    assert rl.value.retry_after == pytest.approx(0.02)


# -- success on every path ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("mode", MODES)
async def test_success_and_what_is_sent(name: str, mode: str) -> None:
    server = Server(ok_response)
    provider, _ = make(name, server)
    result, events = await call(provider, mode)
    (request,) = server.requests
    streaming = mode in ("stream", "astream")
    assert request.method == "POST"
    assert str(request.url) == provider.dialect.base_url + "/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.headers["content-type"] == "application/json"
    assert ("text/event-stream" in request.headers["accept"]) == streaming
    assert json.loads(request.content) == provider.build_request(REQ, stream=streaming)
    if streaming:
        assert result is None
        assert_invariants(events)
        assert collected_text(events) == "Hello there"
        assert of_type(events, Usage) == [Usage(9, 4, None, None)]
    else:
        assert isinstance(result, CompletionResponse)
        assert result.text == "Hello there"
        assert result.usage == Usage(9, 4, None, None)
        assert result.stop_reason is StopReason.END_TURN


def test_connected_comes_only_after_the_response_arrived() -> None:
    server = Server(ok_response)
    provider, _ = make("openai", server)
    gen = provider.stream(REQ)
    assert server.requests == []  # nothing is sent before iteration starts
    assert next(gen) == Connected()
    assert len(server.requests) == 1
    rest = list(gen)
    assert isinstance(rest[-1], Done)


def test_base_url_override_and_trailing_slash() -> None:
    server = Server(ok_response)
    provider, _ = make("openai", server, base_url="http://localhost:9999/v1/")
    provider.complete(REQ)
    assert str(server.requests[0].url) == "http://localhost:9999/v1/chat/completions"
    with pytest.raises(ValueError):
        OpenAiCompatibleProvider.openai(api_key="k", base_url="ftp://x")


def test_claude_subscription_sends_dummy_key_to_localhost() -> None:
    server = Server(ok_response)
    provider, _ = make("claude_subscription", server, api_key=None)
    provider.complete(REQ)
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer dummy-key"
    assert str(request.url) == "http://localhost:3456/v1/chat/completions"


def test_custom_provider_auth_header_and_fields() -> None:
    server = Server(ok_response)
    transport = httpx.MockTransport(server)
    provider = OpenAiCompatibleProvider.custom(
        name="acme",
        base_url="https://llm.acme.test/v1",
        default_model="acme-1",
        api_key="test-key",
        auth_header="x-api-key",
        auth_scheme=None,
        max_tokens_param="max_output_tokens",
        stream_usage_option=False,
        http_client=httpx.Client(transport=transport),
    )
    assert provider.name == "acme" and provider.model == "acme-1"
    provider.complete(REQ)
    (request,) = server.requests
    assert request.headers["x-api-key"] == "test-key"
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert body["max_output_tokens"] == 50 and "max_tokens" not in body


# -- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_503_then_200_retries_once_and_streams_cleanly(mode: str) -> None:
    server = Server(httpx.Response(503, json={"error": {"message": "busy"}}), ok_response)
    provider, delays = make("openai", server)
    result, events = await call(provider, mode)
    assert len(server.requests) == 2
    assert len(delays) == 1 and 0 < delays[0] <= 0.5  # backoff base 0.5 with jitter
    if mode in ("stream", "astream"):
        assert_invariants(events)
        assert of_type(events, Connected) == [Connected()]  # once, after the 2xx
        assert collected_text(events) == "Hello there"
    else:
        assert result.text == "Hello there"


@pytest.mark.parametrize("mode", MODES)
async def test_429_retry_after_is_honoured(mode: str) -> None:
    server = Server(
        httpx.Response(
            429,
            headers={"retry-after": "1"},
            json={"error": {"message": "slow", "type": "requests"}},
        ),
        ok_response,
    )
    provider, delays = make("openai", server)
    result, _ = await call(provider, mode)
    assert not isinstance(result, LlmError)
    assert delays == [1.0]
    assert len(server.requests) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_retries_are_bounded_then_the_typed_error(mode: str) -> None:
    server = Server(
        httpx.Response(
            429,
            headers={"retry-after": "2"},
            json={"error": {"message": "slow", "code": "rate_limit_exceeded"}},
        )
    )
    provider, delays = make("openai", server, max_retries=3)
    err, events = await call(provider, mode)
    assert isinstance(err, RateLimited) and err.retry_after == 2.0
    assert len(server.requests) == 4
    assert delays == [2.0, 2.0, 2.0]
    assert events == []


def test_backoff_grows_with_jitter() -> None:
    server = Server(httpx.Response(500, text="boom"))
    provider, delays = make("openai", server, max_retries=4)
    with pytest.raises(Overloaded):
        provider.complete(REQ)
    assert len(server.requests) == 5
    for attempt, delay in enumerate(delays):
        full = 0.5 * 2**attempt
        assert full / 2 <= delay <= full


def test_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    server = Server(httpx.Response(429, headers={"retry-after": "3600"}, text="slow"))
    provider, delays = make("openai", server)
    with pytest.raises(RateLimited) as info:
        provider.complete(REQ)
    assert info.value.retry_after == 3600
    assert len(server.requests) == 1 and delays == []


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504, 529])
def test_retryable_statuses(status: int) -> None:
    server = Server(httpx.Response(status, text="x"), ok_response)
    provider, delays = make("openai", server)
    assert provider.complete(REQ).text == "Hello there"
    assert len(server.requests) == 2 and len(delays) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_no_retry_on_client_errors(mode: str, status: int) -> None:
    server = Server(httpx.Response(status, json={"error": {"message": "no"}}), ok_response)
    provider, delays = make("openai", server)
    err, _ = await call(provider, mode)
    assert isinstance(err, LlmError) and err.status_code == status
    assert len(server.requests) == 1 and delays == []


def test_max_retries_zero_and_validation() -> None:
    server = Server(httpx.Response(503, text="x"), ok_response)
    provider, delays = make("openai", server, max_retries=0)
    with pytest.raises(Overloaded):
        provider.complete(REQ)
    assert len(server.requests) == 1 and delays == []
    with pytest.raises(ValueError):
        OpenAiCompatibleProvider.openai(api_key="k", max_retries=-1)


# -- transport failures -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_connection_error_is_retried_then_connection_failed(mode: str) -> None:
    server = Server(httpx.ConnectError("connection refused"))
    provider, delays = make("openai", server)
    err, events = await call(provider, mode)
    assert isinstance(err, ConnectionFailed)
    assert isinstance(err.__cause__, httpx.ConnectError)
    assert "connection refused" in str(err)
    assert len(server.requests) == 3 and len(delays) == 2
    assert events == []


@pytest.mark.parametrize("mode", MODES)
async def test_connection_error_then_success(mode: str) -> None:
    server = Server(httpx.ConnectError("reset"), ok_response)
    provider, delays = make("openai", server)
    result, events = await call(provider, mode)
    assert not isinstance(result, LlmError)
    if mode in ("stream", "astream"):
        assert_invariants(events)
    assert len(server.requests) == 2 and len(delays) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_read_timeout_is_request_timeout(mode: str) -> None:
    server = Server(httpx.ReadTimeout("read timed out"))
    provider, _ = make("openai", server)
    err, _ = await call(provider, mode)
    assert isinstance(err, RequestTimeout)
    assert isinstance(err.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "failure", [httpx.ConnectTimeout("connect timed out"), httpx.PoolTimeout("no free connection")]
)
async def test_connect_timeout_is_a_connection_error_and_retried(
    mode: str, failure: Exception
) -> None:
    server = Server(failure, ok_response)
    provider, delays = make("openai", server)
    result, _ = await call(provider, mode)
    assert not isinstance(result, LlmError)
    assert len(server.requests) == 2 and len(delays) == 1
    # bounded like any retry, then the timeout with its cause
    server = Server(failure)
    provider, delays = make("openai", server, max_retries=1)
    err, _ = await call(provider, mode)
    assert isinstance(err, RequestTimeout) and err.__cause__ is failure
    assert len(server.requests) == 2 and len(delays) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_read_timeout_is_not_retried(mode: str) -> None:
    # the request may have been processed: sending it again could run it twice
    server = Server(httpx.ReadTimeout("read timed out"), ok_response)
    provider, delays = make("openai", server)
    err, _ = await call(provider, mode)
    assert isinstance(err, RequestTimeout)
    assert len(server.requests) == 1 and delays == []


def stream_response(body: Chunks) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return handler


FIRST = sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "partial "}))


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize(
    ("failure", "cls"),
    [
        (httpx.ReadError("connection reset"), StreamError),
        (httpx.RemoteProtocolError("peer closed connection"), StreamError),
        (httpx.ReadTimeout("read timed out"), RequestTimeout),
    ],
)
async def test_error_after_events_is_not_retried(mode: str, failure: Exception, cls: type) -> None:
    bodies: list[Chunks] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Chunks([FIRST], fail=failure))
        return httpx.Response(200, stream=bodies[-1])

    server = Server(handler)
    provider, delays = make("openai", server)
    err, events = await call(provider, mode)
    assert type(err) is cls
    assert err.__cause__ is failure
    assert len(server.requests) == 1 and delays == []
    assert_invariants(events, complete=False)
    assert of_type(events, Connected) == [Connected()]
    assert collected_text(events) == "partial "  # not duplicated
    assert bodies[0].closed


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_in_band_error_mid_stream_is_not_retried(mode: str) -> None:
    body = FIRST + sse({"error": {"message": "overloaded", "type": "overloaded_error"}}, DONE)
    server = Server(httpx.Response(200, content=body))
    provider, delays = make("claude_subscription", server)
    err, events = await call(provider, mode)
    assert isinstance(err, Overloaded)
    assert len(server.requests) == 1 and delays == []
    assert collected_text(events) == "partial "


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_truncated_stream_is_a_stream_error(mode: str) -> None:
    server = Server(httpx.Response(200, content=FIRST))
    provider, delays = make("openai", server)
    err, events = await call(provider, mode)
    assert isinstance(err, StreamError)
    assert not of_type(events, Done)
    assert len(server.requests) == 1 and delays == []


async def test_frame_size_limit_is_configurable() -> None:
    big = sse(chunk({"content": "x" * 5000}), chunk({}, "stop"), DONE)
    server = Server(httpx.Response(200, content=big))
    provider, _ = make("openai", server, max_frame_bytes=1000)
    err, _ = await call(provider, "stream")
    assert isinstance(err, StreamError)
    roomy, _ = make("openai", Server(httpx.Response(200, content=big)))
    _, events = await call(roomy, "astream")
    assert len(collected_text(events)) == 5000


# -- early close -------------------------------------------------------------------------------


def test_breaking_out_of_stream_closes_the_response() -> None:
    body = Chunks([FIRST, sse(chunk({"content": "more"})), sse(chunk({}, "stop"), DONE)])
    provider, _ = make("openai", Server(stream_response(body)))
    for ev in provider.stream(REQ):
        if isinstance(ev, TextDelta):
            break
    assert body.closed
    assert body.sent < 3


def test_closing_the_stream_generator_closes_the_response() -> None:
    body = Chunks([FIRST, sse(chunk({}, "stop"), DONE)])
    provider, _ = make("openai", Server(stream_response(body)))
    gen = provider.stream(REQ)
    next(gen)
    assert not body.closed
    gen.close()  # type: ignore[attr-defined]
    assert body.closed


def test_a_finished_stream_closes_the_response() -> None:
    body = Chunks([ok_stream(), b"data: ignored after done\n\n"])
    provider, _ = make("openai", Server(stream_response(body)))
    events = list(provider.stream(REQ))
    assert isinstance(events[-1], Done)
    assert body.closed


async def test_aclose_closes_the_response() -> None:
    body = Chunks([FIRST], hang=True)
    provider, _ = make("openai", Server(stream_response(body)))
    agen = provider.astream(REQ)
    async for ev in agen:
        if isinstance(ev, TextDelta):
            break
    assert not body.closed
    await agen.aclose()  # type: ignore[attr-defined]
    assert body.closed


async def test_cancelling_the_task_closes_the_response() -> None:
    body = Chunks([FIRST], hang=True)
    provider, _ = make("openai", Server(stream_response(body)))
    got_text = asyncio.Event()
    seen: list[Any] = []

    async def consume() -> None:
        async for ev in provider.astream(REQ):
            seen.append(ev)
            if isinstance(ev, TextDelta):
                got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), timeout=5)
    assert not body.closed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.closed
    assert collected_text(seen) == "partial "


# -- keys from the environment -------------------------------------------------------------------

ENV = {
    "openai": "OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "glm": "ZAI_API_KEY",
}


@pytest.mark.parametrize("name", sorted(ENV))
def test_missing_key_names_the_environment_variable(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV[name], raising=False)
    with pytest.raises(UsageError) as info:
        FACTORIES[name]()
    assert ENV[name] in str(info.value)
    assert info.value.provider == name
    monkeypatch.setenv(ENV[name], "")
    with pytest.raises(UsageError):
        FACTORIES[name]()


@pytest.mark.parametrize("name", sorted(ENV))
def test_key_from_the_environment_is_sent(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV[name], "env-key-123")
    server = Server(ok_response)
    provider, _ = make(name, server, api_key=None)
    provider.complete(REQ)
    assert server.requests[0].headers["authorization"] == "Bearer env-key-123"
    # an explicit key wins over the environment
    server2 = Server(ok_response)
    explicit, _ = make(name, server2, api_key="explicit-key")
    explicit.complete(REQ)
    assert server2.requests[0].headers["authorization"] == "Bearer explicit-key"


def test_custom_missing_key_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_KEY", raising=False)
    with pytest.raises(UsageError, match="ACME_KEY"):
        OpenAiCompatibleProvider.custom(
            name="acme", base_url="https://x.test/v1", default_model="m", api_key_env="ACME_KEY"
        )


# -- complete(): non-streaming bodies ------------------------------------------------------------


def completion(
    message: dict[str, Any], finish: str, usage: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    body = {
        "id": "resp-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    body.update(top)
    return body


@pytest.mark.parametrize("mode", ["complete", "acomplete"])
async def test_complete_parses_tool_calls_and_usage_details(mode: str) -> None:
    body = completion(
        {
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                },
            ],
        },
        "tool_calls",
        {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
    )
    provider, _ = make("openai", Server(httpx.Response(200, json=body)))
    resp, _ = await call(provider, mode)
    assert resp.id == "resp-1" and resp.model == "m"
    assert resp.text == ""
    assert resp.tool_calls == (
        ToolCall("call_1", "get_weather", {"city": "Paris"}),
        ToolCall("call_2", "get_time", {}),
    )
    assert resp.stop_reason is StopReason.TOOL_USE
    assert resp.raw_finish_reason == "tool_calls"
    assert resp.usage == Usage(100, 20, 64, 12)


@pytest.mark.parametrize("mode", ["complete", "acomplete"])
async def test_complete_parses_mistral_thinking_list(mode: str) -> None:
    body = completion(
        {
            "content": [
                {
                    "type": "thinking",
                    "thinking": [
                        {"type": "text", "text": "Two and two "},
                        {"type": "text", "text": "make four."},
                    ],
                },
                {"type": "text", "text": "4"},
            ]
        },
        "stop",
        {"prompt_tokens": 7, "completion_tokens": 30, "total_tokens": 37},
    )
    provider, _ = make("mistral", Server(httpx.Response(200, json=body)))
    resp, _ = await call(provider, mode)
    assert resp.thinking == "Two and two make four."
    assert resp.text == "4"
    assert resp.usage == Usage(7, 30, None, None)


def test_complete_parses_glm_reasoning_and_gemini_stop_after_call() -> None:
    glm = completion({"reasoning_content": "thinking...", "content": "answer"}, "stop")
    provider, _ = make("glm", Server(httpx.Response(200, json=glm)))
    resp = provider.complete(REQ)
    assert (resp.thinking, resp.text, resp.stop_reason) == (
        "thinking...",
        "answer",
        StopReason.END_TURN,
    )
    gem = completion(
        {
            "content": None,
            "tool_calls": [
                {"id": "", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
            ],
        },
        "stop",
    )
    provider, _ = make("gemini", Server(httpx.Response(200, json=gem)))
    resp = provider.complete(REQ)
    (call_,) = resp.tool_calls
    assert call_.id and call_.name == "f" and dict(call_.arguments) == {"a": 1}
    assert resp.stop_reason is StopReason.TOOL_USE


def test_complete_refusal_and_unknown_finish_reason() -> None:
    body = completion({"content": None, "refusal": "I can't help with that."}, "weird")
    provider, _ = make("openai", Server(httpx.Response(200, json=body)))
    resp = provider.complete(REQ)
    assert resp.refusal == "I can't help with that." and resp.text == ""
    assert resp.stop_reason is StopReason.END_TURN and resp.raw_finish_reason == "weird"


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        (b"not json", DeserializationError),
        (b"[" * 100_000, DeserializationError),
        (b'{"id": "x"}', DeserializationError),
        (b'{"choices": []}', DeserializationError),
        (b'"text"', DeserializationError),
        (b'{"error": {"message": "quota", "code": "rate_limit_exceeded"}}', RateLimited),
        (
            json.dumps(
                completion(
                    {
                        "content": None,
                        "tool_calls": [
                            {"id": "c", "function": {"name": "broken_tool", "arguments": "{nope"}}
                        ],
                    },
                    "tool_calls",
                )
            ).encode(),
            DeserializationError,
        ),
    ],
)
@pytest.mark.parametrize("mode", ["complete", "acomplete"])
async def test_complete_bad_bodies(raw: bytes, cls: type, mode: str) -> None:
    server = Server(httpx.Response(200, content=raw))
    provider, delays = make("openai", server)
    err, _ = await call(provider, mode)
    assert type(err) is cls
    assert len(server.requests) == 1 and delays == []
    if b"broken_tool" in raw:
        assert "broken_tool" in str(err)


# -- properties and dialect data ----------------------------------------------------------------


def test_capabilities_and_dialect_records() -> None:
    expected = {
        "openai": (
            "https://api.openai.com/v1",
            "OPENAI_API_KEY",
            ProviderCapabilities(True, True, True, False, 128_000, 16_384),
        ),
        "gemini": (
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "GEMINI_API_KEY",
            ProviderCapabilities(True, True, True, False, 1_000_000, 65_536),
        ),
        "mistral": (
            "https://api.mistral.ai/v1",
            "MISTRAL_API_KEY",
            ProviderCapabilities(True, True, True, False, 128_000, 32_768),
        ),
        "glm": (
            "https://api.z.ai/api/paas/v4",
            "ZAI_API_KEY",
            ProviderCapabilities(True, True, False, False, 200_000, 128_000),
        ),
        "claude_subscription": (
            "http://localhost:3456/v1",
            None,
            # The proxy reads text only: no tools, no images, no streamed thinking.
            ProviderCapabilities(True, False, False, False, 200_000, 128_000),
        ),
    }
    for name, (url, env, caps) in expected.items():
        provider = FACTORIES[name](api_key="k")
        assert provider.name == name
        assert provider.capabilities == caps
        assert provider.dialect.base_url == url == provider.base_url
        assert provider.dialect.api_key_env == env
        assert provider.model == provider.dialect.default_model


def test_count_tokens_is_a_growing_estimate() -> None:
    provider = OpenAiCompatibleProvider.openai(api_key="k")
    small = provider.count_tokens(REQ)
    big = provider.count_tokens(CompletionRequest(messages=[Message.user("word " * 1000)]))
    assert 1 <= small < big
    assert 800 <= big <= 2500


def test_provider_as_context_manager_closes_only_its_own_client() -> None:
    client = httpx.Client(transport=httpx.MockTransport(ok_response))
    with OpenAiCompatibleProvider.openai(api_key="k", http_client=client) as provider:
        provider.complete(REQ)
    assert not client.is_closed
    client.close()


async def test_async_context_manager() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(ok_response))
    async with OpenAiCompatibleProvider.gemini(api_key="k", async_http_client=client) as p:
        resp = await p.acomplete(REQ)
    assert resp.text == "Hello there"
    assert not client.is_closed
    await client.aclose()


# -- edges: keys, refusals up front, JSON answers, event loops, retry hints ----------


SMALL_REQ = CompletionRequest(messages=[Message.user("hi")], max_tokens=10)


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
    assert provider.complete(SMALL_REQ).text == "ok"
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
        provider.complete(SMALL_REQ)
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
            list(provider.stream(SMALL_REQ))
        elif mode == "astream":
            [e async for e in provider.astream(SMALL_REQ)]
        elif mode == "complete":
            provider.complete(SMALL_REQ)
        else:
            await provider.acomplete(SMALL_REQ)

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
    events = list(provider.stream(SMALL_REQ))
    check_invariants(events)
    assert response_from_events(events).text == "whole"


def test_one_provider_serves_two_event_loops() -> None:
    with Emulator() as emu:
        provider = OpenAiCompatibleProvider.openai(
            api_key="sk-test-KEYKEYKEYKEY1234", base_url=emu.base_url("openai")
        )
        first = asyncio.run(provider.acomplete(SMALL_REQ))
        second = asyncio.run(provider.acomplete(SMALL_REQ))  # the first loop is closed by now
        assert first.text == second.text == "Echo: hi"

        async def closing() -> None:
            await provider.acomplete(SMALL_REQ)
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
