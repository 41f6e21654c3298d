"""Reading a streamed body off h11 (``transport.H11Body`` / ``AsyncH11Body``).

A raw loopback socket server writes the exact bytes and pauses each test needs:
several HTTP chunks in one write come out of one read, joined; a chunk that has
arrived is handed over while the server still holds the next one back; a body
cut inside a chunk, or a malformed chunk header, is a ``StreamError`` after the
events already delivered; a body read to its end leaves the connection in the
pool. Sync and async (``async_transport="httpx"``) alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import httpx
import pytest
from wire import DONE, chunk, collected_text, sse

from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider, StreamError
from provider_impl.events import StreamEvent, TextDelta
from provider_impl.transport import AsyncH11Body, H11Body, install_deadlines

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
WAIT = 5.0  # the longest a server script waits for the client


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def frames(*texts: str) -> list[bytes]:
    return [sse(chunk({"content": t})) for t in texts]


class RawServer:
    """Serves every request on a connection with ``script(conn)``; counts connections."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(WAIT)
        self.port = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(WAIT)
        with conn, conn.makefile("rb") as reader:
            while reader.readline():  # a request line (b"": the client has gone)
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                reader.read(length)
                self.script(conn)

    def close(self) -> None:
        self._sock.close()
        for t in self._threads:
            t.join(WAIT)


@contextlib.contextmanager
def serving(script: Callable[[socket.socket], None]) -> Iterator[RawServer]:
    server = RawServer(script)
    try:
        yield server
    finally:
        server.close()


def provider(server: RawServer) -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider.openai(
        api_key="sk-test-h11", base_url=server.base_url, max_retries=0, async_transport="httpx"
    )


def collect(
    p: OpenAiCompatibleProvider, mode: str, events: list[StreamEvent] | None = None
) -> tuple[list[StreamEvent], Exception | None]:
    """Every event the stream delivered (appended one by one, as they come) and the
    error it ended in."""
    request = CompletionRequest(messages=[Message.user("hi")])
    if events is None:
        events = []

    async def consume() -> None:
        try:
            async for event in p.astream(request):
                events.append(event)
        finally:
            await p.aclose()

    try:
        if mode == "sync":
            with p:
                for event in p.stream(request):
                    events.append(event)
        else:
            asyncio.run(consume())
    except Exception as exc:
        return events, exc
    return events, None


MODES = ("sync", "async-h11")


def test_the_chunks_of_one_socket_read_come_out_of_one_read_joined() -> None:
    parts = [*frames("a", "b", "c"), DONE.encode()]

    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD + b"".join(http_chunk(p) for p in parts) + b"0\r\n\r\n")

    with serving(script) as server, httpx.Client() as client:
        install_deadlines(client)
        for _ in range(2):
            with client.stream("POST", server.base_url + "/chat/completions", content=b"{}") as r:
                body = H11Body.of(r)
                assert body is not None
                assert body.read() == b"".join(parts)
                assert body.read() == b""
                assert body.read() == b""
        assert server.connections == 1  # read to its end: the connection was reused


def test_a_body_not_on_httpcores_http11_is_left_to_httpx() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"data: x\n\n"]))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with client, client.stream("POST", "http://test/v1/chat/completions") as r:
        assert H11Body.of(r) is None


async def test_the_async_reader_gives_what_has_arrived_without_awaiting() -> None:
    parts = [*frames("a", "b"), DONE.encode()]

    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD + b"".join(http_chunk(p) for p in parts) + b"0\r\n\r\n")

    with serving(script) as server:
        async with httpx.AsyncClient() as client:
            url = server.base_url + "/chat/completions"
            async with client.stream("POST", url, content=b"{}") as r:
                body = AsyncH11Body.of(r)
                assert body is not None
                got = body.ready()
                if got is None:  # the head came in a read of its own: await the body
                    got = await body.read()
                assert got == b"".join(parts)
                assert body.ready() == b""
                assert await body.read() == b""


