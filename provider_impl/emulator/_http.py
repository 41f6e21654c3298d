"""Minimal HTTP/1.1 plumbing for the emulator, on asyncio streams (stdlib only).

Parsing is deliberately strict and small: a request line, headers, and a body
framed by ``Content-Length`` or ``Transfer-Encoding: chunked``. Anything else
is a :class:`BadRequest`, answered with 400 and a closed connection.
"""

from __future__ import annotations

import asyncio
import email.utils
import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

REASONS: dict[int, str] = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
    529: "Site Overloaded",
}


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.1 request we accept."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client closed or reset the connection while we were responding."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def keep_alive(self) -> bool:
        conn = self.header("connection").lower()
        tokens = {t.strip() for t in conn.split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 never fails
        raise BadRequest("undecodable request head") from exc
    lines = text.split("\r\n")
    request_line = lines[0]
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not method.isalpha() or not method.isupper():
        raise BadRequest("malformed method")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise BadRequest("unsupported HTTP version", 505)
        raise BadRequest("malformed request line")
    if not target or (target[0] != "/" and not target.startswith("http")):
        raise BadRequest("malformed request target")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise BadRequest("obsolete header folding")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise BadRequest("malformed header line")
        key = name.lower()
        value = value.strip()
        if key in headers:
            if key in ("content-length", "host", "authorization"):
                if headers[key] != value:
                    raise BadRequest(f"conflicting {key} headers")
                continue
            headers[key] = headers[key] + ", " + value
        else:
            headers[key] = value
    return method, target, version, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        try:
            size_line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:
            raise BadRequest("chunk size line too long") from exc
        size_text = size_line[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise BadRequest("malformed chunk size") from exc
        if size < 0:
            raise BadRequest("malformed chunk size")
        if size == 0:
            # Trailers, then the empty line.
            while True:
                line = await reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise BadRequest("request body too large", 413)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("malformed chunk terminator")


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    """Read one request; ``None`` on a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("incomplete request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("request head too large", 431) from exc
    # Tolerate stray CRLFs before a request line (RFC 9112 section 2.2).
    head = head.lstrip(b"\r\n")
    if len(head) > MAX_HEAD_BYTES:
        raise BadRequest("request head too large", 431)
    method, target, version, headers = _parse_head(head[:-4])
    te = headers.get("transfer-encoding", "").lower()
    cl = headers.get("content-length")
    if te and cl is not None:
        raise BadRequest("both Transfer-Encoding and Content-Length")
    if te and te.split(",")[-1].strip() != "chunked":
        raise BadRequest("unsupported transfer-encoding", 501)
    length = 0
    if cl is not None:
        if not cl.isdigit():
            raise BadRequest("malformed Content-Length")
        length = int(cl)
        if length > MAX_BODY_BYTES:
            raise BadRequest("request body too large", 413)
    if headers.get("expect", "").lower() == "100-continue" and (te or length):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await drain(writer)
    if te:
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(length) if length else b""
    return _build(method, target, version, headers, body)


def _build(method: str, target: str, version: str, headers: dict[str, str], body: bytes) -> Request:
    split = urlsplit(target)
    return Request(
        method=method,
        target=target,
        version=version,
        headers=headers,
        body=body,
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
    )


def http_date() -> str:
    return email.utils.formatdate(usegmt=True)


#: Sent on every emulator response, so a recording can say it came from the
#: emulator (its cassettes' provenance) rather than from a live provider.
EMULATOR_HEADER = "x-provider-impl-emulator"


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    reason = REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    lines.append(f"{EMULATOR_HEADER}: 1")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def accepts_gzip(headers: dict[str, str]) -> bool:
    """True when the client accepts gzip (an absent header accepts any coding)."""
    value = headers.get("accept-encoding")
    if value is None:
        return True
    for item in value.split(","):
        token, _, params = item.strip().partition(";")
        if token.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return True
            return True
    return False


class ChunkedBody:
    """Writes a ``Transfer-Encoding: chunked`` body, optionally gzip-encoded.

    Each :meth:`send` becomes (at least) one HTTP chunk; with gzip every piece
    is followed by a ``Z_SYNC_FLUSH`` so the stream still streams.
    """

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader,
        gzip: bool,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._compress = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
        self.finished = False

    def check_alive(self) -> None:
        if self._writer.transport.is_closing() or self._reader.at_eof():
            raise ClientGone()

    async def send(self, data: bytes) -> None:
        self.check_alive()
        if self._compress is not None:
            data = self._compress.compress(data) + self._compress.flush(zlib.Z_SYNC_FLUSH)
        if not data:
            return
        self._writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        await drain(self._writer)

    async def finish(self, tail: bytes = b"") -> None:
        """Write ``tail`` (the last frames) and the terminating chunk in one write.

        One write means a client that hangs up as soon as it sees the last frame
        (``[DONE]`` or an in-band error) cannot race the terminator.
        """
        self.check_alive()
        out = b""
        if self._compress is not None:
            tail = self._compress.compress(tail) + self._compress.flush(zlib.Z_FINISH)
        if tail:
            out = b"%x\r\n%b\r\n" % (len(tail), tail)
        self._writer.write(out + b"0\r\n\r\n")
        await drain(self._writer)
        self.finished = True


async def drain(writer: asyncio.StreamWriter) -> None:
    try:
        await writer.drain()
    except (ConnectionError, RuntimeError) as exc:
        raise ClientGone() from exc
    if writer.transport.is_closing():
        raise ClientGone()
