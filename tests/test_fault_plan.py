"""The emulator's fault plan without sockets: what each fault does to a reply's bytes.

``FaultPlan`` turns a rendered reply into steps (write, send, wait, reset...); these
tests read the steps against the fault descriptions in ``FAULTS`` (the documented
behaviour), on small hand-made frames. tests/test_faults.py checks the same faults
end to end, through real sockets and the client.
"""

from __future__ import annotations

import pytest

from provider_impl.emulator import _faults as faults
from provider_impl.emulator._faults import FaultPlan
from provider_impl.emulator._http import Request
from provider_impl.emulator._wire import DONE, Frame, comment

HEAD = b"HTTP/1.1 200 OK\r\n\r\n"
ERROR = b'data: {"error":"in band"}\n\n'


def _data(n: int) -> Frame:
    return Frame("data", b'data: {"n":%d}\n\n' % n)


#: A comment, three JSON frames, a comment between them, and [DONE].
FRAMES = [comment("hello"), _data(0), _data(1), comment("mid"), _data(2), DONE]


def _reply(frames: list[Frame] = FRAMES, error_at: int | None = None) -> faults.StreamReply:
    return faults.StreamReply(frames, error_at, split_utf8=False, in_band_error=lambda: ERROR)


def _request(**headers: str) -> Request:
    return Request("POST", "/x", "HTTP/1.1", {k.lower(): v for k, v in headers.items()}, b"")


def _sent(steps: list[faults.Step]) -> bytes:
    """The body bytes the steps put in chunks, in order."""
    return b"".join(
        s.data if isinstance(s, faults.Send) else s.tail
        for s in steps
        if isinstance(s, (faults.Send, faults.Finish))
    )


def _stream(plan: FaultPlan, reply: faults.StreamReply | None = None) -> list[faults.Step]:
    return list(plan.stream_steps(HEAD, reply or _reply()))


def test_no_fault_sends_the_head_then_every_frame_and_ends_with_the_last() -> None:
    steps = _stream(FaultPlan())
    assert steps[0] == faults.Write(HEAD)
    assert steps[-1] == faults.Finish(DONE.raw)
    assert _sent(steps) == b"".join(f.raw for f in FRAMES)
    assert not [
        s
        for s in steps
        if isinstance(s, (faults.Wait, faults.Reset, faults.Abort, faults.KeepAlive))
    ]


def test_reset_comes_before_the_data_frame_after_the_count_comments_not_counted() -> None:
    steps = _stream(FaultPlan("reset", after=2))
    assert isinstance(steps[-1], faults.Reset)
    # Two JSON frames went out, and the comments around them; not the third.
    assert _sent(steps) == b"".join(f.raw for f in FRAMES[:4])


def test_reset_after_every_frame_sends_them_all_unterminated() -> None:
    steps = _stream(FaultPlan("reset", after=99))
    assert isinstance(steps[-1], faults.Reset)
    assert _sent(steps) == b"".join(f.raw for f in FRAMES)
    assert not [s for s in steps if isinstance(s, faults.Finish)]