@pytest.mark.parametrize("mode", MODES)
def test_an_arrived_chunk_is_delivered_while_the_next_is_held_back(mode: str) -> None:
    delivered = threading.Event()
    in_time: list[bool] = []
    first, second = frames("first", "second")

    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD + http_chunk(first))
        # The rest goes once the client has the first event: had the reader waited
        # for more bytes before handing it over, this wait would run out instead.
        in_time.append(delivered.wait(WAIT))
        conn.sendall(http_chunk(second) + http_chunk(DONE.encode()) + b"0\r\n\r\n")

    class Flagging(list[StreamEvent]):
        def append(self, event: StreamEvent) -> None:
            super().append(event)
            if isinstance(event, TextDelta):
                delivered.set()

        def extend(self, events: Iterable[StreamEvent]) -> None:
            for event in events:
                self.append(event)

    with serving(script) as server:
        events, err = collect(provider(server), mode, Flagging())
    assert err is None
    assert in_time == [True]
    assert collected_text(events) == "firstsecond"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"40\r\ndata: {", id="cut-inside-a-chunk"),
        pytest.param(b"zz\r\n", id="malformed-chunk-header"),
    ],
)
def test_a_broken_body_is_a_stream_error_after_the_delivered_events(mode: str, tail: bytes) -> None:
    good = frames("one", "two")

    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD + b"".join(http_chunk(p) for p in good) + tail)
        conn.shutdown(socket.SHUT_WR)

    with serving(script) as server:
        events, err = collect(provider(server), mode)
    assert isinstance(err, StreamError), err
    assert isinstance(err.__cause__, httpx.RemoteProtocolError)
    assert collected_text(events) == "onetwo"


@pytest.mark.parametrize("mode", MODES)
def test_a_broken_bodys_cause_carries_its_request_redacted(mode: str) -> None:
    """httpx's own body iterators put the request on the errors they raise
    (``exc.request``); the h11 reader's errors carry it too, the key scrubbed."""

    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD + http_chunk(frames("one")[0]) + b"40\r\ndata: {")
        conn.shutdown(socket.SHUT_WR)

    with serving(script) as server:
        _, err = collect(provider(server), mode)
    assert isinstance(err, StreamError), err
    cause = err.__cause__
    assert isinstance(cause, httpx.RemoteProtocolError)
    assert str(cause.request.url) == server.base_url + "/chat/completions"
    assert cause.request.headers["authorization"] == "[redacted]"


# Each a response (and whether the server then shuts its side): every framing
# h11 knows, the ways a connection ends after a body, and bodies cut short.
FRAMINGS = {
    "content-length": (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", False),
    "chunked-with-trailers": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\nhe\r\n3\r\nllo\r\n0\r\nx-trailer: 1\r\n\r\n",
        False,
    ),
    "connection-close": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
        True,
    ),
    "http-1.0-close-delimited": (b"HTTP/1.0 200 OK\r\n\r\nhello", True),
    "http-1.1-close-delimited": (b"HTTP/1.1 200 OK\r\n\r\nhello", True),
    "content-length-cut-short": (b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nhello", True),
    "chunked-cut-short": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        True,
    ),
    "bytes-after-the-body": (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloEXTRA", False),
}


def _outcome(got: bytes | Exception, request: httpx.Request) -> object:
    if isinstance(got, httpx.RequestError):
        assert got.request is request  # as httpx's iterators set it
    return got if isinstance(got, bytes) else f"{type(got).__name__}: {got}"


