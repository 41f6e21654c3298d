"""The few things the provider needs from httpx besides sending: a deadline that
reaches inside a blocking read, redirects that do not carry the key to another
host, and environment failures turned into typed errors.

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
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from provider_impl.errors import ConnectionFailed, LlmError, UsageError

__all__ = [
    "DEADLINE",
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
