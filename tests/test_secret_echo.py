"""A server that echoes the key back — whole, cut short, escaped, in a field, in a
header — never gets a 12-character piece of it into an error (text, fields, cause
chain, traceback) or a log record (docs/RELIABILITY.md, "Secrets")."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from provider_impl import CompletionRequest, LlmError, Message, OpenAiCompatibleProvider
from provider_impl.errors import InvalidRequest
from provider_impl.redaction import PIECE, Redactor

# 164 characters, like the key a proxy echoed in the report.
_NOISE = hashlib.sha512(b"not a key").digest() + hashlib.sha512(b"nor this").digest()
KEY = "sk-proj-" + base64.urlsafe_b64encode(_NOISE).decode()[:156]
assert len(KEY) == 164
REQ = CompletionRequest(messages=[Message(role="user", content="hi")], max_tokens=20)
MODES = ["complete", "stream", "acomplete", "astream"]


def pieces(key: str = KEY) -> list[str]:
    return [key[i : i + PIECE] for i in range(len(key) - PIECE + 1)]


def leaked_piece(text: str, key: str = KEY) -> str | None:
    return next((p for p in pieces(key) if p in text), None)


def _texts(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string reachable from an exception's attributes (and the request httpx keeps)."""
    if depth > 4:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("latin-1")
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _texts(v, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _texts(k, depth + 1)
            yield from _texts(v, depth + 1)
    elif isinstance(value, httpx.Request):
        yield str(value.url)
        for k, v in value.headers.items():
            yield f"{k}: {v}"


def assert_no_piece(err: BaseException) -> None:
    """Text, repr, every field, the whole cause/context chain and the traceback."""
    chain: list[BaseException] = []
    todo: list[BaseException | None] = [err]
    while todo:
        e = todo.pop()
        if e is None or any(e is c for c in chain):
            continue
        chain.append(e)
        todo += [e.__cause__, e.__context__]
    assert len(chain) >= 1
    for e in chain:
        texts = [str(e), repr(e), *_texts(e.args), *_texts(vars(e))]
        if isinstance(e, httpx.HTTPError):
            with contextlib.suppress(RuntimeError):  # no request kept: nothing to leak
                texts += list(_texts(e.request))
        for text in texts:
            piece = leaked_piece(text)
            assert piece is None, f"{type(e).__name__} leaks {piece!r} in {text[:300]!r}"
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    assert leaked_piece(tb) is None


def build(handler: Callable[[httpx.Request], httpx.Response]) -> OpenAiCompatibleProvider:
    transport = httpx.MockTransport(handler)
    return OpenAiCompatibleProvider.openai(
        api_key=KEY,
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


def call(provider: OpenAiCompatibleProvider, mode: str) -> None:
    if mode == "complete":
        provider.complete(REQ)
    elif mode == "stream":
        list(provider.stream(REQ))
    elif mode == "acomplete":
        asyncio.run(provider.acomplete(REQ))
    else:

        async def drain() -> None:
            async for _ in provider.astream(REQ):
                pass

        asyncio.run(drain())


def failure(handler: Callable[[httpx.Request], httpx.Response], mode: str) -> LlmError:
    with pytest.raises(LlmError) as info:
        call(build(handler), mode)
    return info.value


# -- the redactor itself ---------------------------------------------------------------


def test_redactor_masks_every_piece_and_form() -> None:
    redact = Redactor([KEY])
    cases = {
        "cut at 100": f"proxy said: {KEY[:100]}",
        "cut at both ends": f"…{KEY[30:90]}…",
        "one JSON escape": json.dumps(KEY).replace("s", "\\u0073", 1),
        "every char percent-encoded": "".join(f"%{ord(c):02X}" for c in KEY),
        "dashes percent-encoded": KEY.replace("-", "%2d"),
        "slash-escaped": KEY.replace("-", "\\-"),
    }
    for label, text in cases.items():
        out = redact(text)
        assert "***" in out, label
        assert leaked_piece(out) is None, label
        # No escaped piece either: decoding the output shows no piece.
        decoded = json.loads(out) if label == "one JSON escape" else out
        assert leaked_piece(decoded) is None, label
    # Pieces shorter than PIECE are not keys: text with them is left alone.
    assert redact(f"tail {KEY[-PIECE + 1 :]}") == f"tail {KEY[-PIECE + 1 :]}"
    assert redact("nothing to see") == "nothing to see"


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["complete", "acomplete"])
def test_text_plain_200_echoing_the_key_is_cut_only_after_redaction(mode: str) -> None:
    # The case: 100 of 164 characters survived the 200-character excerpt.
    err = failure(lambda r: httpx.Response(200, text=f"echo {KEY} echo " * 3), mode)
    assert "not JSON" in err.message
    assert_no_piece(err)


@pytest.mark.parametrize("mode", MODES)
def test_every_field_of_a_refusal_is_redacted(mode: str) -> None:
    body = {
        "error": {
            "message": f"bad key {KEY[:50]}",
            "type": "invalid_request_error",
            "param": f"headers.authorization={KEY}",
            "code": KEY[20:60],
        },
        "request_id": KEY[-40:],
    }
    err = failure(lambda r: httpx.Response(400, json=body), mode)
    assert isinstance(err, InvalidRequest)
    assert err.field is not None and "***" in err.field
    assert_no_piece(err)


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_validation_detail_and_dict_message_are_redacted_before_the_500_cut(mode: str) -> None:
    detail = {"detail": [{"loc": ["body", KEY], "msg": "extra", "type": "extra_forbidden"}]}
    err = failure(lambda r: httpx.Response(422, json=detail), mode)
    assert isinstance(err, InvalidRequest) and err.field is not None
    assert_no_piece(err)
    # A message that is an object is dumped and cut at 500 characters: the key
    # sits across the cut.
    message = {"padding": "x" * 420, "echo": KEY}
    err = failure(lambda r: httpx.Response(500, json={"error": {"message": message}}), mode)
    assert_no_piece(err)


@pytest.mark.parametrize("mode", MODES)
def test_key_echoed_in_a_request_id_header(mode: str) -> None:
    err = failure(
        lambda r: httpx.Response(401, headers={"x-request-id": KEY}, json={"error": "no"}), mode
    )
    assert err.request_id == "***"
    assert_no_piece(err)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
def test_transport_errors_keep_no_auth_header_in_their_cause(
    mode: str, exc: httpx.HTTPError
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise type(exc)(str(exc), request=request)  # httpx keeps the request, headers and all

    err = failure(handler, mode)
    cause = err.__cause__
    assert isinstance(cause, httpx.HTTPError)
    assert cause.request.headers["authorization"] == "[redacted]"
    assert cause.request.url.host == "api.openai.com"  # still says where it went
    assert_no_piece(err)


def test_in_band_error_frame_echoing_a_cut_key() -> None:
    frame = json.dumps({"error": {"message": f"denied for {KEY[:70]}", "code": "x"}})
    err = failure(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, text=f"data: {frame}\n\n"
        ),
        "stream",
    )
    assert_no_piece(err)


# -- logs -------------------------------------------------------------------------------


class _EchoHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        key = self.headers.get("authorization", "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"no: {key[:90]}", "code": "invalid_api_key"}})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo-key", key)
        self.send_header("x-echo-cut", key[10:80])
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    # shutdown() waits for the loop's next poll: 0.5 s by default, per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", MODES)
def test_key_echoed_in_response_headers_reaches_no_log_record(
    echo_url: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpcore", "httpcore.http11", "httpcore.connection", "httpx", "provider_impl"):
        caplog.set_level(logging.DEBUG, logger=name)
    # httpcore logs the response headers: its records are what this test checks.
    provider = OpenAiCompatibleProvider.openai(
        api_key=KEY, base_url=echo_url, max_retries=0, async_transport="httpx"
    )
    with pytest.raises(LlmError) as info:
        call(provider, mode)
    assert_no_piece(info.value)
    http_records = [r for r in caplog.records if r.name.startswith("httpcore")]
    headers_logged = [r for r in http_records if "receive_response_headers.complete" in r.msg]
    assert headers_logged, "httpcore logged no response headers: the check would be empty"
    assert any(b"x-echo-key" in r.getMessage().encode() for r in headers_logged)
    for record in caplog.records:
        assert leaked_piece(record.getMessage()) is None, record.name


@pytest.mark.parametrize("mode", ["acomplete", "astream"])
def test_key_echoed_in_response_headers_on_aiohttp_reaches_no_log_record(
    echo_url: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("aiohttp")
    caplog.set_level(logging.DEBUG)
    for name in ("aiohttp", "aiohttp.client", "asyncio", "provider_impl"):
        caplog.set_level(logging.DEBUG, logger=name)
    provider = OpenAiCompatibleProvider.openai(
        api_key=KEY, base_url=echo_url, max_retries=0, async_transport="aiohttp"
    )
    with pytest.raises(LlmError) as info:
        call(provider, mode)
    assert info.value.status_code == 401
    assert_no_piece(info.value)
    for record in caplog.records:
        assert leaked_piece(record.getMessage()) is None, record.name


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_frame_that_is_not_json_keeps_no_key_in_its_context(mode: str) -> None:
    # json.JSONDecodeError keeps the whole frame (.doc) as the error's __context__.
    err = failure(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, text=f"data: {{{KEY}\n\n"
        ),
        mode,
    )
    assert isinstance(err.__context__, json.JSONDecodeError)
    assert_no_piece(err)
