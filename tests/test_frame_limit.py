"""The SSE frame-size limit (``max_frame_bytes``) does not depend on the split.

The definition (provider_impl/sse.py): a frame is the lines of one event,
between blank lines; its size is the sum of the byte lengths of all its lines
(data, other fields and ``:`` comments), line ends not counted. ``StreamError``
is raised as soon as the pending frame (its completed lines plus the incomplete
line still buffered) is larger than the limit; the events of the frames before
it are delivered first. So one body gives one outcome, the events and the error
(type and message) if any, whether it arrives in one read, byte by byte or in
any other split.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import drain, end, feed

from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider, decode_stream
from provider_impl.dialects import DIALECTS
from provider_impl.errors import LlmError, StreamError
from provider_impl.events import Connected, Done, TextDelta
from provider_impl.sse import DEFAULT_MAX_FRAME_BYTES, ServerSentEvent, SSEDecoder
from provider_impl.stream import StreamParser

PROPS = settings(
    derandomize=True,  # the same inputs on every run
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=list(HealthCheck),
)

BOM = b"\xef\xbb\xbf"
_PRE = b'data: {"choices":[{"index":0,"delta":{"content":"'
_POST = b'"}}]}'
DONE = b"data: [DONE]"

Outcome = tuple[list[Any], tuple[str, str] | None]


def content_line(size: int, fill: bytes = b"x") -> bytes:
    """A ``data:`` line of an OpenAI content chunk, ``size`` bytes long (or the shortest)."""
    n = max(0, size - len(_PRE) - len(_POST))
    return _PRE + fill * n + _POST


def text_frame(text: str) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


# ----------------------------------------------------------------- drivers


def sse_outcome(pieces: Iterable[bytes], limit: int, *, check_memory: bool = True) -> Outcome:
    """The decoder fed ``pieces``: its events, and the error it raised (if any)."""
    dec = SSEDecoder(limit)
    events: list[ServerSentEvent] = []
    try:
        for piece in pieces:
            events.extend(feed(dec, piece))
            if check_memory:  # never more held than the limit (the BOM aside)
                assert len(dec._buf) + dec._data_size <= limit + len(BOM)
        events.extend(end(dec))
    except StreamError as err:
        return events, (type(err).__name__, str(err))
    return events, None


def parser_outcome(pieces: Iterable[bytes], limit: int, provider: str = "openai") -> Outcome:
    """``StreamParser`` driven as ``decode_stream`` and ``stream()`` drive it."""
    parser = StreamParser(DIALECTS[provider], limit)
    events: list[Any] = []
    try:
        for piece in [*(p for p in pieces if p), b""]:  # b"": the end of the body
            parser.receive_data(piece)
            while batch := parser.next_events():
                events += batch
            if parser.done:
                break
    except LlmError as err:
        return [e.to_dict() for e in events], (type(err).__name__, str(err))
    return [e.to_dict() for e in events], None


def decode_outcome(pieces: Sequence[bytes] | bytes, provider: str = "openai") -> Outcome:
    events: list[Any] = []
    try:
        for ev in decode_stream(pieces, provider):
            events.append(ev)
    except LlmError as err:
        return events, (type(err).__name__, str(err))
    return events, None


def byte_by_byte(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def cut(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(min(c, len(body)) for c in cuts), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


# ------------------------------------------------- a reference for the limit


def _lines(body: bytes) -> Iterator[tuple[bytes, int]]:
    """The WHATWG lines of a whole body: (line, offset just after its line end).
    The unterminated last line (possibly empty) comes last with offset len(body)."""
    start = i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c in b"\r\n":
            end = i + 2 if body[i : i + 2] == b"\r\n" else i + 1
            yield body[start:i], end
            start = i = end
        else:
            i += 1
    yield body[start:], n


def reference(body: bytes, limit: int) -> Outcome:
    """The outcome by the definition, from the whole body: the first frame whose
    lines add up to more than ``limit`` bytes fails; the events before it stand."""
    offset = len(BOM) if body.startswith(BOM) else 0
    frame_start, size = offset, 0
    for line, after in _lines(body[offset:]):
        if not line:
            frame_start, size = offset + after, 0
            continue
        size += len(line)
        if size > limit:
            error = f"an SSE frame exceeded the {limit}-byte limit; refusing to buffer more"
            events, _ = sse_outcome([body[:frame_start]], 1 << 40, check_memory=False)
            return events, ("StreamError", error)
    return sse_outcome([body], 1 << 40, check_memory=False)


# ------------------------------------------------------------- random bodies


@st.composite
def bodies(draw: st.DrawFn, limit: int) -> bytes:
    """Small frames, frames near the limit, comment lines, other fields, CR/LF/CRLF."""
    eols = st.sampled_from([b"\n", b"\r", b"\r\n"])
    near = st.integers(limit - 3, limit + 3)
    sizes = st.one_of(st.integers(0, 80), near, st.integers(limit + 4, 2 * limit + 64))
    parts: list[bytes] = [BOM] if draw(st.integers(0, 9)) == 0 else []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 9))
        eol = draw(eols)
        if kind <= 2:  # a content frame, small, about the limit, or big
            parts.append(content_line(draw(sizes)) + eol + draw(eols))
        elif kind == 3:  # one frame of two data lines (JSON across them)
            first, second = draw(sizes), draw(sizes)
            line = content_line(first + second)
            parts.append(line[:17] + eol + b"data: " + line[17:] + draw(eols) + draw(eols))
        elif kind == 4:  # a comment line: part of the frame that follows it
            parts.append(b": " + b"c" * max(0, draw(sizes) - 2) + eol)
        elif kind == 5:  # a keep-alive
            parts.append(b": ping" + eol + draw(eols))
        elif kind == 6:  # other fields of the next frame
            parts.append(draw(st.sampled_from([b"event: message", b"id: 7", b"retry: 10"])) + eol)
        elif kind == 7:
            parts.append(eol)  # a stray blank line
        elif kind == 8:  # an event: error frame, with or without data
            data = draw(st.sampled_from([b"", b'data: {"error": {"message": "boom"}}' + eol]))
            parts.append(b"event: error" + eol + data + draw(eols))
        else:
            parts.append(DONE + eol + draw(eols))
    body = b"".join(parts)
    if draw(st.booleans()):  # sometimes an unterminated end
        body = body.rstrip(b"\r\n")
    return body


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, bytes, list[int]]:
    limit = draw(st.integers(16, 4096))
    body = draw(bodies(limit))
    cuts = draw(st.lists(st.integers(0, max(len(body), 1)), max_size=12))
    return limit, body, cuts


def splits(body: bytes, cuts: list[int]) -> Iterator[list[bytes]]:
    yield [body]
    yield byte_by_byte(body)
    yield cut(body, cuts)
    yield [body[i : i + 7] for i in range(0, len(body), 7)]


@PROPS
@given(cases())
def test_the_decoder_outcome_is_the_same_for_every_split(
    case: tuple[int, bytes, list[int]],
) -> None:
    limit, body, cuts = case
    expected = reference(body, limit)
    for pieces in splits(body, cuts):
        assert sse_outcome(pieces, limit) == expected, (limit, len(pieces))


@PROPS
@given(cases())
def test_the_parser_outcome_is_the_same_for_every_split(
    case: tuple[int, bytes, list[int]],
) -> None:
    """Events before the oversized frame, then the error: whole, byte by byte, random."""
    limit, body, cuts = case
    expected = parser_outcome([body], limit)
    for pieces in splits(body, cuts):
        assert parser_outcome(pieces, limit) == expected, (limit, len(pieces))


@PROPS
@given(limit=st.integers(16, 4096), data=st.data())
def test_a_body_read_whole_in_slices_is_the_same(limit: int, data: st.DataObject) -> None:
    """More than 64 KiB in one read: StreamParser slices it; the same outcome."""
    frames = [content_line(data.draw(st.integers(0, limit + 3))) + b"\n\n" for _ in range(40)]
    body = b"".join(frames) * (70_000 // max(1, sum(map(len, frames))) + 1)
    assert len(body) > 64 * 1024
    expected = parser_outcome([body], limit)
    assert parser_outcome([body[i : i + 4096] for i in range(0, len(body), 4096)], limit) == (
        expected
    )


# ------------------------------------------------------- the reproduced cases


def test_two_66_byte_frames_with_limit_100_in_any_split() -> None:
    """Found in review: the previous frame's size was counted before its blank
    line had dispatched it, so three pieces gave StreamError where one read gave
    two events."""
    frame = b"data: " + b"a" * 58 + b"\n\n"
    assert len(frame) == 66
    body = frame * 2
    events, err = sse_outcome([body], 100)
    assert err is None and [e.data for e in events] == ["a" * 58] * 2
    for i, j in itertools.combinations(range(1, len(body)), 2):
        assert sse_outcome([body[:i], body[i:j], body[j:]], 100) == (events, None), (i, j)
    assert sse_outcome(byte_by_byte(body), 100) == (events, None)


def test_two_9_mib_frames_with_the_default_limit_in_one_read_or_three() -> None:
    text = "y" * (9 << 20)
    body = text_frame(text) * 2 + DONE + b"\n\n"
    third = len(body) // 3
    whole = decode_outcome(body)
    assert whole[1] is None and isinstance(whole[0][-1], Done)
    assert "".join(e.text for e in whole[0] if isinstance(e, TextDelta)) == text * 2
    assert decode_outcome([body[:third], body[third : 2 * third], body[2 * third :]]) == whole


def test_a_frame_over_the_default_limit_is_refused_in_one_read_or_three() -> None:
    body = text_frame("hello") + text_frame("z" * DEFAULT_MAX_FRAME_BYTES) + DONE + b"\n\n"
    third = len(body) // 3
    for pieces in ([body], [body[:third], body[third : 2 * third], body[2 * third :]]):
        events, err = decode_outcome(pieces)
        assert err == (
            "StreamError",
            f"an SSE frame exceeded the {DEFAULT_MAX_FRAME_BYTES}-byte limit; "
            "refusing to buffer more",
        )
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["hello"]


@pytest.mark.parametrize("comment", [60, 99, 100, 101, 300])
def test_a_long_comment_line_counts_whatever_the_split(comment: int) -> None:
    """Found in review: a comment line counted only when it came in pieces."""
    body = b":" + b"c" * (comment - 1) + b"\ndata: x\n\n"
    expected = reference(body, 100)
    frame = comment + len(b"data: x")  # the comment is a line of the frame
    assert (expected[1] is None) == (frame <= 100)
    assert len(expected[0]) == (1 if frame <= 100 else 0)
    for pieces in ([body], byte_by_byte(body), [body[:50], body[50:]]):
        assert sse_outcome(pieces, 100) == expected


def test_a_comment_between_frames_starts_the_next_frame() -> None:
    """A comment after a blank line belongs to the next frame (the lines of one event)."""
    frame = b"data: " + b"d" * 50 + b"\n\n"  # a 56-byte frame
    assert sse_outcome([frame + b": " + b"c" * 38 + b"\n" + frame], 100)[1] is None  # 40 + 56
    events, err = sse_outcome([frame + b": " + b"c" * 48 + b"\n" + frame], 100)  # 50 + 56
    assert err is not None and len(events) == 1


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_the_limit_is_exact_and_line_ends_do_not_count(eol: bytes) -> None:
    limit = 100
    for size, ok in ((limit, True), (limit + 1, False)):
        body = b"event: x" + eol + b"data: " + b"q" * (size - 8 - 6) + eol + eol
        for pieces in ([body], byte_by_byte(body)):
            events, err = sse_outcome(pieces, limit)
            assert (err is None) is ok
            assert len(events) == (1 if ok else 0)


def test_a_good_frame_then_an_oversized_one_gives_the_text_first() -> None:
    """Found in review: in one read, the good frame's text was lost to the error."""
    body = text_frame("hello") + b"data: " + b"z" * 500 + b"\n\n"
    limit = 100
    expected = parser_outcome([text_frame("hello")], limit)[0]
    assert expected and expected[-1] == TextDelta(0, "hello").to_dict()
    for pieces in ([body], [text_frame("hello"), body[len(text_frame("hello")) :]]):
        events, err = parser_outcome(pieces, limit)
        assert events == expected
        assert err is not None and err[0] == "StreamError" and "100-byte limit" in err[1]
    assert parser_outcome(byte_by_byte(body), limit) == (expected, err)


