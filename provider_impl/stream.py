"""Bytes in, events out: the SSE decoder and the stream adapter joined.

The one sans-I/O pipeline that the sync client, the async client and
``decode_stream`` all drive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from provider_impl._outbox import Outbox
from provider_impl.adapter import StreamAdapter
from provider_impl.dialects import HasDialect, ProviderDialect, resolve_dialect
from provider_impl.errors import DeserializationError, LlmError, StreamError
from provider_impl.events import Connected, StreamEvent
from provider_impl.sse import DEFAULT_MAX_FRAME_BYTES, SSEDecoder

__all__ = ["StreamParser", "decode_stream"]

_SLICE = 64 * 1024


def _line_slices(data: bytes, size: int = _SLICE) -> Iterator[bytes]:
    """``data`` in pieces of about ``size`` bytes, each ending just after an LF.

    The SSE decoder gives the same events and the same frame-size error
    whatever the split; cutting after line ends only spares it re-buffering a
    partial line, and keeps its working set small.
    """
    start, total = 0, len(data)
    while start < total:
        cut = data.find(b"\n", start + size)
        end = total if cut < 0 else cut + 1
        yield data[start:end]
        start = end


class StreamParser(Outbox[StreamEvent]):
    """Bytes in through ``receive_data``, events out of ``next_events``: the shape
    of h11's ``receive_data`` / ``next_event``, one batch at a time.

    ``receive_data(data)`` decodes at once; ``b""`` says the body is over.
    ``next_events()`` returns the events not yet taken, ``[]`` when it needs more
    data. When the input is broken, it first returns the events decoded before
    the break, then raises the error (on every later call too), so what a
    caller sees does not depend on how the bytes were split into reads. The
    loop that drives it::

        parser.receive_data(chunk)          # b"" once the body is over
        while events := parser.next_events():
            handle(events)
    """

    __slots__ = ("_adapter", "_sse")

    def __init__(
        self, dialect: ProviderDialect, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        super().__init__()
        # An ``event: error`` frame without data is still an error, never dropped.
        self._sse = SSEDecoder(max_frame_bytes, error_without_data=True)
        self._adapter = StreamAdapter(dialect)

    @property
    def done(self) -> bool:
        """``Done`` was emitted; the rest of the body can be ignored."""
        return self._adapter.done

    def receive_data(self, data: bytes) -> None:
        """Decode the next bytes of the body; ``b""`` says the body is over."""
        if self._error is not None or self._adapter.done:
            return
        if not data:
            self._end()
        elif len(data) <= _SLICE:
            self._decode(data)
        else:  # a whole body in one read: in line-aligned slices, kinder to the caches
            for piece in _line_slices(data):
                self._decode(piece)
                if self._error is not None or self._adapter.done:
                    break

    def _decode(self, data: bytes) -> None:
        """Decode ``data`` into ``_out``; a failing frame adds nothing. An oversized
        frame (the SSE decoder's ``StreamError``) comes after the frames before it."""
        sse = self._sse
        lone = sse.lone_data(data)
        if lone is not None:  # one whole frame: the SSE line rules have nothing to do
            out = self._pending
            mark = len(out)
            try:
                self._adapter._frame(lone, "message", out)
            except LlmError as err:
                del out[mark:]
                self._error = err
            return
        sse.receive_data(data)
        adapter = self._adapter
        frame = adapter._frame
        out = self._pending
        mark = len(out)
        try:
            while frames := sse.next_events():
                for event in frames:
                    mark = len(out)
                    frame(event[0], event[1], out)
                    if adapter.done:
                        return  # what follows [DONE] is never read, too big or not
                mark = len(out)  # the frames so far stand, whatever comes next
        except LlmError as err:
            del out[mark:]
            self._error = err

    def _end(self) -> None:
        adapter = self._adapter
        out = self._pending
        mark = len(out)
        try:
            # Whatever is left was never terminated by a blank line.
            self._sse.receive_data(b"")
            while frames := self._sse.next_events():
                for event in frames:
                    mark = len(out)
                    try:
                        adapter._frame(event[0], event[1], out)
                    except DeserializationError as exc:
                        raise StreamError(
                            "the stream ended inside a frame (truncated)",
                            provider=exc.provider,
                        ) from exc
                    if adapter.done:
                        return
                mark = len(out)
            mark = len(out)
            adapter._end(out)
        except LlmError as err:
            del out[mark:]
            self._error = err


def decode_stream(
    data: bytes | bytearray | memoryview | Iterable[bytes],
    provider: str | ProviderDialect | HasDialect,
) -> Iterator[StreamEvent]:
    """Decode a captured SSE body into the events the live path yields.

    ``data`` is the whole body or any iterable of pieces; the events are the
    same whatever the split. ``provider`` is a name, a dialect or a provider.
    """
    dialect = resolve_dialect(provider)
    if isinstance(data, str):
        raise TypeError("decode_stream expects bytes or an iterable of bytes, not str")
    pieces: Iterable[bytes] = (
        (bytes(data),) if isinstance(data, (bytes, bytearray, memoryview)) else data
    )
    return _decode(pieces, dialect)


def _decode(pieces: Iterable[bytes], dialect: ProviderDialect) -> Iterator[StreamEvent]:
    parser = StreamParser(dialect)
    yield Connected()
    for piece in pieces:
        if not isinstance(piece, (bytes, bytearray, memoryview)):
            raise TypeError(f"decode_stream pieces must be bytes, got {type(piece).__name__}")
        if not piece:
            continue  # an empty piece is no read (b"" would end the body)
        parser.receive_data(bytes(piece))
        while events := parser.next_events():
            yield from events
        if parser.done:
            return
    parser.receive_data(b"")
    while events := parser.next_events():
        yield from events
