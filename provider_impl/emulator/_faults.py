"""The emulator's faults as a plan: which bytes go out, when, and how the reply ends.

Sans-I/O: :class:`FaultPlan` reads a request's control headers once and turns a rendered
reply (its head, and its body or its SSE frames) into a sequence of steps (write these
bytes, wait, keep alive, reset the connection...). The server has one loop that carries
out steps (``Emulator._play``); it never asks which fault is on.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ._http import Request
from ._wire import Frame

FAULTS: dict[str, str] = {
    "reset": "send x-emulator-fault-after frames (default 2), then reset the TCP connection",
    "stall": "after x-emulator-fault-after frames (default 0: before the headers), send "
    "nothing for x-emulator-stall-seconds (default 30)",
    "truncate": "send the frames, then half of the last JSON frame, then end the body cleanly "
    "(no terminator, no [DONE])",
    "error_frame": "an in-band error (as in scenario error_in_stream) at frame "
    "x-emulator-fault-after (default 2)",
    "rate_limit": "429 with Retry-After: x-emulator-retry-after (default 1) for the first "
    "x-emulator-fail-times (default 1) requests with the same x-emulator-request-key (default: "
    "a hash of the body), then the normal response; after that success the cycle restarts",
    "unavailable_then_ok": "503 for the first x-emulator-fail-times (default 1) requests with "
    "the same x-emulator-request-key (default: a hash of the body), then the normal response",
    "trickle": "wait x-emulator-trickle-ms (default 50) between frames",
    "keepalive": "after x-emulator-fault-after data frames (default 0), send only keep-alives "
    "for x-emulator-stall-seconds (default 30): an SSE comment, or a space before a whole "
    "JSON reply, every x-emulator-trickle-ms (default 300); then the rest",
    "trickle_head": "send the status line and headers one byte every x-emulator-trickle-ms "
    "(default 300), then the body",
    "trickle_bytes": "send the body (every frame, or the whole reply) one byte every "
    "x-emulator-trickle-ms (default 300)",
    "gzip_bomb": "answer with status x-emulator-status (default 200) and a gzip body that "
    "inflates to x-emulator-bomb-mib (default 200) MiB of spaces",
}
#: Faults whose x-emulator-trickle-ms defaults to 300 (a proxy's keep-alive pace).
_SLOW_FAULTS = frozenset({"keepalive", "trickle_head", "trickle_bytes"})
#: Faults answered with an error status for a while, counted per request key.
RETRY_FAULTS = ("rate_limit", "unavailable_then_ok")
#: The streamed frame a fault acts at when x-emulator-fault-after is absent (else 0).
_STREAM_AFTER = {"reset": 2, "error_frame": 2}

#: Request headers that steer the faults.
H_FAULT = "x-emulator-fault"
H_FAULT_AFTER = "x-emulator-fault-after"
H_STALL_SECONDS = "x-emulator-stall-seconds"
H_RETRY_AFTER = "x-emulator-retry-after"
H_FAIL_TIMES = "x-emulator-fail-times"
H_REQUEST_KEY = "x-emulator-request-key"
H_TRICKLE_MS = "x-emulator-trickle-ms"
H_STATUS = "x-emulator-status"
H_BOMB_MIB = "x-emulator-bomb-mib"

_N = TypeVar("_N", int, float)


def _number_header(req: Request, name: str, default: _N, kind: Callable[[str], _N]) -> _N:
    """A non-negative number from a control header, or ``default`` when absent."""
    raw = req.header(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ValueError(f"header {name} must be a {kind.__name__}, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"header {name} must not be negative")
    return value


def int_header(req: Request, name: str, default: int) -> int:
    """A non-negative whole number from a control header (ValueError names a bad one)."""
    return _number_header(req, name, default, int)


def float_header(req: Request, name: str, default: float) -> float:
    """A non-negative number from a control header (ValueError names a bad one)."""
    return _number_header(req, name, default, float)


@functools.lru_cache(maxsize=4)
def gzip_bomb(mib: int) -> bytes:
    """gzip of ``mib`` MiB of spaces, built a block at a time (about 1 KiB per MiB)."""
    squash = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    parts = [squash.compress(block) for _ in range(mib)]
    parts.append(squash.flush())
    return b"".join(parts)


# ------------------------------------------------------------------ steps
@dataclass(frozen=True, slots=True)
class Wait:
    """Send nothing for ``seconds`` (noticing a client that leaves)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Write:
    """Write raw bytes to the socket; with a ``pace``, one byte at a time, each
    followed by ``pace`` seconds of nothing."""

    data: bytes
    pace: float | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """Send bytes as one HTTP chunk; with a ``pace``, one byte a chunk, each followed
    by ``pace`` seconds of nothing."""

    data: bytes
    pace: float | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """Send the last chunk (``tail``) and end the chunked body."""

    tail: bytes = b""


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Only SSE comments, every ``every`` seconds for ``seconds``."""

    seconds: float
    every: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Flush, then reset the TCP connection."""


@dataclass(frozen=True, slots=True)
class Abort:
    """Close the connection where it stands (the body is cut short)."""


Step = Wait | Write | Send | Finish | KeepAlive | Reset | Abort


def _utf8_split(raw: bytes) -> Iterator[Step]:
    """``raw`` as two chunks split inside its first multi-byte UTF-8 character, if any."""
    for pos, byte in enumerate(raw):
        if byte >= 0xC0:
            yield Send(raw[: pos + 1])
            yield Send(raw[pos + 1 :])
            return
    yield Send(raw)


