"""Bytes in, events out: the SSE decoder and the stream adapter joined.

The one sans-I/O pipeline that the sync client, the async client and
``decode_stream`` all drive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from provider_impl.adapter import StreamAdapter
from provider_impl.dialects import ProviderDialect
from provider_impl.events import Connected, StreamEvent
from provider_impl.sse import DEFAULT_MAX_FRAME_BYTES, SSEDecoder

__all__ = ["StreamParser", "decode_stream"]


class StreamParser:
    __slots__ = ("_adapter", "_sse")

    def __init__(
        self, dialect: ProviderDialect, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        self._sse = SSEDecoder(max_frame_bytes)
        self._adapter = StreamAdapter(dialect)

    @property
    def done(self) -> bool:
        """``Done`` was emitted; the rest of the body can be ignored."""
        return self._adapter.done

    def feed(self, data: bytes) -> list[StreamEvent]:
        adapter = self._adapter
        out: list[StreamEvent] = []
        for sse in self._sse.feed(data):
            out.extend(adapter.feed_event(sse))
            if adapter.done:
                break
        return out

    def end(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        adapter = self._adapter
        if not adapter.done:
            for sse in self._sse.end():
                out.extend(adapter.feed_event(sse))
                if adapter.done:
                    break
        out.extend(adapter.end())
        return out


def decode_stream(
    data: bytes | Iterable[bytes], provider: str | ProviderDialect | object
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
