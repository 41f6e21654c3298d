"""The sans-I/O SSE decoder (provider_impl/sse.py) against the WHATWG rules
(the HTML standard, "Server-sent events")."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest
from wire import end, feed

from provider_impl.errors import LlmError, StreamError
from provider_impl.sse import DEFAULT_MAX_FRAME_BYTES, ServerSentEvent, SSEDecoder


def run(pieces: Iterable[bytes], **kw: int) -> list[ServerSentEvent]:
    dec = SSEDecoder(**kw)
    out: list[ServerSentEvent] = []
    for p in pieces:
        out.extend(feed(dec, p))
    out.extend(end(dec))
    return out


def datas(events: list[ServerSentEvent]) -> list[str]:
    return [e.data for e in events]


def every_split(body: bytes) -> Iterable[list[bytes]]:
    yield [body]
    yield [body[i : i + 1] for i in range(len(body))]
    for i in range(1, len(body)):
        yield [body[:i], body[i:]]


# -- framing -----------------------------------------------------------------


def test_simple_frames_are_dispatched_on_blank_lines() -> None:
    dec = SSEDecoder()
    assert feed(dec, b"data: one\n") == []  # no blank line yet
    assert datas(feed(dec, b"\ndata: two\n\n")) == ["one", "two"]
    assert end(dec) == []


def test_default_event_type_is_message() -> None:
    (ev,) = run([b"data: x\n\n"])
    assert ev.event == "message"
    assert ev.id is None
    assert ev.retry is None


@pytest.mark.parametrize(
    "comment", [b": keep-alive\n", b":\n", b":OPENROUTER PROCESSING\n", b": \xff\xfe bad utf8\n"]
)
def test_comment_lines_are_ignored(comment: bytes) -> None:
    body = comment + b"data: a\n" + comment + b"data: b\n\n" + comment + comment + b"\n"
    assert datas(run([body])) == ["a\nb"]


def test_comment_only_stream_gives_nothing() -> None:
    assert run([b": ping\n\n: ping\n\n"]) == []


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_line_ends_lf_cr_crlf(eol: bytes) -> None:
    body = eol.join([b"event: x", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    for pieces in every_split(body):
        events = run(pieces)
        assert datas(events) == ["1\n2", "3"], pieces
        assert [e.event for e in events] == ["x", "message"]


def test_mixed_line_ends_in_one_stream() -> None:
    body = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r"
    for pieces in every_split(body):
        assert datas(run(pieces)) == ["a\nb\nc", "d"], pieces


def test_crlf_split_across_two_feeds_is_one_line_end() -> None:
    # If the CR and the LF were taken as two line ends, the LF would be a blank
    # line and "a" and "b" would come out as two events.
    dec = SSEDecoder()
    assert feed(dec, b"data: a\r") == []
    assert feed(dec, b"\ndata: b\r") == []
    assert feed(dec, b"\n") == []
    assert datas(feed(dec, b"\r\n")) == ["a\nb"]


def test_cr_at_end_of_feed_followed_by_non_lf() -> None:
    dec = SSEDecoder()
    assert feed(dec, b"data: a\r") == []
    assert datas(feed(dec, b"\rdata: b\r\r")) == ["a", "b"]


def test_empty_data_ends_the_input_and_a_pending_cr_ends_its_line() -> None:
    # b"" is the end of input (h11's convention): the frame after a CR is dispatched
    # without its blank line, and later data is ignored.
    dec = SSEDecoder()
    assert feed(dec, b"data: a\r") == []
    assert end(dec) == [ServerSentEvent("a")]
    assert feed(dec, b"data: b\n\n") == []


def test_events_are_taken_once_and_nothing_is_lost_between_reads() -> None:
    dec = SSEDecoder()
    dec.receive_data(b"data: a\n\n")
    dec.receive_data(b"data: b\n\ndata: c")  # two reads before anything is taken
    assert [e.data for e in dec.next_events()] == ["a", "b"]
    assert dec.next_events() == []  # taken: nothing twice
    assert [e.data for e in end(dec)] == ["c"]


def test_multi_line_data_is_joined_with_lf() -> None:
    body = b'data: {\ndata:   "k": 1\ndata: }\n\n'
    (ev,) = run([body])
    # one leading space is stripped, further spaces are kept
    assert ev.data == '{\n  "k": 1\n}'
    assert json.loads(ev.data) == {"k": 1}


def test_field_value_without_space_and_field_without_colon() -> None:
    assert datas(run([b"data:x\n\n"])) == ["x"]
    assert datas(run([b"data:  two spaces\n\n"])) == [" two spaces"]
    # "data" alone is the field with an empty value; two of them join with LF
    assert datas(run([b"data\ndata\n\n"])) == ["\n"]


def test_unknown_fields_are_ignored() -> None:
    assert datas(run([b"foo: bar\nDATA: shout\ndata: ok\nbaz\n\n"])) == ["ok"]


def test_blank_line_without_data_dispatches_nothing_and_resets_event() -> None:
    events = run([b"event: error\n\ndata: x\n\n"])
    assert [(e.event, e.data) for e in events] == [("message", "x")]


# -- UTF-8 and line separators ---------------------------------------------------


@pytest.mark.parametrize("char", ["é", "€", "😀", "中"])
def test_utf8_character_split_across_feeds(char: str) -> None:
    text = f"a{char}b{char}"
    body = f"data: {text}\n\n".encode()
    assert len(char.encode()) > 1
    for pieces in every_split(body):
        assert datas(run(pieces)) == [text]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_no_split_on_unicode_line_separators_inside_json(sep: str) -> None:
    payload = {"choices": [{"delta": {"content": f"one{sep}two{sep}"}}]}
    raw = json.dumps(payload, ensure_ascii=False)
    assert sep in raw  # really on the wire, not escaped
    body = f"data: {raw}\n\ndata: [DONE]\n\n".encode()
    for pieces in every_split(body):
        events = run(pieces)
        assert len(events) == 2
        assert json.loads(events[0].data) == payload
        assert events[1].data == "[DONE]"


def test_invalid_utf8_does_not_raise() -> None:
    (ev,) = run([b"data: a\xffb\n\n"])
    assert ev.data.startswith("a") and ev.data.endswith("b")


# -- BOM ----------------------------------------------------------------------------


def test_bom_free_stream_keeps_its_first_field() -> None:
    assert datas(run([b"data: first\n\n"])) == ["first"]


def test_leading_bom_is_ignored() -> None:
    body = b"\xef\xbb\xbfdata: first\n\ndata: second\n\n"
    for pieces in every_split(body):
        assert datas(run(pieces)) == ["first", "second"], pieces


def test_only_one_leading_bom_is_stripped() -> None:
    # a second BOM is part of the field name, which is then unknown
    assert datas(run([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n"])) == ["y"]


# -- the end of the input -----------------------------------------------------------


def test_last_frame_without_blank_line_is_dispatched_by_end() -> None:
    dec = SSEDecoder()
    assert feed(dec, b"data: a\n\ndata: last") == [ServerSentEvent("a")]
    assert datas(end(dec)) == ["last"]


def test_last_frame_with_single_newline_is_dispatched_by_end() -> None:
    dec = SSEDecoder()
    assert feed(dec, b"data: x\ndata: y\n") == []
    assert datas(end(dec)) == ["x\ny"]


def test_end_with_nothing_pending() -> None:
    dec = SSEDecoder()
    feed(dec, b"data: a\n\n")
    assert end(dec) == []


# -- event:, id:, retry: ------------------------------------------------------------------


def test_event_error_frame() -> None:
    body = b'event: error\ndata: {"error": {"message": "boom"}}\n\n'
    (ev,) = run([body])
    assert ev.event == "error"
    assert json.loads(ev.data) == {"error": {"message": "boom"}}


def test_event_type_applies_to_one_frame_only() -> None:
    events = run([b"event: ping\ndata: 1\n\ndata: 2\n\n"])
    assert [(e.event, e.data) for e in events] == [("ping", "1"), ("message", "2")]


def test_id_and_retry_fields() -> None:
    events = run([b"id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"])
    assert [e.data for e in events] == ["a", "b", "c"]
    assert events[0].id == "7" and events[0].retry == 1500
    assert events[1].id == "7"  # the last event id persists
    assert events[2].id == ""  # "id" with no value resets it


def test_id_with_nul_is_ignored() -> None:
    events = run([b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"])
    assert [e.id for e in events] == ["1", "1"]


@pytest.mark.parametrize("value", [b"abc", b"-5", b"1.5", b"", "²".encode(), "١٢".encode()])
def test_retry_that_is_not_ascii_digits_is_ignored(value: bytes) -> None:
    (ev,) = run([b"retry: " + value + b"\ndata: x\n\n"])
    assert ev.retry is None


# -- the frame-size limit -------------------------------------------------------------


def test_default_limit_is_16_mib() -> None:
    assert DEFAULT_MAX_FRAME_BYTES == 16 * 1024 * 1024
    dec = SSEDecoder()
    mib = b"x" * (1024 * 1024)
    feed(dec, b"data: ")
    for _ in range(15):
        feed(dec, mib)  # 15 MiB + 6 bytes: still fine
    with pytest.raises(StreamError):
        for _ in range(2):
            feed(dec, mib)


def test_frame_just_under_limit_is_fine() -> None:
    limit = 1000
    line = b"data: " + b"y" * (limit - 6 - 1)
    (ev,) = run([line + b"\n\n"], max_frame_bytes=limit)
    assert len(ev.data) == limit - 7


def test_one_huge_line_raises_stream_error() -> None:
    with pytest.raises(StreamError) as info:
        run([b"data: " + b"z" * 5000 + b"\n\n"], max_frame_bytes=1000)
    assert isinstance(info.value, LlmError)
    assert "1000" in str(info.value)


def test_huge_line_without_newline_raises_while_feeding() -> None:
    dec = SSEDecoder(max_frame_bytes=1000)
    with pytest.raises(StreamError):
        feed(dec, b"data: " + b"z" * 2000)


def test_many_small_data_lines_raise_stream_error() -> None:
    limit = 4096
    dec = SSEDecoder(max_frame_bytes=limit)
    line = b"data: 0123456789\n"
    with pytest.raises(StreamError):
        for _ in range(10 * limit // len(line)):  # never a blank line: one growing frame
            feed(dec, line)


def test_many_frames_totalling_more_than_the_limit_are_fine() -> None:
    limit = 256
    body = b"data: 0123456789\n\n" * 1000
    assert len(body) > 10 * limit
    assert len(run([body], max_frame_bytes=limit)) == 1000
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    assert len(run(pieces, max_frame_bytes=limit)) == 1000


@pytest.mark.parametrize("with_newlines", [False, True])
def test_memory_stays_bounded(with_newlines: bool) -> None:
    """The decoder refuses before it has taken in more than the limit plus one read."""
    limit, step = 64 * 1024, 1024
    dec = SSEDecoder(max_frame_bytes=limit)
    piece = (b"data: " + b"q" * (step - 7) + b"\n") if with_newlines else b"q" * step
    fed = 0
    with pytest.raises(StreamError):
        feed(dec, b"data: ")
        for _ in range(10 * limit // step):
            feed(dec, piece)
            fed += step
            pending = len(dec._buf) + dec._data_size  # what the decoder holds
            assert pending <= limit
    assert fed <= limit + step


# -- the lone-frame path (issue 13): the same result as the general one, or none


def _primed(prefix: bytes) -> tuple[SSEDecoder, SSEDecoder]:
    """Two decoders in the same state after ``prefix`` (a BOM-less start)."""
    a, b = SSEDecoder(64), SSEDecoder(64)
    for d in (a, b):
        d.receive_data(b"data: first\n\n" + prefix)
        d.next_events()
    return a, b


def _frames_of(d: SSEDecoder, data: bytes) -> list[tuple[str, str]]:
    d.receive_data(data)
    return [(e.data, e.event) for e in d.next_events()]


@pytest.mark.parametrize(
    ("prefix", "read"),
    [
        (b"", b'data: {"a":1}\n\n'),
        (b"", b"data:no-space\n\n"),
        (b"", b"data:  two spaces\n\n"),
        (b"", b"data: caf\xc3\xa9 \xff\n\n"),
        (b"", b"data: a\r\n\r\n"),
        (b"", b"data: a\n\ndata: b\n\n"),
        (b"", b"data: a\ndata: b\n\n"),
        (b"", b"event: error\ndata: x\n\n"),
        (b"", b": keep-alive\n\n"),
        (b"", b"data: " + b"x" * 60 + b"\n\n"),
        (b"", b"data: " + b"x" * 58 + b"\n\n"),
        (b"", b"data: a\n"),
        (b"data: pending\n", b"data: a\n\n"),
        (b": comment\n", b"data: a\n\n"),
        (b"event: ping\n", b"data: a\n\n"),
        (b"data: half", b"data: a\n\n"),
        (b"data: x\r", b"data: a\n\n"),
    ],
)
def test_lone_data_gives_what_receive_data_gives_or_declines(prefix: bytes, read: bytes) -> None:
    lone, general = _primed(prefix)
    got = lone.lone_data(read)
    try:
        expected = _frames_of(general, read)
    except StreamError:
        assert got is None
        return
    if got is None:  # declined: nothing taken, the general path gives the same
        assert _frames_of(lone, read) == expected
    else:
        assert [(got, "message")] == expected
        # A taken frame leaves the decoder as the general path does.
        assert _frames_of(lone, b"data: next\n\n") == _frames_of(general, b"data: next\n\n")
