"""The ``aiohttp`` transport: the provider's own async client on aiohttp's C HTTP
parser (llhttp) instead of h11, when the ``aiohttp`` extra is installed.

An ``httpx.AsyncBaseTransport``, so the provider's client stays an
``httpx.AsyncClient`` (proxies from the environment still go through httpx's
own mounts, and a user's ``async_http_client=`` is never touched). Bodies come
raw (``auto_decompress=False``: the provider inflates them in bounded pieces),
and aiohttp's failures become the httpx exceptions h11's path raises for the
same event, so every typed error and retry decision stays the same
(``docs/RELIABILITY.md``; the fault, deadline and concurrency tests run on
both transports).

``AiohttpTransport.post`` is the provider's lean path: no ``httpx.Request``,
no client-level hooks, cookies or auth flow, which its own client never uses;
``AioStream.read`` gives the next piece of a body without httpx's iterator
layers. Import this module only when aiohttp is installed (``available()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import httpx

__all__ = ["AioStream", "AiohttpClient", "AiohttpTransport", "available"]


def available() -> bool:
    """Whether aiohttp can be imported (the ``aiohttp`` extra is installed)."""
    return importlib.util.find_spec("aiohttp") is not None


_HTTP11 = {"http_version": b"HTTP/1.1"}


def _send_error(exc: Exception) -> httpx.TransportError:
    """The httpx exception h11's path raises for what aiohttp reported while sending
    a request and reading the response head."""
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(msg)
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return httpx.ReadTimeout(msg)
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return httpx.ProxyError(msg)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(msg)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        return httpx.UnsupportedProtocol(msg)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("Server disconnected without sending a response.")
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(f"malformed response: {exc.message}")
    if isinstance(exc, OSError):
        return httpx.WriteError(msg)
    return httpx.RemoteProtocolError(msg)


def _read_error(exc: Exception) -> httpx.TransportError:
    """The httpx exception for a failure while reading a body."""
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return httpx.ReadTimeout(msg)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body: {msg}"
        )
    return httpx.ReadError(msg)


class AioStream(httpx.AsyncByteStream):
    """An aiohttp response's raw body, as httpx reads it and as the provider's lean
    path does (``read()``: the bytes that have arrived, ``b""`` at the end)."""

    __slots__ = ("_content", "_response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._content = response.content

    async def read(self) -> bytes:
        try:
            return await self._content.readany()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise _read_error(exc) from None if _carries_request(exc) else exc

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read():
            yield chunk

    async def aclose(self) -> None:
        # A body read to its end returns the connection to the pool; one left
        # part-read is closed, so the server sees the client leave.
        if self._content.at_eof():
            self._response.release()
        else:
            self._response.close()


def _carries_request(exc: BaseException) -> bool:
    """aiohttp keeps the request's headers (the key) on these: not kept as a cause."""
    return isinstance(exc, aiohttp.ClientResponseError)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over one aiohttp session (made in the running loop on first use)."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        self._ssl = verify
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=limits.keepalive_expiry or 5.0,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # raw bytes: the provider inflates them, bounded
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _timeout(self, timeout: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            connect, read, pool = key
            # aiohttp's ``connect`` covers the wait for a pooled connection too.
            wait = None if pool is None or connect is None else pool + connect
            found = aiohttp.ClientTimeout(
                total=None, connect=wait, sock_connect=connect, sock_read=read
            )
            if len(self._timeouts) < 64:
                self._timeouts[key] = found
        return found

    async def post(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes,
        timeout: Mapping[str, float | None],
        request: httpx.Request | None = None,
    ) -> httpx.Response:
        session = self._session or self._open()
        try:
            response = await session._request(
                method,
                url,
                headers=headers,
                data=content or None,
                allow_redirects=False,
                timeout=self._timeout(timeout),
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            err = _send_error(exc)
            err._request = request
            raise err from None if _carries_request(exc) else exc
        extensions: dict[str, Any] = _HTTP11
        if response.reason:
            extensions = {**_HTTP11, "reason_phrase": response.reason.encode("latin-1", "replace")}
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=AioStream(response),
            request=request,
            extensions=extensions,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        headers = {k: v for k, v in request.headers.items() if k != "transfer-encoding"}
        return await self.post(
            request.method,
            str(request.url),
            headers,
            content,
            request.extensions.get("timeout", {}),
            request,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def __del__(self) -> None:
        # A client dropped without aclose() (httpx's own is then silent): close the
        # pooled sockets now, so aiohttp does not log the session as leaked.
        session = self._session
        if session is None or session.closed:
            return
        with contextlib.suppress(Exception):
            connector = session.connector
            if connector is not None:
                connector._close()
            session._connector = None


class AiohttpClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose own transport is ``AiohttpTransport``; the
    proxies the environment names keep httpx's transports (``_mounts``), which a
    client given ``transport=`` would not read at all."""

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: str | tuple[str, str] | tuple[str, str, str] | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(),  # noqa: B008 (httpx's own default)
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        if not isinstance(verify, ssl.SSLContext):
            verify = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        return AiohttpTransport(verify=verify, limits=limits)

    @property
    def lean_transport(self) -> AiohttpTransport | None:
        """The transport to call straight, when no proxy mount may apply."""
        transport = self._transport
        if self._mounts or not isinstance(transport, AiohttpTransport):
            return None
        return transport
