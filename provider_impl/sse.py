"""A sans-I/O Server-Sent Events decoder: bytes in, ``ServerSentEvent`` out.

Follows the WHATWG event-stream rules: lines end in CR, LF or CRLF (a CRLF may
be split across reads), ``:`` lines are comments, ``data:`` lines of one event
are joined with LF, a blank line dispatches. Lines are split on bytes before
decoding, so a UTF-8 character split across reads is reassembled, and U+2028,
U+2029 or U+0085 inside JSON never end a line.

The frame-size limit (``max_frame_bytes``, default 16 MiB)
----------------------------------------------------------
A frame is the lines of one event: every line after a blank line (or the start
of the stream, after a leading BOM) up to the next blank line. Its size is the
sum of the byte lengths of those lines, *every* line counted (``data:``,
``event:``, ``id:``, ``retry:``, unknown fields and ``:`` comments alike), line
ends (CR, LF, CRLF) not counted. ``StreamError`` is raised as soon as the
pending frame, i.e. its completed lines plus the incomplete line still buffered,
is larger than the limit. Since that depends only on the bytes, not on how
they were split into reads, the same input either decodes fully or fails at
the same frame with the same error, whatever the split; and the decoder never
holds more than the limit plus one read.

One way in, one way out (the shape of h11's ``receive_data`` / ``next_event``):
``receive_data(data)`` takes bytes in any split (``b""`` means the input is
over: a last frame without its blank line still counts), and ``next_events()``
returns the events completed and not yet taken, ``[]`` when it needs more
data. Nothing is lost and nothing is lazy: after an oversized frame,
``next_events()`` first returns the events completed before it, then raises
the ``StreamError`` (on every later call too).
"""

from __future__ import annotations

from typing import NamedTuple

from provider_impl._outbox import Outbox
from provider_impl.errors import StreamError

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "SSEDecoder", "ServerSentEvent", "parse_sse"]

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
# WHATWG HTML, "Interpreting an event stream": one leading U+FEFF is skipped.
_BOM = b"\xef\xbb\xbf"


class ServerSentEvent(NamedTuple):
    """One dispatched event (WHATWG: the ``data`` buffer, the event type, the last
    event ID and ``retry``). A tuple, so the decoder builds it without a call."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


_new_event = tuple.__new__  # ServerSentEvent's fields without its Python __new__


class SSEDecoder(Outbox[ServerSentEvent]):
    """Bytes in any split through ``receive_data``, events out of ``next_events``.

    ``error_without_data``: dispatch an ``event: error`` frame that has no
    ``data:`` line (as data ``""``) instead of dropping it as the WHATWG rules
    do, so that an error frame is never silently lost. ``StreamParser`` sets it.
    """

    __slots__ = (
        "_at_start",
        "_buf",
        "_data",
        "_data_size",
        "_empty_error",
        "_ended",
        "_event",
        "_id",
        "_max",
        "_retry",
        "_skip_lf",
    )

    def __init__(
        self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, *, error_without_data: bool = False
    ) -> None:
        super().__init__()  # _pending, _error: an oversized frame's StreamError
        self._max = max_frame_bytes
        self._empty_error = error_without_data
        self._buf = bytearray()  # the incomplete last line
        self._skip_lf = False  # the last read ended in CR; a leading LF belongs to it
        self._at_start = True  # one leading U+FEFF (BOM) is ignored, even if split
        self._data: list[str] = []
        self._data_size = 0  # the bytes of the pending frame's completed lines
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._ended = False

    def receive_data(self, data: bytes) -> None:
        """Take the next bytes of the stream; ``b""`` says the input is over."""
        if self._error is not None or self._ended:
            return
        if not data:
            self._ended = True
            self._pending += self._frames(self._rest())
            return
        lines = self._split(data)
        if lines:
            self._pending += self._frames(lines)
        if len(self._buf) + self._data_size > self._max and not self._at_start:
            self._overflow()  # with its incomplete last line the frame is too big

    def lone_data(self, data: bytes) -> str | None:
        """The data of ``data`` when it is exactly one whole ``data: ...`` frame (one
        line, then the blank line) and nothing is pending: the usual read of a
        stream flushed frame by frame. Otherwise None, and nothing was taken (use
        ``receive_data``). The data is what ``receive_data`` would dispatch, as a
        ``message`` event."""
        if (
            self._buf
            or self._at_start
            or self._skip_lf
            or self._data_size
            or self._data
            or self._event
            or self._pending
            or self._ended
            or self._error is not None
        ):
            return None
        end = len(data) - 2
        if (
            data[:6] != b"data: "
            or data.find(b"\n") != end
            or data[-1:] != b"\n"
            or b"\r" in data
            or end > self._max
        ):
            return None
        return data[6:end].decode("utf-8", "replace")

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
        return lines

    def _rest(self) -> list[bytes]:
        """At the end of input: the unterminated last line (if any), then a blank line."""
        if not self._buf:
            return [b""]
        line = bytes(self._buf)
        self._buf.clear()
        return [line, b""]

    def _frames(self, lines: list[bytes]) -> list[ServerSentEvent]:
        out: list[ServerSentEvent] = []
        size = self._data_size
        limit = self._max
        parts = self._data
        new, cls = _new_event, ServerSentEvent  # locals: one frame each
        for raw in lines:
            if not raw:  # a blank line dispatches the frame
                if parts:
                    data = parts[0] if len(parts) == 1 else "\n".join(parts)
                    event = self._event or "message"
                    out.append(new(cls, (data, event, self._id, self._retry)))
                    parts = self._data = []
                elif self._event == "error" and self._empty_error:
                    out.append(ServerSentEvent("", "error", self._id, self._retry))
                self._event = ""
                size = 0
                continue
            size += len(raw)
            if size > limit:
                self._overflow()
                return out
            if raw[:5] == b"data:":  # the common line, inline
                value = raw[6:] if raw[5:6] == b" " else raw[5:]
                parts.append(value.decode("utf-8", "replace"))
            else:
                self._field(raw)
        self._data_size = size
        return out

    def _overflow(self) -> None:
        """The pending frame passed the limit: remember the error, drop the frame."""
        self._error = StreamError(
            f"an SSE frame exceeded the {self._max}-byte limit; refusing to buffer more"
        )
        self._buf = bytearray()
        self._data = []
        self._data_size = 0

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
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:  # WHATWG: an id with U+0000 is ignored
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():  # WHATWG: digits only
            self._retry = int(value)


def parse_sse(body: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> list[ServerSentEvent]:
    """Every event of a whole captured body (a last frame without its blank line
    counts); an oversized frame raises ``StreamError``."""
    decoder = SSEDecoder(max_frame_bytes)
    decoder.receive_data(body)
    decoder.receive_data(b"")
    events: list[ServerSentEvent] = []
    while batch := decoder.next_events():
        events += batch
    return events