# ------------------------------------------------------------------- plan
@dataclass(frozen=True)
class FaultPlan:
    """One request's fault (``""``: none) and the numbers its control headers set."""

    fault: str = ""
    #: Data frames sent before the fault acts (a whole reply: reset with a half body if > 0).
    after: int = 0
    #: Whether x-emulator-fault-after was given (truncation then cuts that frame).
    after_given: bool = False
    stall: float = 30.0
    #: Seconds between bytes, frames or keep-alives (x-emulator-trickle-ms).
    every: float = 0.05

    @classmethod
    def from_headers(cls, req: Request, fault: str, stream: bool) -> FaultPlan:
        """Read the control headers; a bad one raises ValueError naming it (the first,
        in the order a streamed or a whole reply has always read them)."""
        default_after = _STREAM_AFTER.get(fault, 0) if stream else 0
        if stream:
            after = int_header(req, H_FAULT_AFTER, default_after)
            stall = float_header(req, H_STALL_SECONDS, 30.0)
        else:
            stall = float_header(req, H_STALL_SECONDS, 30.0)
            after = int_header(req, H_FAULT_AFTER, default_after)
        slow = fault in _SLOW_FAULTS
        every = float_header(req, H_TRICKLE_MS, 300.0 if slow else 50.0) / 1000
        return cls(fault, after, bool(req.header(H_FAULT_AFTER)), stall, every)

    def keeps_alive(self, stream: bool) -> bool:
        """Whether the connection may serve another request after this reply."""
        if stream:
            return self.fault not in ("reset", "truncate")
        return not self.fault

    # ------------------------------------------------------------ whole reply
    @property
    def pad(self) -> bytes:
        """Spaces sent before a whole JSON reply while keeping it alive (JSON may
        start with white space: what a proxy sends meanwhile)."""
        if self.fault == "keepalive" and self.every > 0:
            return b" " * int(self.stall / self.every)
        return b""

    def whole_steps(self, head: bytes, body: bytes) -> Iterator[Step]:
        """The steps that send a whole reply (``body`` already starts with ``pad``)."""
        fault = self.fault
        if fault in ("reset", "truncate"):
            if fault == "truncate" or self.after > 0:
                yield Write(head + body[: len(body) // 2])
            yield Reset() if fault == "reset" else Abort()
            return
        if fault in ("stall", "trickle"):
            yield Wait(self.stall if fault == "stall" else self.every)
        elif fault == "trickle_head":
            yield Write(head, self.every)
            head = b""
        elif fault in ("trickle_bytes", "keepalive"):
            slow = len(self.pad) or len(body)  # the pad alone, or every byte
            yield Write(head)
            yield Write(body[:slow], self.every)
            head, body = b"", body[slow:]
        yield Write(head + body)

    # ---------------------------------------------------------------- stream
    def truncate_at(self, frames: list[Frame]) -> int | None:
        """The index of the frame cut in half (the ``truncate`` fault), or None: the
        x-emulator-fault-after'th data frame, else the last JSON one."""
        if self.fault != "truncate":
            return None
        if self.after_given:
            data = [i for i, f in enumerate(frames) if f.kind != "comment"]
            return data[min(self.after, len(data) - 1)]
        return [i for i, f in enumerate(frames) if f.kind == "data"][-1]

    def stream_steps(self, head: bytes, reply: StreamReply) -> Iterator[Step]:
        """The steps that send a streamed reply: head, frames, the fault, the end."""
        if self.fault == "stall" and self.after == 0:
            yield Wait(self.stall)
        yield Write(head, self.every if self.fault == "trickle_head" else None)
        frames = reply.frames
        if self.fault == "trickle_bytes":
            yield Send(b"".join(f.raw for f in frames), self.every)
            frames = []
        yield from self._frame_steps(frames, reply)

    def _at_data_frame(self, sent: int) -> Iterator[Step]:
        """What a pausing fault does before a data frame, ``sent`` data frames in."""
        if sent != self.after:
            return
        if self.fault == "keepalive":
            yield KeepAlive(self.stall, self.every)
        elif self.fault == "stall" and self.after > 0:
            yield Wait(self.stall)

    def _frame_steps(self, frames: list[Frame], reply: StreamReply) -> Iterator[Step]:
        """The frames in order, each data frame preceded by what the fault does there;
        an in-band error, a cut frame or the last frame ends the body."""
        error_at = self.after if self.fault == "error_frame" else reply.error_at
        cut_at, last, sent = self.truncate_at(frames), len(frames) - 1, 0
        pace = self.every if self.fault == "trickle" else 0.0
        for i, frame in enumerate(frames):
            is_data = frame.kind != "comment"
            if is_data:
                if self.fault == "reset" and sent == self.after:
                    yield Reset()
                    return
                yield from self._at_data_frame(sent)
                if sent == error_at:
                    yield Finish(reply.in_band_error())
                    return
            if i == cut_at:
                yield from (Send(frame.raw[: len(frame.raw) // 2]), Finish(), Abort())
                return
            if i == last and self.fault != "reset":
                yield Finish(frame.raw)
                return
            yield from _utf8_split(frame.raw) if reply.split_utf8 else (Send(frame.raw),)
            sent += is_data
            if pace:
                yield Wait(pace)
        # Asked to reset after the last frame, or a clean end (after trickle_bytes).
        yield Reset() if self.fault == "reset" else Finish()


@dataclass(frozen=True)
class StreamReply:
    """A streamed reply as rendered, before any fault: what the plan lays out."""

    frames: list[Frame]
    #: The data frame the scenario breaks at with an in-band error (None: never).
    error_at: int | None
    #: Whether each frame goes out as two chunks split inside a UTF-8 character.
    split_utf8: bool
    #: The in-band error's bytes, rendered only when reached.
    in_band_error: Callable[[], bytes]
