"""A sans-I/O Server-Sent Events decoder: bytes in, ``ServerSentEvent`` out.

Follows the WHATWG event-stream rules: lines end in CR, LF or CRLF (a CRLF may
be split across reads), ``:`` lines are comments, ``data:`` lines of one event
are joined with LF, a blank line dispatches. Lines are split on bytes before
decoding, so a UTF-8 character split across reads is reassembled, and U+2028,
U+2029 or U+0085 inside JSON never end a line.
"""

from __future__ import annotations

from dataclasses import dataclass

from provider_impl.errors import StreamError

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "RawEvent", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


#: ``(data, event, id, retry)``: a ``ServerSentEvent``'s fields, for the hot path.
RawEvent = tuple[str, str, str | None, int | None]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes in any split; it returns the events completed so far."""

    __slots__ = (
        "_at_start",
        "_buf",
        "_data",
        "_data_size",
        "_event",
        "_id",
        "_max",
        "_retry",
        "_skip_lf",
    )

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._max = max_frame_bytes
        self._buf = bytearray()
        self._skip_lf = False  # the last read ended in CR; a leading LF belongs to it
        self._at_start = True  # one leading U+FEFF (BOM) is ignored, even if split
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        lines = self._split(data)
        if not lines:
            return []
        return [ServerSentEvent(*raw) for raw in self._frames(lines)]

    def end(self) -> list[ServerSentEvent]:
        """The input is over: a last line or frame without its blank line still counts."""
        return [ServerSentEvent(*raw) for raw in self._frames(self._rest())]

    # The same two steps without the ``ServerSentEvent`` wrapper, for ``StreamParser``.

    def feed_raw(self, data: bytes) -> list[RawEvent]:
        """Like ``feed``, as ``(data, event, id, retry)`` tuples: nothing built per frame."""
        lines = self._split(data)
        return self._frames(lines) if lines else []

    def end_raw(self) -> list[RawEvent]:
        return self._frames(self._rest())

    # -- the machinery ----------------------------------------------------------

    def _split(self, data: bytes) -> list[bytes]:
        """The complete lines of what was buffered plus ``data``; the rest stays buffered."""
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf
        if self._at_start:
            buf += data
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return []  # maybe the start of a BOM: wait for more
            self._at_start = False
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]
            data = bytes(buf)
            buf.clear()
        elif b"\n" not in data:  # no line ends in this read (a small one): keep it
            buf += data
            self._check_size(len(buf))
            return []
        elif buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        # Split the bytes, not the text: only LF ends a line (CR was made LF above).
        lines = data.split(b"\n")
        rest = lines.pop()
        if rest:
            buf += rest
        self._check_size(len(buf))
        return lines

    def _rest(self) -> list[bytes]:
        """At the end of input: the unterminated last line (if any), then a blank line."""
        if not self._buf:
            return [b""]
        line = bytes(self._buf)
        self._buf.clear()
        return [line, b""]

    def _frames(self, lines: list[bytes]) -> list[RawEvent]:
        out: list[RawEvent] = []
        for raw in lines:
            if not raw:  # a blank line dispatches the frame
                if self._data:
                    parts = self._data
                    data = parts[0] if len(parts) == 1 else "\n".join(parts)
                    out.append((data, self._event or "message", self._id, self._retry))
                    self._data = []
                    self._data_size = 0
                self._event = ""
            elif raw[:5] == b"data:":  # the common line, inline
                value = raw[6:] if raw[5:6] == b" " else raw[5:]
                self._data.append(value.decode("utf-8", "replace"))
                self._data_size += len(raw)
                if self._data_size > self._max:
                    self._check_size(0)
            else:
                self._field(raw)
        return out

    def _check_size(self, pending: int) -> None:
        if pending + self._data_size > self._max:
            raise StreamError(
                f"an SSE frame exceeded the {self._max}-byte limit; refusing to buffer more"
            )

    def _field(self, raw: bytes) -> None:
        """Any line but a blank one or ``data:...`` (those ``_frames`` handles inline)."""
        if raw[0] == 0x3A:  # ":" comment, e.g. a proxy keep-alive
            return
        line = raw.decode("utf-8", "replace")
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":  # "data" without a colon: an empty data line
            self._data.append(value)
            self._data_size += len(raw)
            self._check_size(0)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
