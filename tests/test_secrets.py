"""The API key never shows: not in repr/str of providers or dialects, not in any
exception (even when the provider echoes the key back), not in tracebacks, not in
a log record at any level."""

from __future__ import annotations

import json
import logging
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from wire import DONE, chunk, sse

from provider_impl import (
    AuthenticationFailed,
    CompletionRequest,
    LlmError,
    Message,
    OpenAiCompatibleProvider,
)
from provider_impl.dialects import DIALECTS, get_dialect
from provider_impl.errors import UsageError

SK = "sk-test-SECRETSECRETSECRET1234"
AIZA = "AIzaSyTEST-SECRETSECRETSECRET5678"
REQ = CompletionRequest(messages=[Message(role="user", content="hi")], max_tokens=20)


def _custom(**kw: Any) -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider.custom(
        name="acme",
        base_url="https://llm.acme.test/v1",
        default_model="acme-1",
        api_key_env="ACME_API_KEY",
        **kw,
    )


FACTORIES: dict[str, tuple[Callable[..., OpenAiCompatibleProvider], str]] = {
    "openai": (OpenAiCompatibleProvider.openai, SK),
    "gemini": (OpenAiCompatibleProvider.gemini, AIZA),
    "mistral": (OpenAiCompatibleProvider.mistral, SK),
    "glm": (OpenAiCompatibleProvider.glm, SK),
    "claude_subscription": (OpenAiCompatibleProvider.claude_subscription, SK),
    "custom": (_custom, SK),
}
NAMES = sorted(FACTORIES)
MODES = ["complete", "stream", "acomplete", "astream"]


def build(
    name: str, handler: Callable[[httpx.Request], httpx.Response], **kw: Any
) -> tuple[OpenAiCompatibleProvider, str]:
    factory, key = FACTORIES[name]
    transport = httpx.MockTransport(handler)
    provider = factory(
        api_key=key,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **kw,
    )

    async def no_sleep(delay: float) -> None:
        return None

    provider._sleep = lambda delay: None
    provider._asleep = no_sleep
    return provider, key


def assert_clean(key: str, *things: Any) -> None:
    for thing in things:
        for text in (repr(thing), str(thing)):
            assert key not in text, f"the key leaked through {type(thing).__name__}: {text!r}"


def assert_exception_clean(key: str, err: BaseException) -> None:
    assert_clean(key, err, err.args)
    formatted = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    assert key not in formatted
    for attr in ("message", "code", "request_id", "provider", "field"):
        value = getattr(err, attr, None)
        assert value is None or key not in str(value)
    cause = err.__cause__ or err.__context__
    if cause is not None:
        assert_exception_clean(key, cause)


async def call(provider: OpenAiCompatibleProvider, mode: str) -> Any:
    if mode == "complete":
        return provider.complete(REQ)
    if mode == "acomplete":
        return await provider.acomplete(REQ)
    if mode == "stream":
        return list(provider.stream(REQ))
    return [ev async for ev in provider.astream(REQ)]


def ok(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content)["stream"]:
        return httpx.Response(
            200, content=sse(chunk({"content": "hello"}), chunk({}, "stop"), DONE)
        )
    return httpx.Response(
        200,
        json={
            "id": "x",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hello"},
                    "finish_reason": "stop",
                }
            ],
        },
    )


# -- repr and str ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_repr_and_str_of_provider_and_dialect(name: str) -> None:
    provider, key = build(name, ok)
    assert_clean(
        key,
        provider,
        provider.dialect,
        provider.capabilities,
        vars(provider) if hasattr(provider, "__dict__") else None,
    )
    assert key not in repr(provider.__dict__)
    # the key is really used, just never shown
    sent: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return ok(request)

    provider, key = build(name, capture)
    provider.complete(REQ)
    assert key in sent[0].headers.get(provider.dialect.auth_header, "")


@pytest.mark.parametrize("name", NAMES)
def test_provider_cannot_be_pickled_with_its_key(name: str) -> None:
    provider, key = build(name, ok)
    try:
        data = pickle.dumps(provider)
    except Exception as exc:
        assert_exception_clean(key, exc)
    else:
        assert key.encode() not in data


# -- exceptions --------------------------------------------------------------------------------