def test_truncate_cuts_the_last_json_frame_in_half_and_ends_the_body_cleanly() -> None:
    steps = _stream(FaultPlan("truncate"))
    last_json = FRAMES[4].raw
    assert steps[-3:] == [
        faults.Send(last_json[: len(last_json) // 2]),
        faults.Finish(),
        faults.Abort(),
    ]
    assert DONE.raw not in _sent(steps)


def test_truncate_with_a_count_cuts_that_data_frame() -> None:
    steps = _stream(FaultPlan("truncate", after=1, after_given=True))
    assert steps[-3] == faults.Send(FRAMES[2].raw[: len(FRAMES[2].raw) // 2])


def test_error_frame_replaces_the_rest_of_the_stream_with_the_in_band_error() -> None:
    steps = _stream(FaultPlan("error_frame", after=1))
    assert steps[-1] == faults.Finish(ERROR)
    assert _sent(steps) == FRAMES[0].raw + FRAMES[1].raw + ERROR


def test_a_scenarios_in_band_error_needs_no_fault() -> None:
    steps = _stream(FaultPlan(), _reply(error_at=3))
    assert _sent(steps) == b"".join(f.raw for f in FRAMES[:5]) + ERROR


def test_stall_with_no_count_waits_before_the_headers() -> None:
    assert _stream(FaultPlan("stall", stall=7.0))[:2] == [faults.Wait(7.0), faults.Write(HEAD)]


def test_stall_after_a_count_waits_before_that_data_frame() -> None:
    steps = _stream(FaultPlan("stall", after=1, stall=7.0))
    at = steps.index(faults.Wait(7.0))
    assert _sent(steps[:at]) == FRAMES[0].raw + FRAMES[1].raw
    assert _sent(steps) == b"".join(f.raw for f in FRAMES)


def test_keepalive_sends_comments_for_the_stall_then_the_rest() -> None:
    steps = _stream(FaultPlan("keepalive", after=0, stall=4.0, every=0.5))
    assert faults.KeepAlive(4.0, 0.5) in steps
    assert _sent(steps) == b"".join(f.raw for f in FRAMES)


def test_trickle_waits_between_frames_but_not_after_the_last() -> None:
    steps = _stream(FaultPlan("trickle", every=0.25))
    assert steps.count(faults.Wait(0.25)) == len(FRAMES) - 1
    assert steps[-1] == faults.Finish(DONE.raw)


def test_trickle_head_and_trickle_bytes_pace_the_head_and_the_body() -> None:
    head_steps = _stream(FaultPlan("trickle_head", every=0.3))
    assert head_steps[0] == faults.Write(HEAD, 0.3)
    body_steps = _stream(FaultPlan("trickle_bytes", every=0.3))
    assert body_steps == [
        faults.Write(HEAD),
        faults.Send(b"".join(f.raw for f in FRAMES), 0.3),
        faults.Finish(),
    ]


def test_split_utf8_sends_a_frame_as_two_chunks_cut_inside_a_character() -> None:
    frames = [Frame("data", "data: é\n\n".encode()), DONE]
    steps = _stream(FaultPlan(), faults.StreamReply(frames, None, True, lambda: ERROR))
    first, second = steps[1], steps[2]
    assert isinstance(first, faults.Send) and isinstance(second, faults.Send)
    with pytest.raises(UnicodeDecodeError):
        first.data.decode("utf-8")
    assert first.data + second.data == frames[0].raw


@pytest.mark.parametrize(("fault", "kept"), [("", True), ("reset", False), ("truncate", False)])
def test_a_stream_keeps_its_connection_unless_the_fault_breaks_it(fault: str, kept: bool) -> None:
    assert FaultPlan(fault).keeps_alive(stream=True) is kept


# ----------------------------------------------------------------- whole replies
BODY = b'{"reply":"whole"}'


def test_a_whole_reply_goes_out_in_one_write() -> None:
    assert list(FaultPlan().whole_steps(HEAD, BODY)) == [faults.Write(HEAD + BODY)]
    assert not FaultPlan("stall").keeps_alive(stream=False)


def test_a_whole_reply_reset_with_a_count_sends_half_the_body_first() -> None:
    half = HEAD + BODY[: len(BODY) // 2]
    assert list(FaultPlan("reset", after=1).whole_steps(HEAD, BODY)) == [
        faults.Write(half),
        faults.Reset(),
    ]
    assert list(FaultPlan("reset").whole_steps(HEAD, BODY)) == [faults.Reset()]


def test_a_whole_reply_kept_alive_sends_spaces_slowly_before_the_json() -> None:
    plan = FaultPlan("keepalive", stall=1.0, every=0.25)
    assert plan.pad == b"    "
    steps = list(plan.whole_steps(HEAD, plan.pad + BODY))
    assert steps == [faults.Write(HEAD), faults.Write(b"    ", 0.25), faults.Write(BODY)]


def test_headers_set_the_plan_and_a_bad_one_is_named() -> None:
    plan = FaultPlan.from_headers(
        _request(**{"x-emulator-fault-after": "3", "x-emulator-trickle-ms": "20"}), "reset", True
    )
    assert (plan.after, plan.after_given, plan.every) == (3, True, 0.02)
    assert FaultPlan.from_headers(_request(), "reset", True).after == 2  # FAULTS: default 2
    assert FaultPlan.from_headers(_request(), "keepalive", True).every == 0.3
    with pytest.raises(ValueError, match="x-emulator-stall-seconds"):
        FaultPlan.from_headers(_request(**{"x-emulator-stall-seconds": "soon"}), "stall", False)
