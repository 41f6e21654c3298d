"""A tiny loopback HTTP/1.1 server (stdlib sockets and threads) for the benchmarks.

It serves registered SSE bodies with ``Transfer-Encoding: chunked``, one HTTP
chunk per SSE frame, as the real providers flush them, so a client sees the
same bytes and framing it would see from the network. Keep-alive is honoured.

Two modes, chosen by the request path ``/<name>/v1/chat/completions``:

* a registered body: sent as fast as the socket takes it (pre-encoded once);
* ``trickle``: the headers, then a pause of ``trickle_wait`` seconds, then the
  first frame, whose send time (``time.perf_counter()``, this process) is
  appended to ``first_frame_sent``; then the other frames ``trickle_gap``
  apart. That gives an honest arrival-to-event latency measurement.

Only 127.0.0.1; bounded: the server stops with ``close()`` or the ``with``
block, and every socket has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["BodyServer", "LoopbackServer"]

_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)


def _chunk(frame: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(frame), frame)


class LoopbackServer:
    def __init__(
        self,
        *,
        trickle_frames: Sequence[bytes] = (),
        trickle_wait: float = 0.2,
        trickle_gap: float = 0.02,
        timeout: float = 30.0,
    ) -> None:
        self._bodies: dict[str, bytes] = {}
        self._trickle = [_chunk(f) for f in trickle_frames]
        self.trickle_wait = trickle_wait
        self.trickle_gap = trickle_gap
        self.first_frame_sent: list[float] = []
        self._timeout = timeout
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}/v1"

    def register(self, name: str, frames: Sequence[bytes]) -> None:
        """Serve ``frames`` at ``/<name>/v1/chat/completions`` (encoded once, now)."""
        self._bodies[name] = _HEAD + b"".join(_chunk(f) for f in frames) + b"0\r\n\r\n"

    # -- serving --------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(self._timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].decode("ascii", "replace")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[length:]
                body_name = path.strip("/").split("/", 1)[0]
                if body_name == "trickle":
                    self._send_trickle(conn)
                elif body_name in self._bodies:
                    conn.sendall(self._bodies[body_name])
                else:
                    msg = b'{"error":"no such body"}'
                    conn.sendall(
                        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(msg), msg)
                    )
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _send_trickle(self, conn: socket.socket) -> None:
        conn.sendall(_HEAD)
        time.sleep(self.trickle_wait)
        for i, chunk in enumerate(self._trickle):
            if i == 0:
                self.first_frame_sent.append(time.perf_counter())
            else:
                time.sleep(self.trickle_gap)
            conn.sendall(chunk)
        conn.sendall(b"0\r\n\r\n")

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        with contextlib.suppress(OSError):
            self._sock.close()
        self._acceptor.join(timeout=2)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        for t in threads:
            t.join(timeout=2)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- a server in another process, for the transport rows and 1,000 connections --------


class _BodyProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive; ``POST /<kind>/<n>/v1/chat/completions`` gets the
    generated body ``bodies.iter_frames(kind, n)``, one HTTP chunk per frame."""

    def __init__(self, cache: dict[bytes, bytes]) -> None:
        self._cache = cache
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while True:
            head, sep, rest = self._buf.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(rest) < length:
                return
            self._buf = rest[length:]
            path = lines[0].split(b" ")[1]
            assert self._transport is not None
            self._transport.write(self._body(path))

    def _body(self, path: bytes) -> bytes:
        body = self._cache.get(path)
        if body is None:
            from benchmarks import bodies  # the server process imports it on first use

            kind, n = path.strip(b"/").split(b"/")[:2]
            frames = bodies.iter_frames(kind.decode(), int(n))
            body = self._cache[path] = _HEAD + b"".join(_chunk(f) for f in frames) + b"0\r\n\r\n"
        return body


async def _serve(port: int, ready: Callable[[int], None]) -> None:
    cache: dict[bytes, bytes] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _BodyProtocol(cache), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


class BodyServer:
    """``_BodyProtocol`` in a child process (its CPU is not the client's): bodies by
    URL, a listen backlog of 4,096, one event loop and no thread per connection."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loopback", "serve"],
            stdout=subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parent.parent),
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"the body server did not start: {line!r}")
        self.port = int(line)

    def base_url(self, kind: str, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}/{n}/v1"

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> BodyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _main(argv: list[str]) -> int:
    if argv[:1] != ["serve"]:
        print("usage: python -m benchmarks.loopback serve [PORT]", file=sys.stderr)
        return 2
    port = int(argv[1]) if len(argv) > 1 else 0

    def ready(bound: int) -> None:
        print(bound, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(port, ready))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