def test_decoder_returns_the_events_first_and_raises_on_the_next_call() -> None:
    dec = SSEDecoder(100)
    assert [e.data for e in feed(dec, b"data: a\n\ndata: " + b"z" * 200)] == ["a"]
    with pytest.raises(StreamError) as first:
        feed(dec, b"more")
    with pytest.raises(StreamError) as second:
        end(dec)
    assert first.value is second.value
    # Nothing of the refused frame is kept.
    assert len(dec._buf) == 0 and dec._data_size == 0


@pytest.mark.parametrize("end", [b"\n\n", b""], ids=["terminated", "unterminated"])
def test_done_before_an_oversized_frame_in_the_same_read_is_a_clean_end(end: bytes) -> None:
    """Byte by byte, the caller stops at Done and never reads the big frame; one
    read must give the same, and the decoder holds nothing of the big frame."""
    body = text_frame("hi") + DONE + b"\n\n" + b"data: " + b"z" * 500 + end
    whole = parser_outcome([body], 100)
    assert whole[1] is None and whole[0][-1] == Done().to_dict()
    assert parser_outcome(byte_by_byte(body), 100) == whole
    parser = StreamParser(DIALECTS["openai"], 100)
    drain(parser, body)
    assert parser.done
    assert len(parser._sse._buf) + parser._sse._data_size <= 100


