"""The few things the provider needs from httpx besides sending: a deadline that
reaches inside a blocking read, a streamed body read off h11 a socket read at a
time (``H11Body``), redirects that do not carry the key to another host, and
environment failures turned into typed errors.

Deadlines (sync). httpx's timeouts bound each socket read, so a server that
sends one byte of its status line every 0.3 s never trips them. The provider
sets the deadline of the step it is running in a context variable; the network
backend wrapped here (``install_deadlines``) shortens every connect, read and
write to what is left of it, and fails at once when nothing is. Outside a
provider call the variable is unset and the wrapper passes everything through.
The async client needs none of this: the provider bounds each awaited step with
an asyncio timeout.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

import h11
import httpcore
import httpx

from provider_impl.errors import ConnectionFailed, LlmError, UsageError

__all__ = [
    "DEADLINE",
    "AsyncH11Body",
    "H11Body",
    "deadline_scope",
    "environment_error",
    "install_deadlines",
    "redirect_request",
    "scrub_urls",
]

#: The deadline of the step this thread runs (set and reset around each step).
DEADLINE: ContextVar[float | None] = ContextVar("provider_impl_deadline", default=None)
_DEADLINE = DEADLINE


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Run the body with ``deadline`` (``time.monotonic()`` seconds) on this thread's I/O."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install_deadlines(client: httpx.Client) -> bool:
    """Wrap the network backend of each of ``client``'s httpx transports (its own
    and its proxy mounts). True when at least one was wrapped; a transport that
    is not httpx's (a mock, a custom one) is left alone."""
    transports = [getattr(client, "_transport", None)]
    transports.extend(getattr(client, "_mounts", {}).values())
    wrapped = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, _DeadlineBackend):
            wrapped = True
        elif isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
            wrapped = True
    return wrapped


# -- a body read off h11 ----------------------------------------------------------
#
# httpcore hands over one h11 ``Data`` event (one HTTP chunk: one SSE frame, for
# a stream flushed frame by frame) per step, through five generator layers, even
# when one socket read brought hundreds. These readers take the same events from
# the connection's h11 state themselves: every body byte h11 already holds, in
# one piece, and a socket read (through the same network stream, so the deadline
# wrapper above still bounds it) only when it holds none, so nothing that has
# arrived waits for more. Errors become the httpx exceptions httpcore's path
# raises, and the stream is closed as httpcore closes it. Only for the exact
# chain httpx 0.28 / httpcore 1.x build over HTTP/1.1; anything else (HTTP/2, a
# mock or custom transport, httpcore's trace extension or debug log) gets None
# and the caller reads through httpx as before.

try:
    from httpcore._async.connection_pool import PoolByteStream as _APoolStream
    from httpcore._async.http11 import AsyncHTTP11Connection as _AConn
    from httpcore._async.http11 import HTTP11ConnectionByteStream as _AConnStream
    from httpcore._sync.connection_pool import PoolByteStream as _PoolStream
    from httpcore._sync.http11 import HTTP11Connection as _Conn
    from httpcore._sync.http11 import HTTP11ConnectionByteStream as _ConnStream
    from httpx._client import BoundAsyncStream as _ABound
    from httpx._client import BoundSyncStream as _Bound
    from httpx._transports.default import AsyncResponseStream as _ARespStream
    from httpx._transports.default import ResponseStream as _RespStream
    from httpx._transports.default import map_httpcore_exceptions as _map_httpcore

    _HAVE_CHAIN = True
except ImportError:  # pragma: no cover - another httpx/httpcore layout: read through httpx
    _HAVE_CHAIN = False

_HTTPCORE_LOG = logging.getLogger("httpcore.http11")
_DATA, _NEED_DATA, _END, _PAUSED = h11.Data, h11.NEED_DATA, h11.EndOfMessage, h11.PAUSED
_SEND_RESPONSE = h11.SEND_RESPONSE
_NO_RESPONSE = "Server disconnected without sending a response."  # httpcore's words


def _chain(response: httpx.Response, asynchronous: bool) -> tuple[Any, Any, Any, Any] | None:
    """(pool stream, h11 connection, httpcore request, httpx request) behind
    ``response``, or None."""
    if not _HAVE_CHAIN or _HTTPCORE_LOG.isEnabledFor(logging.DEBUG):
        return None
    bound, resp, pool, conn_stream, conn = (
        (_ABound, _ARespStream, _APoolStream, _AConnStream, _AConn)
        if asynchronous
        else (_Bound, _RespStream, _PoolStream, _ConnStream, _Conn)
    )
    s: Any = response.stream
    if type(s) is not bound:
        return None
    s = s._stream
    if type(s) is not resp:
        return None
    p = s._httpcore_stream
    if type(p) is not pool:
        return None
    cs = p._stream
    if type(cs) is not conn_stream or type(cs._connection) is not conn:
        return None
    request = cs._request
    if request.extensions.get("trace") is not None:
        return None
    return p, cs._connection, request, response.request


def _raise_mapped(exc: Exception, request: httpx.Request) -> NoReturn:
    """Raise ``exc`` as httpcore's and then httpx's exception mapping would, with
    ``request`` on it as httpx's body iterators put it (``exc.request``)."""
    if isinstance(exc, h11.RemoteProtocolError):
        mapped: Exception = httpcore.RemoteProtocolError(exc)
        mapped.__cause__ = exc
        exc = mapped
    try:
        with _map_httpcore():
            raise exc
    except httpx.RequestError as err:
        err.request = request
        raise


def _joined(parts: list[Any]) -> bytes:
    return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


