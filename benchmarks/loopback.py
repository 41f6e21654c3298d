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

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType

__all__ = ["LoopbackServer"]

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