def test_the_providers_stream_delivers_the_text_before_the_error() -> None:
    body = text_frame("hello") + b"data: " + b"z" * 500 + b"\n\n"

    class Pieces(httpx.SyncByteStream):
        def __init__(self, pieces: list[bytes]) -> None:
            self._pieces = pieces

        def __iter__(self) -> Iterator[bytes]:
            yield from self._pieces

    for pieces in ([body], [body[:30], body[30:90], body[90:]]):

        def handler(request: httpx.Request, p: list[bytes] = pieces) -> httpx.Response:
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=Pieces(p)
            )

        provider = OpenAiCompatibleProvider.openai(
            api_key="test-key",
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
            max_frame_bytes=100,
            max_retries=0,
        )
        events: list[Any] = []
        request = CompletionRequest(messages=[Message(role="user", content="Hi.")])
        with pytest.raises(StreamError, match="100-byte limit"):
            for ev in provider.stream(request):
                events.append(ev)
        assert isinstance(events[0], Connected)
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["hello"]


# ---------------------------------------------------- event: error, no data


def test_the_decoder_keeps_the_whatwg_rule_unless_asked() -> None:
    body = b"event: error\n\ndata: x\n\n"
    assert [(e.event, e.data) for e in feed(SSEDecoder(), body)] == [("message", "x")]
    dec = SSEDecoder(error_without_data=True)
    assert feed(dec, body) == [ServerSentEvent("", "error"), ServerSentEvent("x")]
    # Only an error frame: other data-less frames are still not dispatched.
    assert feed(SSEDecoder(error_without_data=True), b"event: ping\n\n: c\n\n") == []


@pytest.mark.parametrize(
    "tail",
    [b"event: error\n\n", b"event: error\n", b"event: error", b"event: error\r\n\r\n"],
    ids=["blank-line", "no-blank-line", "no-line-end", "crlf"],
)
@pytest.mark.parametrize("provider", sorted(DIALECTS))
def test_event_error_without_data_raises_a_typed_error(provider: str, tail: bytes) -> None:
    body = text_frame("partial") + tail
    for pieces in ([body], byte_by_byte(body)):
        events, _ = decode_outcome(pieces, provider)
        with pytest.raises(LlmError) as info:
            for _ev in decode_stream(pieces, provider):
                pass
        err = info.value
        assert isinstance(err, StreamError)
        assert err.provider == provider
        assert "error" in str(err)
        assert not any(isinstance(e, Done) for e in events)
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["partial"]


def test_event_error_without_data_after_done_is_ignored() -> None:
    events, err = decode_outcome(text_frame("ok") + DONE + b"\n\nevent: error\n\n")
    assert err is None and isinstance(events[-1], Done)
