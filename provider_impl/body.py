"""Response bodies in bounded pieces: content decoding that cannot blow up memory.

httpx inflates each network read whole, so 64 KiB of gzip can become 64 MiB
in one step. ``ContentDecoder`` inflates with zlib's ``max_length``: every
piece it returns is at most ``PIECE_BYTES``, whatever the compression ratio,
so a caller that stops at a byte cap (``max_body_bytes``) never holds more
than the cap plus one piece. Sans-I/O: raw bytes in, decoded bytes out.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from provider_impl.errors import DeserializationError

__all__ = ["ACCEPT_ENCODING", "DEFAULT_MAX_BODY_BYTES", "PIECE_BYTES", "ContentDecoder"]

#: The default cap on a whole body (a reply to ``complete()``, an error body, a
#: JSON answer to a stream), counted after decompression. Real replies are a
#: few KiB; the largest legitimate ones (long tool arguments) stay far below.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
PIECE_BYTES = 64 * 1024
#: What the client asks for: only codings it can inflate in bounded pieces.
ACCEPT_ENCODING = "gzip, deflate"
_ZLIB_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})


class _Inflate:
    """One gzip or deflate layer, inflated at most ``PIECE_BYTES`` at a time."""

    __slots__ = ("_coding", "_first", "_obj")

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._first = True  # "deflate" is zlib-wrapped or raw; the first bytes decide
        self._obj = self._new()

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self._coding == "deflate":
            return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            try:
                out = self._obj.decompress(data, PIECE_BYTES)
            except zlib.error as exc:
                if self._coding == "deflate" and self._first:
                    self._first = False
                    self._obj = self._new(raw=True)
                    continue
                raise DeserializationError(
                    f"the {self._coding}-encoded body does not decompress: {exc}"
                ) from None
            self._first = False
            if out:
                yield out
            obj = self._obj
            if obj.eof:
                rest = obj.unused_data
                if not rest or self._coding == "deflate":
                    return  # bytes after a deflate stream are ignored, as httpx does
                self._obj = self._new()  # gzip allows several members in a row
                data = rest
                continue
            data = obj.unconsumed_tail
            if not data and len(out) < PIECE_BYTES:
                return  # all input used and no output held back


class ContentDecoder:
    """Undo a response's ``Content-Encoding`` in pieces of at most ``PIECE_BYTES``.

    ``supported`` is False for a coding it does not know (e.g. ``br``, never
    asked for); the caller then lets httpx decode and still counts the bytes.
    """

    __slots__ = ("_layers", "supported")

    def __init__(self, content_encoding: str | None) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        self.supported = all(c in _ZLIB_CODINGS for c in codings)
        # Codings are listed in the order they were applied: undo the last first.
        self._layers = [_Inflate(c) for c in reversed(codings)] if self.supported else []

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``data`` (raw body bytes, any split)."""
        return self._through(0, data)

    def _through(self, depth: int, data: bytes) -> Iterator[bytes]:
        if depth == len(self._layers):
            if data:
                yield data  # identity: as read (at most one network read)
            return
        for piece in self._layers[depth].feed(data):
            yield from self._through(depth + 1, piece)
