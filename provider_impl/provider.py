"""``OpenAiCompatibleProvider``: the thin I/O shell around the sans-I/O core.

Sync and async share everything that decides: the payload builder, the
stream parser, the error classifier and the retry policy. Only the byte
moving differs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import random
import re
import ssl
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import httpx

from provider_impl.dialects import (
    CLAUDE_SUBSCRIPTION,
    GEMINI,
    GLM,
    MISTRAL,
    OPENAI,
    OPENROUTER,
    ProviderCapabilities,
    ProviderDialect,
    get_dialect,
)
from provider_impl.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    DeserializationError,
    ErrorKind,
    LlmError,
    Overloaded,
    RateLimited,
    RequestTimeout,
    StreamError,
    TransportError,
    classify_error,
)
from provider_impl.events import Connected, StreamEvent
from provider_impl.payload import build_payload
from provider_impl.response import events_from_json, response_from_json, with_parsed_json
from provider_impl.sse import DEFAULT_MAX_FRAME_BYTES
from provider_impl.stream import StreamParser
from provider_impl.types import CompletionRequest, CompletionResponse

#: One call's own timeout: seconds, an ``httpx.Timeout``, or None for the provider's.
CallTimeout = float | httpx.Timeout | None

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "CustomOptions",
    "OpenAiCompatibleProvider",
    "ProviderOptions",
    "resolve_dialect",
]

logger = logging.getLogger("provider_impl")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# httpx's default of 100 connections queues the rest in a pool that rescans every
# waiter on each event: 1,000 concurrent streams took ~50 s instead of ~5 s.
DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
_RETRY_STATUSES = frozenset({408, 409})
# Masking a one- or two-letter "key" would mangle every message; real keys are long.
_MIN_SECRET_LEN = 8
_P = TypeVar("_P", bound="OpenAiCompatibleProvider")


class CustomOptions(TypedDict, total=False):
    """The keyword arguments ``custom()`` takes besides the dialect's fields."""

    api_key: str | None
    model: str | None
    http_client: httpx.Client | None
    async_http_client: httpx.AsyncClient | None
    timeout: float | httpx.Timeout | None
    max_retries: int
    headers: Mapping[str, str] | None
    max_frame_bytes: int
    backoff_base: float
    backoff_max: float
    max_retry_wait: float


class ProviderOptions(CustomOptions, total=False):
    """The keyword arguments every factory takes (see ``OpenAiCompatibleProvider``)."""

    base_url: str | None


class _Secret:
    """Holds the API key; prints as ``***`` so it cannot leak through repr or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the API key holder cannot be pickled")


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    """One verified TLS context for every client this library creates.

    Loading the CA bundle costs about 40 ms; doing it once per provider made
    building providers the slowest step of a conformance run.
    """
    return httpx.create_ssl_context()


def resolve_dialect(provider: str | ProviderDialect | OpenAiCompatibleProvider) -> ProviderDialect:
    """A dialect from a name, a dialect or a provider instance."""
    if isinstance(provider, ProviderDialect):
        return provider
    if isinstance(provider, OpenAiCompatibleProvider):
        return provider.dialect
    if isinstance(provider, str):
        return get_dialect(provider)
    raise TypeError(
        f"provider must be a name, a ProviderDialect or a provider, not {type(provider).__name__}"
    )


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Extra headers, refused up front when HTTP could not carry them."""
    out = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"extra header name {name!r} is not a valid HTTP token")
        if not isinstance(value, str) or not value.isascii() or not value.isprintable():
            raise ValueError(f"extra header {name!r} needs a printable ASCII string value")
        out[name] = value
    return out


def _is_json(response: httpx.Response) -> bool:
    """A 2xx answer to a streaming request that is one JSON document, not SSE
    (a proxy that ignores ``stream``, or an error object sent with status 200)."""
    return "json" in response.headers.get("content-type", "")