def _pool_state(client: httpx.Client | httpx.AsyncClient) -> tuple[int, list[str]]:
    """Requests the pool still holds, and its connections' states (no ports)."""
    pool = getattr(client, "_transport")._pool  # noqa: B009
    return len(pool._requests), [c.info().split(", ", 1)[1] for c in pool._connections]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_the_sync_reader_ends_as_httpxs_own_iterator(framing: str) -> None:
    """Two requests each way: the same bytes or error, and the same pool after each
    (the connection kept, or closed) as reading through httpx's ``iter_raw``."""
    response, shut = FRAMINGS[framing]

    def script(conn: socket.socket) -> None:
        conn.sendall(response)
        if shut:
            conn.shutdown(socket.SHUT_WR)

    def run(ours: bool) -> list[object]:
        seen: list[object] = []
        with serving(script) as server, httpx.Client() as client:
            install_deadlines(client)
            for _ in range(2):
                got: bytes | Exception = b""
                request = client.build_request("POST", server.base_url, content=b"{}")
                try:
                    r = client.send(request, stream=True)
                    try:
                        body = H11Body.of(r) if ours else None
                        if body is not None:
                            got = b"".join(iter(body.read, b""))
                        else:
                            got = b"".join(r.iter_raw())
                    finally:
                        r.close()
                except httpx.HTTPError as exc:
                    got = exc
                seen += [_outcome(got, request), _pool_state(client)]
            seen.append(server.connections)
        return seen

    assert run(ours=True) == run(ours=False)


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_the_async_reader_ends_as_httpxs_own_iterator(framing: str) -> None:
    response, shut = FRAMINGS[framing]

    def script(conn: socket.socket) -> None:
        conn.sendall(response)
        if shut:
            conn.shutdown(socket.SHUT_WR)

    async def run(ours: bool) -> list[object]:
        seen: list[object] = []
        with serving(script) as server:
            async with httpx.AsyncClient() as client:
                for _ in range(2):
                    got: bytes | Exception = b""
                    request = client.build_request("POST", server.base_url, content=b"{}")
                    try:
                        r = await client.send(request, stream=True)
                        try:
                            body = AsyncH11Body.of(r) if ours else None
                            if body is not None:
                                data = b""
                                while piece := body.ready() or await body.read():
                                    data += piece
                                got = data
                            else:
                                got = b"".join([piece async for piece in r.aiter_raw()])
                        finally:
                            await r.aclose()
                    except httpx.HTTPError as exc:
                        got = exc
                    seen += [_outcome(got, request), _pool_state(client)]
                seen.append(server.connections)
        return seen

    assert await run(ours=True) == await run(ours=False)


async def test_a_call_cancelled_in_a_socket_read_leaves_the_pool_clean() -> None:
    """Cancelled while the h11 reader awaits the socket (httpcore's own iterator
    closes the connection right there; here the pump's close of the response does):
    the pool holds no request and no half-read connection, and the next call works."""
    release = threading.Event()
    first, second = frames("first", "second")

    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD + http_chunk(first))
        release.wait(WAIT)
        conn.sendall(http_chunk(second) + http_chunk(DONE.encode()) + b"0\r\n\r\n")

    with serving(script) as server:
        p = provider(server)
        delivered = asyncio.Event()

        async def consume() -> None:
            async for event in p.astream(CompletionRequest(messages=[Message.user("hi")])):
                if isinstance(event, TextDelta):
                    delivered.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(delivered.wait(), WAIT)
        await asyncio.sleep(0.05)  # into the read that waits for the next chunk
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        client = getattr(p, "_async_client")()  # noqa: B009
        assert _pool_state(client) == (0, [])
        release.set()
        try:
            events = [e async for e in p.astream(CompletionRequest(messages=[Message.user("x")]))]
        finally:
            await p.aclose()
        assert collected_text(events) == "firstsecond"
        assert server.connections == 2


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_stalled_body_is_the_requests_read_timeout(asynchronous: bool) -> None:
    """No call deadline here (a plain client): what bounds the reader's socket read
    is the request's own read timeout, as in httpcore's iterator."""
    release = threading.Event()
    first = frames("first")[0]

    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD + http_chunk(first))
        release.wait(WAIT)

    timeout = httpx.Timeout(WAIT, read=0.2)

    def sync(url: str) -> tuple[bytes, httpx.ReadTimeout, tuple[int, list[str]]]:
        with httpx.Client(timeout=timeout) as client:
            r = client.send(client.build_request("POST", url, content=b"{}"), stream=True)
            body = H11Body.of(r)
            assert body is not None
            got = body.read()
            with pytest.raises(httpx.ReadTimeout) as info:
                body.read()
            return got, info.value, _pool_state(client)

    async def asynch(url: str) -> tuple[bytes, httpx.ReadTimeout, tuple[int, list[str]]]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            request = client.build_request("POST", url, content=b"{}")
            r = await client.send(request, stream=True)
            body = AsyncH11Body.of(r)
            assert body is not None
            got = body.ready() or await body.read()
            with pytest.raises(httpx.ReadTimeout) as info:
                await body.read()
            return got, info.value, _pool_state(client)

    with serving(script) as server:
        t0 = time.monotonic()
        try:
            got, err, pool = (
                asyncio.run(asynch(server.base_url)) if asynchronous else sync(server.base_url)
            )
        finally:
            release.set()
        took = time.monotonic() - t0
    assert got == first
    assert 0.2 <= took < WAIT - 1  # the read timeout, not the server's release
    assert str(err.request.url) == server.base_url
    assert pool == (0, [])  # the failed read closed the response and its connection