class _H11Reader:
    """What the sync and the async reader share: taking h11's events without I/O."""

    __slots__ = ("_broken", "_ended", "_net", "_pool", "_request", "_size", "_state", "_timeout")
    _ASYNC = False

    def __init__(self, pool: Any, conn: Any, request: Any, http_request: httpx.Request) -> None:
        self._pool = pool
        self._request = http_request  # what the errors raised carry
        self._state: h11.Connection = conn._h11_state
        self._net: Any = conn._network_stream
        self._size: int = conn.READ_NUM_BYTES
        self._timeout: float | None = request.extensions.get("timeout", {}).get("read")
        self._ended = False
        self._broken: Exception | None = None

    @classmethod
    def of(cls: type[_R], response: httpx.Response) -> _R | None:
        """The reader for ``response``, or None when it is not httpcore's HTTP/1.1."""
        found = _chain(response, cls._ASYNC)
        return None if found is None else cls(*found)

    def _take(self) -> bytes | None:
        """The body bytes h11 holds, joined (``b""`` at the end), or None: h11 needs
        a socket read. Bytes before a protocol error come first, the error next."""
        if self._broken is not None:
            raise self._broken
        if self._ended:
            return b""
        state = self._state
        parts: list[Any] = []
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                if not parts:
                    raise
                self._broken = exc
                return _joined(parts)
            if type(event) is _DATA:
                parts.append(event.data)
            elif event is _NEED_DATA:
                return _joined(parts) if parts else None
            elif type(event) is _END or event is _PAUSED:
                self._ended = True
                return _joined(parts) if parts else b""

    def _receive(self, data: bytes) -> None:
        if not data and self._state.their_state is _SEND_RESPONSE:
            raise httpcore.RemoteProtocolError(_NO_RESPONSE)
        self._state.receive_data(data)


_R = TypeVar("_R", bound=_H11Reader)


class H11Body(_H11Reader):
    """``response``'s raw body, read off h11: ``read()`` gives the bytes that have
    arrived (every HTTP chunk h11 holds, joined), ``b""`` at the end."""

    __slots__ = ()

    def read(self) -> bytes:
        try:
            while (got := self._take()) is None:
                self._receive(self._net.read(self._size, self._timeout))
        except Exception as exc:
            self._pool.close()  # as httpcore's iterators do on a failed read
            _raise_mapped(exc, self._request)
        return got


class AsyncH11Body(_H11Reader):
    """``H11Body`` for the async client: ``ready()`` gives what h11 already holds
    without awaiting (None when a socket read is needed); ``read()`` awaits one."""

    __slots__ = ()
    _ASYNC = True

    def ready(self) -> bytes | None:
        """The body bytes h11 holds (``b""`` at the end), or None: read the socket.
        On a failure the pump's close of the response closes the connection."""
        try:
            return self._take()
        except Exception as exc:
            _raise_mapped(exc, self._request)

    async def read(self) -> bytes:
        """The next bytes of the body, awaiting the socket when nothing has arrived."""
        try:
            while (got := self._take()) is None:
                self._receive(await self._net.read(self._size, self._timeout))
        except Exception as exc:
            await self._pool.aclose()  # as httpcore's iterators do on a failed read
            _raise_mapped(exc, self._request)
        return got


# -- redirects -------------------------------------------------------------------

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"}
)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def redirect_request(
    client: httpx.Client | httpx.AsyncClient,
    response: httpx.Response,
    hops: int,
    origin: httpx.URL,
    auth_header: str,
) -> httpx.Request | None:
    """The request to send next when ``client`` follows redirects and ``response``
    is one, or None. Sent to another origin (scheme, host, port), it carries
    neither the provider's auth header nor any other credential header: httpx
    itself only drops ``Authorization``."""
    nxt = response.next_request
    if nxt is None or not client.follow_redirects or hops >= client.max_redirects:
        return None
    if _origin(nxt.url) != _origin(origin):
        for name in {*_SECRET_HEADERS, auth_header.lower()}:
            nxt.headers.pop(name, None)
    return nxt


# -- the environment -------------------------------------------------------------

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]*@")


def scrub_urls(text: str) -> str:
    """``text`` with the user:password part of every URL in it masked."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def _scrub(exc: BaseException, redact: Callable[[str], str]) -> None:
    """Mask keys and URL credentials in ``exc``'s arguments: it stays the cause."""
    if any(isinstance(a, str) for a in exc.args):
        exc.args = tuple(redact(scrub_urls(a)) if isinstance(a, str) else a for a in exc.args)


def environment_error(
    exc: BaseException, provider: str, redact: Callable[[str], str]
) -> LlmError | None:
    """A typed error for what the environment got wrong while a client was being
    made or a request built (proxy variables, CA bundle, URLs), or None."""
    if isinstance(exc, LlmError) or not isinstance(exc, Exception):
        return None
    _scrub(exc, redact)
    detail = f"{type(exc).__name__}: {exc}"
    err: LlmError
    if isinstance(exc, httpx.InvalidURL):
        err = UsageError(
            f"a URL for {provider} is malformed (base_url, or a proxy from the environment): "
            f"{detail}",
            provider=provider,
            field="url",
        )
    elif isinstance(exc, ImportError):
        err = ConnectionFailed(
            f"cannot reach {provider}: the proxy needs a package that is not installed ({detail})",
            provider=provider,
        )
    elif isinstance(exc, (ssl.SSLError, OSError)):
        err = ConnectionFailed(
            f"cannot set up TLS for {provider} (SSL_CERT_FILE / SSL_CERT_DIR?): {detail}",
            provider=provider,
        )
    elif isinstance(exc, (ValueError, TypeError)):
        err = UsageError(
            f"the HTTP client for {provider} cannot be configured (a proxy variable?): {detail}",
            provider=provider,
            field="proxy",
        )
    else:
        return None
    err.__cause__ = exc
    return err