def _is_retryable(err: LlmError, server_errors: bool = True) -> bool:
    status = err.status_code
    if not server_errors and status is not None and status >= 500:
        return False  # the dialect says a 5xx is the server's own failure (one run a call)
    if isinstance(err, (RateLimited, Overloaded, ConnectionFailed)):
        return True
    if isinstance(err.__cause__, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return True  # a connection never made: the request was not sent
    return status is not None and (status in _RETRY_STATUSES or status >= 500)


class OpenAiCompatibleProvider:
    """One client for any OpenAI-compatible chat-completions endpoint.

    Build it with a factory (``openai()``, ``gemini()``, ``mistral()``,
    ``glm()``, ``claude_subscription()``, ``custom()``); the dialect record
    decides everything provider-specific.
    """

    def __init__(
        self,
        dialect: ProviderDialect,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_wait: float = 60.0,
    ) -> None:
        if not isinstance(dialect, ProviderDialect):
            raise TypeError("dialect must be a ProviderDialect")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        key = api_key
        if key is None and dialect.api_key_env:
            key = os.environ.get(dialect.api_key_env) or None
        if key is None:
            key = dialect.default_api_key
        if not key:
            where = (
                f"set {dialect.api_key_env} or pass api_key="
                if dialect.api_key_env
                else "pass api_key="
            )
            raise AuthenticationFailed(
                f"no API key for {dialect.name}: {where}", provider=dialect.name
            )
        if not isinstance(key, str):
            raise TypeError(f"api_key must be a str, not {type(key).__name__}")
        # A key read from a file often ends in a newline; the rest must be printable
        # ASCII, or the HTTP layer rejects the header and echoes the key in its error.
        key = key.strip()
        if not key or not key.isascii() or not key.isprintable():
            raise AuthenticationFailed(
                f"the API key for {dialect.name} is empty or holds whitespace, control or "
                "non-ASCII characters",
                provider=dialect.name,
            )
        for label, value in (
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
            ("max_retry_wait", max_retry_wait),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{label} must be a non-negative number, got {value!r}")
        self._dialect = dialect
        self._key = _Secret(key)
        self._model = model or dialect.default_model
        url = (base_url or dialect.base_url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
        self._base_url = url
        self._url = url + "/chat/completions"
        if timeout is None:
            # The record's read timeout (DEFAULT_TIMEOUT's 60 s unless it says otherwise).
            self._timeout = httpx.Timeout(dialect.read_timeout, connect=DEFAULT_TIMEOUT.connect)
        elif isinstance(timeout, httpx.Timeout):
            self._timeout = timeout
        else:
            self._timeout = httpx.Timeout(float(timeout))
        self._max_retries = max_retries
        self._extra_headers = _checked_headers(headers or {})
        self._max_frame_bytes = max_frame_bytes
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._max_retry_wait = max_retry_wait
        self._client = http_client
        self._owns_client = http_client is None
        self._aclient = async_http_client
        self._owns_aclient = async_http_client is None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        # Injectable for tests; real sleeps otherwise.
        self._sleep: Callable[[float], None] = time.sleep
        self._asleep: Callable[[float], Any] = asyncio.sleep

    # -- factories -----------------------------------------------------------

    @classmethod
    def openai(cls: type[_P], **kwargs: Unpack[ProviderOptions]) -> _P:
        return cls(OPENAI, **kwargs)

    @classmethod
    def gemini(cls: type[_P], **kwargs: Unpack[ProviderOptions]) -> _P:
        return cls(GEMINI, **kwargs)

    @classmethod
    def mistral(cls: type[_P], **kwargs: Unpack[ProviderOptions]) -> _P:
        return cls(MISTRAL, **kwargs)

    @classmethod
    def glm(cls: type[_P], **kwargs: Unpack[ProviderOptions]) -> _P:
        return cls(GLM, **kwargs)

    @classmethod
    def claude_subscription(cls: type[_P], **kwargs: Unpack[ProviderOptions]) -> _P:
        return cls(CLAUDE_SUBSCRIPTION, **kwargs)

    @classmethod
    def openrouter(cls: type[_P], **kwargs: Unpack[ProviderOptions]) -> _P:
        return cls(OPENROUTER, **kwargs)

    @classmethod
    def custom(
        cls: type[_P],
        *,
        name: str,
        base_url: str,
        default_model: str,
        capabilities: ProviderCapabilities | None = None,
        api_key_env: str | None = None,
        default_api_key: str | None = None,
        auth_header: str = "Authorization",
        auth_scheme: str | None = "Bearer",
        max_tokens_param: str = "max_tokens",
        stream_usage_option: bool = True,
        forbidden_params: frozenset[str] = frozenset(),
        max_temperature: float = 2.0,
        error_codes: Mapping[str, ErrorKind] | None = None,
        cost_provider: str | None = None,
        **kwargs: Unpack[CustomOptions],
    ) -> _P:
        """Any other OpenAI-compatible endpoint, described by the same fields as a dialect."""
        dialect = ProviderDialect(
            name=name,
            base_url=base_url,
            default_model=default_model,
            capabilities=capabilities
            or ProviderCapabilities(
                streaming=True,
                tool_calling=True,
                vision=False,
                extended_thinking=False,
                max_context_tokens=128_000,
                max_output_tokens=16_384,
            ),
            api_key_env=api_key_env,
            default_api_key=default_api_key,
            auth_header=auth_header,
            auth_scheme=auth_scheme,
            max_tokens_param=max_tokens_param,
            stream_usage_option=stream_usage_option,
            forbidden_params=frozenset(forbidden_params),
            max_temperature=max_temperature,
            error_codes=MappingProxyType(dict(error_codes or {})),
            cost_provider=cost_provider,
        )
        return cls(dialect, **kwargs)

    # -- properties ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._dialect.name

    @property
    def dialect(self) -> ProviderDialect:
        return self._dialect

    @property
    def capabilities(self) -> ProviderCapabilities:
        return self._dialect.capabilities

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return (
            f"OpenAiCompatibleProvider(name={self.name!r}, model={self._model!r}, "
            f"base_url={self._base_url!r})"
        )

    __str__ = __repr__

    # -- the sans-I/O parts ----------------------------------------------------

    def build_request(
        self,
        request: CompletionRequest,
        *,
        stream: bool = False,
        extra_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The exact JSON body this provider will be sent; raises ``InvalidRequest``.
        ``extra_body`` is one call's own, merged after ``request.extra_body``."""
        if not isinstance(request, CompletionRequest):
            raise TypeError(f"expected a CompletionRequest, got {type(request).__name__}")
        return build_payload(
            request, self._dialect, self._model, stream=stream, extra_body=extra_body
        )

    def _call_options(
        self, timeout: CallTimeout, headers: Mapping[str, str] | None
    ) -> tuple[httpx.Timeout, dict[str, str]]:
        """One call's timeout and extra headers, checked before any I/O."""
        if timeout is None:
            resolved = self._timeout
        elif isinstance(timeout, httpx.Timeout):
            resolved = timeout
        elif (
            isinstance(timeout, (int, float))
            and not isinstance(timeout, bool)
            and 0 < timeout < float("inf")
        ):
            resolved = httpx.Timeout(float(timeout), connect=min(float(timeout), 10.0))
        else:
            raise ValueError(
                f"timeout must be a positive number of seconds or an httpx.Timeout, got {timeout!r}"
            )
        if headers is not None and not isinstance(headers, Mapping):
            raise TypeError(f"headers must be a mapping, got {type(headers).__name__}")
        return resolved, _checked_headers(headers or {})

    def count_tokens(self, request: CompletionRequest) -> int:
        """A rough estimate (about four characters a token) of the prompt's size:
        the messages and tools as they would be sent. Bad input raises
        ``InvalidRequest``, as in ``build_request``."""
        body = self.build_request(request)
        sent = [body["messages"], body.get("tools", [])]
        return max(1, (len(json.dumps(sent, ensure_ascii=False)) + 3) // 4)

    def _headers(self, stream: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        key = self._key.reveal()
        scheme = self._dialect.auth_scheme
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "user-agent": "provider-impl/0.1",
            self._dialect.auth_header: f"{scheme} {key}" if scheme else key,
        }
        headers.update(self._extra_headers)
        if extra:  # one call's own headers win over the provider's
            lowered = {name.lower() for name in extra}
            headers = {k: v for k, v in headers.items() if k.lower() not in lowered}
            headers.update(extra)
        return headers

    def _encode(self, body: Mapping[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _redact(self, text: str) -> str:
        key = self._key.reveal()
        return text.replace(key, "***") if len(key) >= _MIN_SECRET_LEN and key in text else text

    def _status_error(self, response: httpx.Response, body: bytes) -> LlmError:
        return classify_error(
            response.status_code,
            response.headers,
            body,
            provider=self.name,
            error_codes=self._dialect.error_codes,
            redact=self._redact,
        )

    def _transport_error(self, exc: Exception, *, mid_stream: bool) -> LlmError:
        # The original stays the __cause__ and shows in tracebacks: scrub it too.
        if any(isinstance(a, str) and self._redact(a) != a for a in exc.args):
            exc.args = tuple(self._redact(a) if isinstance(a, str) else a for a in exc.args)
        detail = self._redact(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, httpx.TimeoutException):
            err = RequestTimeout(f"timed out talking to {self.name}: {detail}", provider=self.name)
            err.__cause__ = exc  # the retry policy looks at what timed out
            return err
        if isinstance(exc, httpx.LocalProtocolError):
            # Our own request was malformed (e.g. a bad header value): retrying cannot help.
            return TransportError(f"could not send to {self.name}: {detail}", provider=self.name)
        if mid_stream:
            return StreamError(f"the connection broke mid-stream: {detail}", provider=self.name)
        return ConnectionFailed(f"could not reach {self.name}: {detail}", provider=self.name)

    def _retry_delay(self, err: LlmError, attempt: int) -> float | None:
        """Seconds to wait before retry ``attempt + 1``, or None to give up."""
        if attempt >= self._max_retries or not _is_retryable(
            err, self._dialect.retry_server_errors
        ):
            return None
        backoff = min(self._backoff_max, self._backoff_base * (2.0**attempt))
        delay = backoff * random.uniform(0.5, 1.0)
        retry_after = err.retry_after if isinstance(err, (RateLimited, Overloaded)) else None
        if retry_after is not None:
            if retry_after > self._max_retry_wait:
                return None
            delay = max(delay, retry_after)
        logger.debug("%s: retrying in %.2fs after %s", self.name, delay, type(err).__name__)
        return delay

    def _fail(self, err: LlmError) -> LlmError:
        key = self._key.reveal()
        if len(key) >= _MIN_SECRET_LEN:
            err._redact(key)
        return err

    # -- sync --------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self._timeout, verify=_default_ssl_context(), limits=DEFAULT_LIMITS
            )
        return self._client

    def _open(
        self,
        body: Mapping[str, Any],
        stream: bool,
        call: tuple[httpx.Timeout, dict[str, str]] | None = None,
    ) -> httpx.Response:
        """Send with retries; returns an open 2xx response the caller must close."""
        client = self._sync_client()
        content = self._encode(body)
        attempt = 0
        while True:
            logger.debug("%s: POST %s attempt %d", self.name, self._url, attempt + 1)
            request = client.build_request(
                "POST",
                self._url,
                content=content,
                headers=self._headers(stream, call[1] if call else None),
                timeout=call[0] if call else self._timeout,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as exc:
                err = self._transport_error(exc, mid_stream=False)
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise self._fail(err) from exc
                self._sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                return response
            try:
                err = self._status_error(response, response.read())
            except httpx.HTTPError as exc:
                raise self._fail(self._transport_error(exc, mid_stream=False)) from exc
            finally:
                response.close()
            logger.debug("%s: HTTP %d", self.name, response.status_code)
            delay = self._retry_delay(err, attempt)
            if delay is None:
                raise self._fail(err)
            self._sleep(delay)
            attempt += 1

    def complete(
        self,
        request: CompletionRequest,
        *,
        timeout: CallTimeout = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> CompletionResponse:
        """The whole reply. ``timeout``, ``headers`` and ``extra_body`` apply to this
        call only (over the provider's own); bad input raises before any I/O."""
        body = self.build_request(request, stream=False, extra_body=extra_body)
        call = self._call_options(timeout, headers)
        response = self._open(body, stream=False, call=call)
        try:
            raw = self._read_body(response)
        finally:
            response.close()
        return self._json_response(raw, request)

    def stream(
        self,
        request: CompletionRequest,
        *,
        timeout: CallTimeout = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Generator[StreamEvent, None, None]:
        """Events as they arrive. ``timeout``, ``headers`` and ``extra_body`` apply to
        this call only. Bad input raises here, before any I/O."""
        body = self.build_request(request, stream=True, extra_body=extra_body)
        return self._stream(body, self._call_options(timeout, headers))

    def _stream(
        self, body: Mapping[str, Any], call: tuple[httpx.Timeout, dict[str, str]] | None = None
    ) -> Generator[StreamEvent, None, None]:
        response = self._open(body, stream=True, call=call)
        try:
            yield Connected()
            if _is_json(response):
                yield from self._json_events(self._read_body(response))
                return
            parser = StreamParser(self._dialect, self._max_frame_bytes)
            try:
                for data in response.iter_bytes():
                    yield from parser.feed(data)
                    if parser.done:
                        return
                yield from parser.end()
            except httpx.HTTPError as exc:
                raise self._fail(self._transport_error(exc, mid_stream=True)) from exc
            except LlmError as err:
                self._fail(err)
                raise
        finally:
            response.close()

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async -------------------------------------------------------------

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._owns_aclient and self._aclient is not None and self._aclient_loop is not loop:
            # Its pooled connections belong to another (likely closed) event loop,
            # as after a second asyncio.run(); they cannot be used or closed from here.
            self._aclient = None
        if self._aclient is None:
            self._aclient_loop = loop
            self._aclient = httpx.AsyncClient(
                timeout=self._timeout, verify=_default_ssl_context(), limits=DEFAULT_LIMITS
            )
        return self._aclient

    async def _aopen(
        self,
        body: Mapping[str, Any],
        stream: bool,
        call: tuple[httpx.Timeout, dict[str, str]] | None = None,
    ) -> httpx.Response:
        client = self._async_client()
        content = self._encode(body)
        attempt = 0
        while True:
            logger.debug("%s: POST %s attempt %d", self.name, self._url, attempt + 1)
            request = client.build_request(
                "POST",
                self._url,
                content=content,
                headers=self._headers(stream, call[1] if call else None),
                timeout=call[0] if call else self._timeout,
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                err = self._transport_error(exc, mid_stream=False)
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise self._fail(err) from exc
                await self._asleep(delay)
                attempt += 1
                continue
            if response.is_success:
                return response
            try:
                err = self._status_error(response, await response.aread())
            except httpx.HTTPError as exc:
                raise self._fail(self._transport_error(exc, mid_stream=False)) from exc
            finally:
                await response.aclose()
            logger.debug("%s: HTTP %d", self.name, response.status_code)
            delay = self._retry_delay(err, attempt)
            if delay is None:
                raise self._fail(err)
            await self._asleep(delay)
            attempt += 1

    async def acomplete(
        self,
        request: CompletionRequest,
        *,
        timeout: CallTimeout = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> CompletionResponse:
        """``complete()``, async; the same per-call options."""
        body = self.build_request(request, stream=False, extra_body=extra_body)
        call = self._call_options(timeout, headers)
        response = await self._aopen(body, stream=False, call=call)
        try:
            raw = await self._aread_body(response)
        finally:
            await response.aclose()
        return self._json_response(raw, request)

    def astream(
        self,
        request: CompletionRequest,
        *,
        timeout: CallTimeout = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Async events as they arrive; the same per-call options as ``stream()``.
        Bad input raises here, before any I/O."""
        body = self.build_request(request, stream=True, extra_body=extra_body)
        return self._astream(body, self._call_options(timeout, headers))

    async def _astream(
        self, body: Mapping[str, Any], call: tuple[httpx.Timeout, dict[str, str]] | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        response = await self._aopen(body, stream=True, call=call)
        try:
            yield Connected()
            if _is_json(response):
                for event in self._json_events(await self._aread_body(response)):
                    yield event
                return
            parser = StreamParser(self._dialect, self._max_frame_bytes)
            try:
                async for data in response.aiter_bytes():
                    for event in parser.feed(data):
                        yield event
                    if parser.done:
                        return
                for event in parser.end():
                    yield event
            except httpx.HTTPError as exc:
                raise self._fail(self._transport_error(exc, mid_stream=True)) from exc
            except LlmError as err:
                self._fail(err)
                raise
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the clients this provider created (async and sync)."""
        if self._aclient is not None and self._owns_aclient:
            if self._aclient_loop is asyncio.get_running_loop():
                await self._aclient.aclose()
            self._aclient = None
        self.close()

    async def __aenter__(self: _P) -> _P:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- shared ------------------------------------------------------------

    def _read_body(self, response: httpx.Response) -> bytes:
        try:
            return response.read()
        except httpx.HTTPError as exc:
            raise self._fail(self._transport_error(exc, mid_stream=True)) from exc

    async def _aread_body(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.HTTPError as exc:
            raise self._fail(self._transport_error(exc, mid_stream=True)) from exc

    def _json_response(self, raw: bytes, request: CompletionRequest) -> CompletionResponse:
        """A whole reply: every choice, logprobs, and the parsed JSON when asked for."""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise self._fail(
                DeserializationError(f"the response is not JSON: {raw[:200]!r}", provider=self.name)
            ) from None
        try:
            reply = response_from_json(body, self._dialect)
        except LlmError as err:
            raise self._fail(err) from None
        rf = request.response_format
        return with_parsed_json(reply) if rf is not None and rf.type != "text" else reply

    def _json_events(self, raw: bytes) -> list[StreamEvent]:
        """A whole JSON body's events; an error object in it raises its typed error."""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise self._fail(
                DeserializationError(f"the response is not JSON: {raw[:200]!r}", provider=self.name)
            ) from None
        try:
            return events_from_json(body, self._dialect)
        except LlmError as err:
            raise self._fail(err) from None
