"""``OpenAiCompatibleProvider``: the thin I/O shell around the sans-I/O core.

Sync and async share everything that decides: the payload builder, the
stream parser, the error classifier and the retry policy. Only the byte
moving differs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import inspect
import json
import logging
import os
import re
import ssl
import sys
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Mapping,
)
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, TypeVar

import httpx

from provider_impl.body import ACCEPT_ENCODING, DEFAULT_MAX_BODY_BYTES, ContentDecoder
from provider_impl.classify import classify_error
from provider_impl.dialects import (
    CLAUDE_SUBSCRIPTION,
    GEMINI,
    GLM,
    MISTRAL,
    OPENAI,
    OPENROUTER,
    ProviderCapabilities,
    ProviderDialect,
)
from provider_impl.errors import (
    ConnectionFailed,
    DeserializationError,
    ErrorKind,
    LlmError,
    RequestTimeout,
    ResponseTooLarge,
    StreamError,
    TransportError,
    UsageError,
)
from provider_impl.events import Connected, MessageStart, StreamEvent
from provider_impl.payload import build_payload
from provider_impl.policy import CallPolicy, CallState
from provider_impl.redaction import Redactor, redact_exception, register_secret
from provider_impl.response import events_from_json, response_from_json, with_parsed_json
from provider_impl.sse import DEFAULT_MAX_FRAME_BYTES
from provider_impl.stream import StreamParser
from provider_impl.transport import (
    DEADLINE,
    AsyncH11Body,
    H11Body,
    deadline_scope,
    environment_error,
    install_deadlines,
    redirect_request,
)
from provider_impl.types import CompletionRequest, CompletionResponse

#: One call's own timeout: seconds, an ``httpx.Timeout``, or None for the provider's.
CallTimeout = float | httpx.Timeout | None
#: What carries the provider's own async client: ``"auto"`` is aiohttp when the
#: ``aiohttp`` extra is installed (and the environment does not say otherwise), else httpx's h11.
AsyncTransport = Literal["auto", "aiohttp", "httpx"]
#: The environment variable that turns the aiohttp transport off (``httpx``) or on.
ASYNC_TRANSPORT_ENV = "PROVIDER_IMPL_ASYNC_TRANSPORT"

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ASYNC_TRANSPORT_ENV",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AsyncTransport",
    "CallOptions",
    "CustomOptions",
    "OpenAiCompatibleProvider",
    "ProviderOptions",
]

logger = logging.getLogger("provider_impl")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# httpx's default of 100 connections queues the rest in a pool that rescans every
# waiter on each event: 1,000 concurrent streams took ~50 s instead of ~5 s.
DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
_P = TypeVar("_P", bound="OpenAiCompatibleProvider")
_P_co = TypeVar("_P_co", bound="OpenAiCompatibleProvider", covariant=True)
_T = TypeVar("_T")


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
    idle_timeout: float | None
    total_timeout: float | None
    max_body_bytes: int
    async_transport: AsyncTransport


class CallOptions(TypedDict, total=False):
    """What one call may set over the provider's own (``complete()``, ``stream()``,
    ``acomplete()``, ``astream()``): its ``timeout`` (which also sets its idle
    limit), extra ``headers``, and ``extra_body`` keys merged into the JSON body."""

    timeout: CallTimeout
    headers: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None


class ProviderOptions(CustomOptions, total=False):
    """The keyword arguments every factory takes (see ``OpenAiCompatibleProvider``)."""

    base_url: str | None


class _Factory(Protocol[_P_co]):
    def __call__(self, **kwargs: Unpack[ProviderOptions]) -> _P_co: ...


class _BuiltIn:
    """A factory for one built-in record, read like a classmethod: the class it is
    read from (a subclass too) called with the record and the options."""

    __slots__ = ("dialect",)

    def __init__(self, dialect: ProviderDialect) -> None:
        self.dialect = dialect

    def __get__(self, obj: object, owner: type[_P]) -> _Factory[_P]:
        return functools.partial(owner, self.dialect)


class _Secret:
    """Holds the API key; prints as ``***`` so it cannot leak through repr or logs."""

    __slots__ = ("__weakref__", "_value", "headers", "redactor")

    def __init__(self, value: str) -> None:
        self._value = value
        # The provider's prebuilt request headers (stream, whole), which carry the key.
        self.headers: dict[bool, dict[str, str]] = {}
        # Masks the key, whole or in pieces, in errors and log records (redaction.py).
        self.redactor = Redactor([value])
        register_secret(self, value)

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


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Extra headers, refused up front when HTTP could not carry them."""
    out = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise UsageError(f"extra header name {name!r} is not a valid HTTP token")
        if not isinstance(value, str) or not value.isascii() or not value.isprintable():
            raise UsageError(f"extra header {name!r} needs a printable ASCII string value")
        out[name] = value
    return out


