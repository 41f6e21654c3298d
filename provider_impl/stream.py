"""Bytes in, events out: the SSE decoder and the stream adapter joined.

The one sans-I/O pipeline that the sync client, the async client and
``decode_stream`` all drive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from provider_impl.adapter import StreamAdapter
from provider_impl.dialects import ProviderDialect
from provider_impl.errors import DeserializationError, LlmError, StreamError
from provider_impl.events import Connected, StreamEvent
from provider_impl.sse import DEFAULT_MAX_FRAME_BYTES, SSEDecoder

if TYPE_CHECKING:  # the provider module imports this one
    from provider_impl.provider import OpenAiCompatibleProvider

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


class StreamParser:
    """Bytes in, events out. ``feed`` and ``end`` decode eagerly and return the
    events in order; when the input is broken, the events decoded before the
    break are yielded first and the error is raised after them, so what a
    caller sees does not depend on how the bytes were split into reads."""

    __slots__ = ("_adapter", "_error", "_sse")

    def __init__(
        self, dialect: ProviderDialect, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        # An ``event: error`` frame without data is still an error, never dropped.
        self._sse = SSEDecoder(max_frame_bytes, error_without_data=True)
        self._adapter = StreamAdapter(dialect)
        self._error: LlmError | None = None

    @property
    def done(self) -> bool:
        """``Done`` was emitted; the rest of the body can be ignored."""
        return self._adapter.done

    def feed(self, data: bytes) -> Iterator[StreamEvent]:
        out, _ = self.feed_list(data)
        return self._then_raise(out)

    def feed_list(self, data: bytes) -> tuple[list[StreamEvent], LlmError | None]:
        """``feed`` for the provider's per-chunk loop: the events, and the error to
        raise after them (None while the stream is sound), with no iterator."""
        out: list[StreamEvent] = []
        if len(data) <= _SLICE:
            self._feed(data, out)
        else:  # a whole body in one read: in line-aligned slices, kinder to the caches
            for piece in _line_slices(data):
                self._feed(piece, out)
                if self._error is not None or self._adapter.done:
                    break
        return out, self._error

    def _feed(self, data: bytes, out: list[StreamEvent]) -> None:
        """Decode ``data`` into ``out``. An oversized frame (the SSE decoder's
        ``StreamError``) comes after the events of the frames before it."""
        if self._error is not None:
            return
        sse = self._sse
        lone = sse.feed_lone(data)
        if lone is not None:  # one whole frame: the SSE rules have nothing else to do
            mark = len(out)
            try:
                self._adapter.feed_data(lone, "message", out)
            except LlmError as err:
                del out[mark:]
                self._error = err
            return
        try:
            frames = sse.feed_raw(data)
        except LlmError as err:
            self._error = err
            return
        adapter = self._adapter
        feed_data = adapter.feed_data
        mark = len(out)  # where the frame being fed began: a failing frame adds nothing
        try:
            for raw in frames:
                mark = len(out)
                feed_data(raw[0], raw[1], out)
                if adapter.done:
                    return  # what follows [DONE] is never read, too big or not
        except LlmError as err:
            del out[mark:]
            self._error = err
            return
        if sse.error is not None:
            self._error = sse.error

    def end(self) -> Iterator[StreamEvent]:
        out: list[StreamEvent] = []
        adapter = self._adapter
        if self._error is None:
            mark = 0
            try:
                if not adapter.done:
                    # Whatever is left was never terminated by a blank line.
                    for raw in self._sse.end_raw():
                        mark = len(out)
                        try:
                            adapter.feed_data(raw[0], raw[1], out)
                        except DeserializationError as exc:
                            raise StreamError(
                                "the stream ended inside a frame (truncated)",
                                provider=exc.provider,
                            ) from exc
                        if adapter.done:
                            break
                mark = len(out)
                if self._sse.error is not None and not adapter.done:
                    raise self._sse.error  # an oversized frame after the events above
                out.extend(adapter.end())
            except LlmError as err:
                del out[mark:]
                self._error = err
        return self._then_raise(out)

    def _then_raise(self, events: list[StreamEvent]) -> Iterator[StreamEvent]:
        yield from events
        if self._error is not None:
            raise self._error


def decode_stream(
    data: bytes | bytearray | memoryview | Iterable[bytes],
    provider: str | ProviderDialect | OpenAiCompatibleProvider,
) -> Iterator[StreamEvent]:
    """Decode a captured SSE body into the events the live path yields.

    ``data`` is the whole body or any iterable of pieces; the events are the
    same whatever the split. ``provider`` is a name, a dialect or a provider.
    """
    from provider_impl.provider import resolve_dialect

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
        yield from parser.feed(bytes(piece))
        if parser.done:
            return
    yield from parser.end()