def echoing_401(key: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            headers={"x-request-id": f"req-{key}"},
            json={
                "error": {
                    "message": f"Incorrect API key provided: {key}. Check your key.",
                    "type": "invalid_request_error",
                    "param": key,
                    "code": f"invalid_api_key:{key}",
                }
            },
        )

    return handler


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
async def test_status_error_that_echoes_the_key(name: str, mode: str) -> None:
    _, key = FACTORIES[name]
    provider, key = build(name, echoing_401(key))
    with pytest.raises(AuthenticationFailed) as info:
        await call(provider, mode)
    assert_exception_clean(key, info.value)
    assert "Incorrect API key provided" in str(info.value)  # the rest of the message stays


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
async def test_non_json_error_body_that_echoes_the_key(name: str, mode: str) -> None:
    _, key = FACTORIES[name]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text=f"<html>forbidden for key {key}</html>")

    provider, key = build(name, handler)
    with pytest.raises(LlmError) as info:
        await call(provider, mode)
    assert_exception_clean(key, info.value)


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("name", NAMES)
async def test_in_band_error_and_bad_frame_that_echo_the_key(name: str, mode: str) -> None:
    _, key = FACTORIES[name]
    for body in (
        sse(chunk({"content": "a"}), {"error": {"message": f"bad key {key}", "code": key}}),
        sse(chunk({"content": "a"}), f"data: not json {key}\n\n"),
        sse(
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c", "function": {"name": "f", "arguments": f"{{{key}"}}
                    ]
                }
            ),
            chunk({}, "tool_calls"),
            DONE,
        ),
    ):
        provider, key = build(name, lambda request, b=body: httpx.Response(200, content=b))
        with pytest.raises(LlmError) as info:
            await call(provider, mode)
        assert_exception_clean(key, info.value)


@pytest.mark.parametrize("mode", ["complete", "acomplete"])
@pytest.mark.parametrize("name", NAMES)
async def test_bad_complete_body_that_echoes_the_key(name: str, mode: str) -> None:
    _, key = FACTORIES[name]
    provider, key = build(name, lambda request: httpx.Response(200, text=f"oops {key}"))
    with pytest.raises(LlmError) as info:
        await call(provider, mode)
    assert_exception_clean(key, info.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
async def test_transport_errors(name: str, mode: str) -> None:
    _, key = FACTORIES[name]
    failures = [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        # a transport that shows the header it refused (as h11 does for illegal values)
        httpx.LocalProtocolError(f"Illegal header value b'Bearer {key}'"),
    ]
    for failure in failures:

        def handler(request: httpx.Request, f: Exception = failure) -> httpx.Response:
            raise f

        provider, key = build(name, handler)
        with pytest.raises(LlmError) as info:
            await call(provider, mode)
        assert info.value.__cause__ is not None
        assert_exception_clean(key, info.value)


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_transport_error_mid_stream(mode: str) -> None:
    provider_name = "openai"
    _, key = FACTORIES[provider_name]

    class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            yield sse(chunk({"content": "a"}))
            raise httpx.ReadError(f"reset while sending {key}")

        async def __aiter__(self) -> Any:
            yield sse(chunk({"content": "a"}))
            raise httpx.ReadError(f"reset while sending {key}")

    provider, key = build(provider_name, lambda request: httpx.Response(200, stream=Broken()))
    with pytest.raises(LlmError) as info:
        await call(provider, mode)
    assert_exception_clean(key, info.value)


@pytest.mark.parametrize("name", ["openai", "gemini", "mistral", "glm"])
def test_missing_key_error_names_the_variable_only(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "openai": "OPENAI_API_KEY",
        "gemini": "GEMINI_API_KEY",
        "mistral": "MISTRAL_API_KEY",
        "glm": "ZAI_API_KEY",
    }[name]
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(UsageError) as info:
        FACTORIES[name][0]()
    assert env in str(info.value)


# -- logs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
async def test_no_log_record_carries_the_key(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for logger in ("httpx", "httpcore", "provider_impl", "hpack", "h11", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=logger)
    _, key = FACTORIES[name]
    attempts = {"n": 0}

    # A dialect that retries no 5xx (retry_server_errors=False) still retries a 429.
    status = 503 if name not in DIALECTS or get_dialect(name).retry_server_errors else 429

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts["n"] += 1
        if attempts["n"] % 2:  # every other request fails first: retries get logged
            return httpx.Response(status, json={"error": {"message": f"busy {key}"}})
        return ok(request)

    provider, key = build(name, flaky)
    logging.getLogger("provider_impl").debug("start %s", provider)
    for mode in MODES:
        await call(provider, mode)
    provider2, key = build(name, echoing_401(key))
    for mode in MODES:
        with pytest.raises(AuthenticationFailed):
            await call(provider2, mode)
    assert attempts["n"] >= 8
    assert caplog.records, "nothing was logged: the check would be empty"
    assert any(
        r.name.startswith("provider_impl") and r.levelno == logging.DEBUG for r in caplog.records
    )
    # vcrpy is a test-only tool; when another test's cassette patch is still in
    # place (seen intermittently in full runs on Python 3.10 with vcrpy 8) it logs
    # the fake server's reply, which this test makes echo the key on purpose.
    # That is not the library logging; every other logger is checked.
    records = [r for r in caplog.records if not r.name.startswith("vcr")]
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        assert key not in text, f"{record.name}: {text!r}"