def _choose_async_transport(choice: str) -> bool:
    """Whether the provider's own async client runs on aiohttp. ``auto`` follows
    ``PROVIDER_IMPL_ASYNC_TRANSPORT`` (``httpx`` or ``aiohttp``) when set, else uses
    aiohttp when it is installed; ``aiohttp`` without it installed is refused."""
    if choice not in ("auto", "aiohttp", "httpx"):
        raise ValueError(f"async_transport must be 'auto', 'aiohttp' or 'httpx', got {choice!r}")
    if choice == "auto":
        env = os.environ.get(ASYNC_TRANSPORT_ENV, "").strip().lower()
        if env not in ("", "auto", "aiohttp", "httpx"):
            raise ValueError(
                f"{ASYNC_TRANSPORT_ENV} must be 'auto', 'aiohttp' or 'httpx', got {env!r}"
            )
        choice = env if env in ("aiohttp", "httpx") else "auto"
    if choice == "aiohttp" and not _aiohttp_installed():
        raise ValueError(
            "async_transport='aiohttp' needs the aiohttp extra: "
            "pip install 'provider-impl[aiohttp]'"
        )
    return choice != "httpx" and _aiohttp_installed()


@functools.lru_cache(maxsize=1)
def _aiohttp_installed() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


def _is_json(response: httpx.Response) -> bool:
    """A 2xx answer to a streaming request that is one JSON document, not SSE
    (a proxy that ignores ``stream``, or an error object sent with status 200)."""
    return "json" in response.headers.get("content-type", "")


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
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        async_transport: AsyncTransport = "auto",
    ) -> None:
        if not isinstance(dialect, ProviderDialect):
            raise TypeError("dialect must be a ProviderDialect")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise UsageError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        if max_frame_bytes < 1:
            raise UsageError("max_frame_bytes must be positive")
        if (
            not isinstance(max_body_bytes, int)
            or isinstance(max_body_bytes, bool)
            or max_body_bytes < 1
        ):
            raise UsageError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
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
            raise UsageError(
                f"no API key for {dialect.name}: {where}", provider=dialect.name, field="api_key"
            )
        if not isinstance(key, str):
            raise TypeError(f"api_key must be a str, not {type(key).__name__}")
        # A key read from a file often ends in a newline; the rest must be printable
        # ASCII, or the HTTP layer rejects the header and echoes the key in its error.
        key = key.strip()
        if not key or not key.isascii() or not key.isprintable():
            raise UsageError(
                f"the API key for {dialect.name} is empty or holds whitespace, control or "
                "non-ASCII characters",
                provider=dialect.name,
                field="api_key",
            )
        for label, value in (
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
            ("max_retry_wait", max_retry_wait),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise UsageError(f"{label} must be a non-negative number, got {value!r}")
        self._dialect = dialect
        self._key = _Secret(key)
        self._model = model or dialect.default_model
        url = (base_url or dialect.base_url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"base_url must start with http:// or https://, got {url!r}")
        self._base_url = url
        self._url = url + "/chat/completions"
        try:
            httpx.URL(self._url)
        except httpx.InvalidURL as exc:
            raise self._fail(
                environment_error(exc, dialect.name, self._redact) or LlmError(str(exc))
            ) from exc
        if timeout is None:
            # The record's read timeout (DEFAULT_TIMEOUT's 60 s unless it says otherwise).
            self._timeout = httpx.Timeout(dialect.read_timeout, connect=DEFAULT_TIMEOUT.connect)
        elif isinstance(timeout, httpx.Timeout):
            self._timeout = timeout
        else:
            self._timeout = httpx.Timeout(float(timeout))
        # The idle limit defaults to the read timeout: keep-alives and trickled
        # bytes then cannot stretch a call past what silence would have.
        self._policy = CallPolicy(
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_wait=max_retry_wait,
            retry_server_errors=dialect.retry_server_errors,
            idle_timeout=self._timeout.read if idle_timeout is None else idle_timeout,
            total_timeout=total_timeout,
        )
        self._idle_explicit = idle_timeout is not None
        self._extra_headers = _checked_headers(headers or {})
        # Built once: a call without headers of its own sends these as they are. They
        # hold the key, so they live in its holder (which never prints it).
        self._key.headers = {stream: self._build_headers(stream) for stream in (True, False)}
        self._max_frame_bytes = max_frame_bytes
        self._max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._client = http_client
        self._owns_client = http_client is None
        if http_client is not None:
            install_deadlines(http_client)  # inert outside this provider's calls
        self._aclient = async_http_client
        self._owns_aclient = async_http_client is None
        self._use_aiohttp = _choose_async_transport(async_transport)
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._aclients = weakref.WeakKeyDictionary()
        # Injectable for tests; real sleeps otherwise.
        self._sleep: Callable[[float], None] = time.sleep
        self._asleep: Callable[[float], Any] = asyncio.sleep

    # -- factories -----------------------------------------------------------

    # One per built-in record: ``OpenAiCompatibleProvider.openai(**options)``.
    openai = _BuiltIn(OPENAI)
    gemini = _BuiltIn(GEMINI)
    mistral = _BuiltIn(MISTRAL)
    glm = _BuiltIn(GLM)
    claude_subscription = _BuiltIn(CLAUDE_SUBSCRIPTION)
    openrouter = _BuiltIn(OPENROUTER)

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
            capabilities=capabilities or ProviderCapabilities(),
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
        """The provider's name, its dialect record's (``"openai"``, ``"gemini"``, ...)."""
        return self._dialect.name

    @property
    def dialect(self) -> ProviderDialect:
        """The record of everything provider-specific this client follows."""
        return self._dialect

    @property
    def capabilities(self) -> ProviderCapabilities:
        """What the provider can do (streaming, tools, vision, thinking, limits)."""
        return self._dialect.capabilities

    @property
    def model(self) -> str:
        """The model sent when a request names none."""
        return self._model

    @property
    def base_url(self) -> str:
        """The URL requests go to (``/chat/completions`` is appended)."""
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
            raise UsageError(
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
        """The request headers (shared and never mutated when ``extra`` is empty)."""
        headers = self._key.headers[stream]
        if extra:  # one call's own headers win over the provider's
            lowered = {name.lower() for name in extra}
            headers = {k: v for k, v in headers.items() if k.lower() not in lowered}
            headers.update(extra)
        return headers

    def _build_headers(self, stream: bool) -> dict[str, str]:
        key = self._key.reveal()
        scheme = self._dialect.auth_scheme
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "accept-encoding": ACCEPT_ENCODING,
            "user-agent": "provider-impl/0.1",
            self._dialect.auth_header: f"{scheme} {key}" if scheme else key,
        }
        headers.update(self._extra_headers)
        return headers

    def _encode(self, body: Mapping[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _redact(self, text: str) -> str:
        return self._key.redactor(text)

    def _status_error(self, response: httpx.Response, body: bytes) -> LlmError:
        return classify_error(
            response.status_code,
            response.headers,
            body,
            self._dialect,
            redact=self._redact,
        )

    def _transport_error(self, exc: Exception, *, mid_stream: bool) -> LlmError:
        # The original stays the __cause__ and shows in tracebacks, with the request
        # (and its auth header) httpx keeps on it: scrub it and its chain too.
        redact_exception(exc, self._key.redactor)
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

    def _fail(self, err: LlmError) -> LlmError:
        err._redact(self._key.redactor)
        return err

    # -- one call, written once ------------------------------------------------
    #
    # ``_call`` decides everything and does no I/O: it yields what it needs done
    # (send, read, close, sleep; events for the caller) and gets back the result,
    # or the exception thrown in. ``_pump`` does those steps with blocking I/O,
    # ``_apump`` with asyncio; they are the only code that differs by mode.

    def _call(
        self,
        body: Mapping[str, Any],
        stream: bool,
        call: tuple[httpx.Timeout, dict[str, str]] | None = None,
    ) -> _Call:
        """The whole call, I/O left to a pump: events for a stream; for a whole
        reply, its body as the generator's return value."""
        policy, timeout, extra = self._policy, self._timeout, None
        if call is not None:
            timeout, extra = call
            if not self._idle_explicit:  # the idle limit follows this call's read timeout
                policy = dataclasses.replace(policy, idle_timeout=timeout.read)
        state = policy.start()
        send = _Send(self._encode(body), self._headers(stream, extra), None, timeout)
        send.timeouts = timeout.as_dict()
        while True:
            logger.debug("%s: POST %s attempt %d", self.name, self._url, state.attempt + 1)
            send.deadline = state.deadline()
            try:
                response: httpx.Response = yield send
            except Exception as exc:
                err = self._io_error(exc, state, mid_stream=False)
                if isinstance(err.__cause__, _ENVIRONMENT):
                    raise err from exc  # retrying cannot fix the configuration
                delay = self._retry(state, err)
                if delay is None:
                    raise err from exc
                yield _Sleep(delay)
                state.progress()
                continue
            if response.is_success:
                break
            raw = yield from self._read_whole(response, state, error_body=True)
            yield _Close(response)
            logger.debug("%s: HTTP %d", self.name, response.status_code)
            if raw is None:  # over max_body_bytes: the status and headers decide
                raw = (
                    f"the error body is larger than max_body_bytes={self._max_body_bytes}".encode()
                )
            err = self._status_error(response, raw)
            delay = self._retry(state, err)
            if delay is None:
                raise err
            yield _Sleep(delay)
            state.progress()
        if stream:
            yield from self._deliver(state, [Connected()])
        if not stream or _is_json(response):
            raw = yield from self._read_whole(response, state, error_body=False)
            yield _Close(response)
            assert raw is not None
            if not stream:
                return raw
            yield from self._deliver(state, self._json_events(raw))
            return None
        parser = StreamParser(self._dialect, self._max_frame_bytes)
        decoder, read = _body_reader(response)
        # The per-chunk loop: what _deliver does, inlined, and one step object reused.
        inflate = None if decoder.identity else decoder.feed
        receive, take = parser.receive_data, parser.next_events
        emit = _Emit([])
        clock = time.monotonic
        while True:
            read.deadline = state.deadline()
            try:
                chunk: bytes = yield read
            except Exception as exc:
                raise self._io_error(exc, state, mid_stream=True) from exc
            if not chunk:
                break
            for piece in (chunk,) if inflate is None else inflate(chunk):
                receive(piece)
                while events := take():  # raises after the events before it
                    emit.events = events
                    if type(events[-1]) not in _NOT_CONTENT_TYPES or _has_content(events):
                        yield emit
                        state.progress()
                    else:
                        started = clock()
                        yield emit
                        state.extend(clock() - started)
                if parser.done:
                    return None
            if state.passed():
                expired = state.timeout_error(self.name)
                if expired is not None:
                    raise expired
        parser.receive_data(b"")
        while events := parser.next_events():
            yield from self._deliver(state, events)
        return None

    def _deliver(self, state: CallState, events: list[StreamEvent]) -> _Logic:
        """Hand ``events`` to the caller. Content restarts the idle clock; the time
        the caller holds the events is never counted as the server's."""
        if not events:
            return
        started = time.monotonic()
        yield _Emit(events)
        if _has_content(events):
            state.progress()
        else:
            state.extend(time.monotonic() - started)

    def _read_whole(
        self, response: httpx.Response, state: CallState, *, error_body: bool
    ) -> Generator[_Op, Any, bytes | None]:
        """The decoded body, up to ``max_body_bytes``. Over the cap: ``ResponseTooLarge``,
        or None for an error body (classified from its status alone)."""
        decoder, read = _body_reader(response)
        limit = self._max_body_bytes
        buf = bytearray()
        while True:
            read.deadline = state.deadline()
            try:
                chunk: bytes = yield read
            except Exception as exc:
                raise self._io_error(exc, state, mid_stream=not error_body) from exc
            if not chunk:
                return bytes(buf)
            for piece in decoder.feed(chunk):
                if len(buf) + len(piece) > limit:
                    if error_body:
                        return None
                    raise ResponseTooLarge(
                        f"the response body is larger than max_body_bytes={limit} "
                        "(counted after decompression); stopped reading",
                        provider=self.name,
                        status_code=response.status_code,
                        limit=limit,
                    )
                buf += piece
            expired = state.timeout_error(self.name)
            if expired is not None:
                raise expired

    def _retry(self, state: CallState, err: LlmError) -> float | None:
        delay = state.retry_delay(err)
        if delay is not None:
            logger.debug("%s: retrying in %.2fs after %s", self.name, delay, type(err).__name__)
        return delay

    def _io_error(self, exc: Exception, state: CallState, *, mid_stream: bool) -> LlmError:
        """The typed error for a failed step (re-raises what is not an I/O failure)."""
        if isinstance(exc, httpx.TimeoutException):
            expired = state.timeout_error(self.name)
            if expired is not None:
                expired.__cause__ = exc
                return expired
        if isinstance(exc, httpx.HTTPError):
            return self._transport_error(exc, mid_stream=mid_stream)
        err = environment_error(exc, self.name, self._redact)
        if err is None:
            raise exc
        return err

    # -- sync --------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:  # two threads' first calls must not make two clients
                client = self._client
                if client is None:
                    client = self._client = self._make_client(httpx.Client)
        return client

    def _make_client(self, cls: type[_C]) -> _C:
        """One of this provider's own clients; environment problems become typed errors."""
        try:
            make: type[Any] = cls
            if cls is httpx.AsyncClient and self._use_aiohttp:
                from provider_impl.aio import AiohttpClient

                make = AiohttpClient
            client: _C = make(
                timeout=self._timeout, verify=_default_ssl_context(), limits=DEFAULT_LIMITS
            )
        except Exception as exc:
            err = environment_error(exc, self.name, self._redact)
            if err is None:
                raise
            raise self._fail(err) from exc
        if isinstance(client, httpx.Client):
            install_deadlines(client)
        return client

    def _pump(
        self, logic: _Call, result: list[bytes | None] | None = None
    ) -> Generator[StreamEvent, None, None]:
        """Run ``logic`` with blocking I/O; yield its events."""
        drive = _Drive(logic, result, self._fail)
        try:
            client = self._sync_client()
            while (op := drive.next()) is not None:
                if type(op) is _Emit:
                    yield from op.events
                    continue
                try:
                    drive.gave(op, self._do(client, op))
                except Exception as exc:
                    drive.error = exc
        finally:
            logic.close()
            for response in drive.responses:
                response.close()

    def _do(self, client: httpx.Client, op: _Op) -> Any:
        """Carry out one I/O operation of the logic, blocking; its outcome."""
        if type(op) is _Read:
            read = op.reader
            if read is None:
                read = op.reader = _sync_reader(op.response, op.raw)
            token = DEADLINE.set(op.deadline)  # what the socket reads honour
            try:
                return read()
            finally:
                DEADLINE.reset(token)
        if type(op) is _Send:
            with deadline_scope(op.deadline):
                return self._send(client, op)
        if type(op) is _Close:
            op.response.close()
        elif type(op) is _Sleep:
            self._sleep(op.seconds)
        return None

    def _send(self, client: httpx.Client, op: _Send) -> httpx.Response:
        request = client.build_request(
            "POST", self._url, content=op.content, headers=op.headers, timeout=op.timeout
        )
        hops = 0
        while True:
            response = client.send(request, stream=True, follow_redirects=False)
            nxt = redirect_request(client, response, hops, request.url, self._dialect.auth_header)
            if nxt is None:
                return response
            response.close()
            request, hops = nxt, hops + 1

    def complete(
        self,
        request: CompletionRequest,
        **options: Unpack[CallOptions],
    ) -> CompletionResponse:
        """The whole reply. ``timeout``, ``headers`` and ``extra_body`` apply to this
        call only (over the provider's own); bad input raises before any I/O."""
        result: list[bytes | None] = []
        logic = self._logic(request, False, options)
        for _ in self._pump(logic, result):
            pass  # a whole reply emits no events: it is returned
        return self._json_response(result, request)

    def stream(
        self,
        request: CompletionRequest,
        **options: Unpack[CallOptions],
    ) -> Generator[StreamEvent, None, None]:
        """Events as they arrive. ``timeout``, ``headers`` and ``extra_body`` apply to
        this call only. Bad input raises here, before any I/O."""
        return self._pump(self._logic(request, True, options))

    def close(self) -> None:
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async -------------------------------------------------------------

    def _async_client(self) -> httpx.AsyncClient:
        if not self._owns_aclient:
            assert self._aclient is not None
            return self._aclient
        # One client per event loop: pooled connections belong to the loop that
        # opened them (after a second asyncio.run(), or with a loop per thread).
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._aclients.get(loop)
            if client is None:
                for old in [old for old in self._aclients if old.is_closed()]:
                    del self._aclients[old]  # nothing can close those any more
                client = self._aclients[loop] = self._make_client(httpx.AsyncClient)
        return client

    async def _apump(
        self, logic: _Call, result: list[bytes | None] | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Run ``logic`` with asyncio I/O, each step bounded by its deadline; yield its
        events. A whole reply's body (the logic's return value) goes into ``result``."""
        drive = _Drive(logic, result, self._fail)
        try:
            client = self._async_client()
            while (op := drive.next()) is not None:
                if type(op) is _Emit:
                    for event in op.events:
                        yield event
                    continue
                try:
                    drive.gave(op, await self._ado(client, op))
                except Exception as exc:
                    drive.error = exc
        finally:
            logic.close()
            for response in drive.responses:
                await response.aclose()

    async def _ado(self, client: httpx.AsyncClient, op: _Op) -> Any:
        """``_do()`` with asyncio I/O."""
        if type(op) is _Read:
            reader = op.reader
            if reader is None:
                reader = op.reader = _async_reader(op.response, op.raw)
            ready, aread = reader
            # Bytes that have arrived need no await, so no timeout either.
            got = None if ready is None else ready()
            return await _within(op.deadline, aread()) if got is None else got
        if type(op) is _Send:
            return await _within(op.deadline, self._asend(client, op))
        if type(op) is _Close:
            await op.response.aclose()
        elif type(op) is _Sleep:
            await self._asleep(op.seconds)
        return None

    async def _asend(self, client: httpx.AsyncClient, op: _Send) -> httpx.Response:
        if self._use_aiohttp and self._owns_aclient:
            lean = getattr(client, "lean_transport", None)
            if lean is not None:
                # Our own client has no hooks, auth, cookies or redirects to honour.
                response: httpx.Response = await lean.post(
                    "POST", self._url, op.headers, op.content, op.timeouts
                )
                return response
        request = client.build_request(
            "POST", self._url, content=op.content, headers=op.headers, timeout=op.timeout
        )
        hops = 0
        while True:
            response = await client.send(request, stream=True, follow_redirects=False)
            nxt = redirect_request(client, response, hops, request.url, self._dialect.auth_header)
            if nxt is None:
                return response
            await response.aclose()
            request, hops = nxt, hops + 1

    async def acomplete(
        self,
        request: CompletionRequest,
        **options: Unpack[CallOptions],
    ) -> CompletionResponse:
        """``complete()``, async; the same per-call options."""
        result: list[bytes | None] = []
        logic = self._logic(request, False, options)
        async for _ in self._apump(logic, result):
            pass  # a whole reply emits no events: it is returned
        return self._json_response(result, request)

    def astream(
        self,
        request: CompletionRequest,
        **options: Unpack[CallOptions],
    ) -> AsyncGenerator[StreamEvent, None]:
        """Async events as they arrive; the same per-call options as ``stream()``.
        Bad input raises here, before any I/O."""
        return self._apump(self._logic(request, True, options))

    async def aclose(self) -> None:
        """Close this event loop's client (and the sync one) if this provider made them."""
        client = None
        if self._owns_aclient:
            loop = asyncio.get_running_loop()
            with self._lock:
                client = self._aclients.pop(loop, None)
                for old in [old for old in self._aclients if old.is_closed()]:
                    del self._aclients[old]
        if client is not None:
            await client.aclose()
        self.close()

    async def __aenter__(self: _P) -> _P:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- shared ------------------------------------------------------------

    def _logic(self, request: CompletionRequest, stream: bool, options: CallOptions) -> _Call:
        """One call's logic for a pump. The body and the per-call options are
        checked here, before any I/O (the logic itself runs only when pumped)."""
        unknown = options.keys() - CallOptions.__annotations__.keys()
        if unknown:
            raise TypeError(
                f"unknown per-call option(s): {', '.join(sorted(unknown))} "
                f"(a call takes {', '.join(CallOptions.__annotations__)})"
            )
        extra_body = options.get("extra_body")
        body = self.build_request(request, stream=stream, extra_body=extra_body)
        call = self._call_options(options.get("timeout"), options.get("headers"))
        return self._call(body, stream=stream, call=call)

    def _json_response(
        self, result: list[bytes | None], request: CompletionRequest
    ) -> CompletionResponse:
        """A whole reply (the body a pump put in ``result``): every choice, logprobs,
        and the parsed JSON when asked for."""
        raw = result[0]
        assert raw is not None
        body = self._parse_json(raw)
        try:
            reply = response_from_json(body, self._dialect)
        except LlmError as err:
            raise self._fail(err) from None
        rf = request.response_format
        return with_parsed_json(reply) if rf is not None and rf.type != "text" else reply

    def _parse_json(self, raw: bytes) -> Any:
        """A JSON body, or a typed error quoting its start with the key masked."""
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
        # Raised outside the except: the JSON error (and the body it holds) is no
        # context. Redacted before it is cut: a cut key would no longer match whole.
        excerpt = self._redact(raw.decode("utf-8", "replace"))[:200]
        raise self._fail(
            DeserializationError(f"the response is not JSON: {excerpt!r}", provider=self.name)
        )

    def _json_events(self, raw: bytes) -> list[StreamEvent]:
        """A whole JSON body's events; an error object in it raises its typed error."""
        body = self._parse_json(raw)
        try:
            return events_from_json(body, self._dialect)
        except LlmError as err:
            raise self._fail(err) from None


# -- the steps ``_call`` asks a pump to take ---------------------------------------


class _DeadlinePassed(httpx.ReadTimeout):
    """An async step ran past its deadline (the asyncio timeout fired); a read
    timeout, as the sync path's deadline-bounded socket read raises."""

    def __init__(self) -> None:
        super().__init__("the call's deadline passed")


class _Send:
    __slots__ = ("content", "deadline", "headers", "timeout", "timeouts")

    def __init__(
        self,
        content: bytes,
        headers: dict[str, str],
        deadline: float | None,
        timeout: httpx.Timeout,
    ) -> None:
        self.content = content
        self.headers = headers
        self.deadline = deadline
        self.timeout = timeout
        self.timeouts: dict[str, float | None] = {}


class _Read:
    """The next piece of the body (b"" at its end); ``raw``: not decoded by httpx.
    ``reader``: the pump's own handle on the body, kept here between reads."""

    __slots__ = ("deadline", "raw", "reader", "response")

    def __init__(self, response: httpx.Response, deadline: float | None, raw: bool) -> None:
        self.response = response
        self.deadline = deadline
        self.raw = raw
        self.reader: Any = None


class _Close:
    __slots__ = ("response",)

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


class _Sleep:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class _Emit:
    __slots__ = ("events",)

    def __init__(self, events: list[StreamEvent]) -> None:
        self.events = events


_Op = _Send | _Read | _Close | _Sleep | _Emit
_Logic = Generator[_Op, Any, None]
# A whole call's logic: asks for I/O steps; returns a whole reply's body (None for a stream).
_Call = Generator[_Op, Any, "bytes | None"]


class _Drive:
    """What both pumps keep while they run a call's logic: the outcome of the last
    operation (``value``, or ``error`` to throw in) and the responses it opened, which
    the pump closes at the end. ``next()`` is the logic's next operation, None once it
    has finished (its return value, a whole reply's body, appended to ``result``); a
    typed error it raises passes through ``fail`` (redacted) on the way out."""

    __slots__ = ("error", "fail", "logic", "responses", "result", "value")

    def __init__(
        self,
        logic: _Call,
        result: list[bytes | None] | None,
        fail: Callable[[LlmError], LlmError],
    ) -> None:
        self.logic = logic
        self.result = result
        self.fail = fail
        self.value: Any = None
        self.error: Exception | None = None
        self.responses: list[httpx.Response] = []

    def next(self) -> _Op | None:
        value, error, self.value, self.error = self.value, self.error, None, None
        try:
            op = self.logic.send(value) if error is None else self.logic.throw(error)
        except StopIteration as stop:
            if self.result is not None:
                self.result.append(stop.value)
            return None
        except LlmError as err:
            self.fail(err)
            raise
        return op

    def gave(self, op: _Op, value: Any) -> None:
        """``op``'s outcome, sent into the logic next; a sent request's response is
        kept to be closed."""
        if type(op) is _Send:
            self.responses.append(value)
        self.value = value


_C = TypeVar("_C", httpx.Client, httpx.AsyncClient)
# Not content: they do not restart the idle clock.
_NOT_CONTENT = (Connected, MessageStart)
_NOT_CONTENT_TYPES = frozenset(_NOT_CONTENT)
# Configuration failures (client construction, URLs): never retried.
_ENVIRONMENT = (ImportError, ValueError, TypeError, OSError, ssl.SSLError, httpx.InvalidURL)


def _body_reader(response: httpx.Response) -> tuple[ContentDecoder, _Read]:
    """How to read ``response``'s body: raw bytes through our bounded decoder, or
    (a coding we do not know, or a body given whole and already read) httpx's."""
    if response.is_stream_consumed:
        return ContentDecoder(None), _Read(response, None, raw=False)
    decoder = ContentDecoder(response.headers.get("content-encoding"))
    return decoder, _Read(response, None, raw=decoder.supported)


def _has_content(events: list[StreamEvent]) -> bool:
    """Whether any of ``events`` is content (restarts the idle clock)."""
    return any(type(event) not in _NOT_CONTENT_TYPES for event in events)


def _sync_reader(response: httpx.Response, raw: bool) -> Callable[[], bytes]:
    """How the sync pump reads ``response``'s body (b"" at its end): raw, off h11
    (every chunk that has arrived at once), else the transport's own byte stream
    (httpx's ``iter_raw`` only adds a layer that counts and re-chunks); decoded,
    httpx's iterator."""
    if raw:
        body = H11Body.of(response)
        if body is not None:
            return body.read
        if isinstance(response.stream, httpx.SyncByteStream):
            return functools.partial(next, iter(response.stream), b"")
    it = response.iter_raw() if raw else response.iter_bytes()
    return functools.partial(next, it, b"")


def _async_reader(
    response: httpx.Response, raw: bool
) -> tuple[Callable[[], bytes | None] | None, Callable[[], Awaitable[bytes]]]:
    """How the async pump reads ``response``'s body: what has arrived without an
    await (or None: no such way), and the read that awaits. Raw bytes off h11, or
    aiohttp's buffer straight (the aiohttp transport), else httpx's iterator."""
    stream = response.stream
    if raw:
        body = AsyncH11Body.of(response)
        if body is not None:
            return body.ready, body.read
        if type(stream).__name__ == "AioStream":
            read: Callable[[], Awaitable[bytes]] = getattr(stream, "read")  # noqa: B009
            return None, read
    ait = response.aiter_raw() if raw else response.aiter_bytes()
    return None, functools.partial(_anext, ait)


async def _anext(it: AsyncIterator[bytes]) -> bytes:
    try:
        return await it.__anext__()
    except StopAsyncIteration:
        return b""


async def _within(deadline: float | None, step: Awaitable[_T]) -> _T:
    """Await ``step``, cancelled when ``deadline`` (``time.monotonic()``) passes."""
    if deadline is None:
        return await step
    left = deadline - time.monotonic()
    try:
        if left <= 0:
            raise asyncio.TimeoutError
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(left):
                return await step
        return await asyncio.wait_for(step, left)
    except asyncio.TimeoutError:
        if inspect.iscoroutine(step):
            step.close()  # never started when the deadline had already passed
        raise _DeadlinePassed() from None
