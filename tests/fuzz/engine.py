"""One fuzz engine, three drivers: hypothesis (the CI run), atheris (the long,
coverage-guided run) and a seeded ``random.Random`` (the fallback long run).

Every driver supplies a ``Chooser``; ``fuzz_one`` uses it to pick a target and
build an input, runs the code under test and checks the oracle:

* only ``LlmError`` subclasses escape (no KeyError, TypeError, RecursionError,
  UnicodeError, ...), and the error's ``str``/``repr`` work;
* memory stays bounded: with a small ``max_frame_bytes`` the parser never holds
  an unterminated line longer than the limit, and no decoded frame is larger;
* the result does not depend on how the body was split into reads;
* what comes out is well formed: only stream events, nothing after ``Done``,
  ``Done`` only when no error was raised; ``RateLimited.retry_after`` is
  ``None`` or a finite number of seconds >= 0;
* no hang: each input runs under a wall-clock alarm (``no_hang``).

A failed check raises ``Finding`` (an ``AssertionError``) describing the input.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from provider_impl import decode_stream
from provider_impl.adapter import StreamAdapter, events_of_reply
from provider_impl.classify import classify_error, error_from_payload
from provider_impl.dialects import DIALECTS
from provider_impl.errors import LlmError, RateLimited, StreamError
from provider_impl.events import Connected, Done
from provider_impl.sse import ServerSentEvent, SSEDecoder
from provider_impl.stream import StreamParser

from .corpus import PROVIDERS, chunk_seeds, error_seeds, stream_seeds

STREAM_EVENT_TYPES: tuple[type, ...] = ()


def _event_types() -> tuple[type, ...]:
    from provider_impl import events

    return tuple(getattr(events, name) for name in events.__all__ if name != "StreamEvent")


STREAM_EVENT_TYPES = _event_types()

# Frame-size limits used to prove the memory bound (small, so that the fuzzer
# reaches them), and the default one for the split-independence check.
SMALL_LIMITS = (16, 64, 256, 4096)


class Finding(AssertionError):
    """An input broke the oracle."""


class Hang(BaseException):
    """An input ran longer than the no-hang budget (BaseException: never swallowed)."""


class Chooser(Protocol):
    def int(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""

    def raw(self, max_len: int) -> bytes:
        """Up to ``max_len`` arbitrary bytes."""


def pick(c: Chooser, seq: Sequence[Any]) -> Any:
    return seq[c.int(0, len(seq) - 1)]


@contextlib.contextmanager
def no_hang(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` if the body runs longer than ``seconds`` (main thread only)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum: int, frame: Any) -> None:
        raise Hang(f"an input ran longer than {seconds}s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------- values

_WRONG_SCALARS: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2**70,
    -(2**70),
    1.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    "",
    " ",
    "x",
    "[DONE]",
    "stop",
    "tool_calls",
    "network_error",
    "\u2028",
    "\ud800",
    "\x00",
    "a" * 300,
)


def wrong_value(c: Chooser, depth: int = 0) -> Any:
    """A JSON-able value of any type, including deep nesting."""
    k = c.int(0, 9)
    if k <= 4 or depth > 3:
        return pick(c, _WRONG_SCALARS)
    if k == 5:
        return []
    if k == 6:
        return {}
    if k == 7:
        return [wrong_value(c, depth + 1) for _ in range(c.int(1, 3))]
    if k == 8:
        keys = (
            "index",
            "id",
            "type",
            "function",
            "name",
            "arguments",
            "content",
            "text",
            "error",
            "message",
            "code",
            "delta",
            "finish_reason",
            "usage",
            "thinking",
        )
        return {pick(c, keys): wrong_value(c, depth + 1) for _ in range(c.int(1, 3))}
    # Up to what json.loads can deliver at the default recursion limit, and beyond
    # (events_of_reply and classify_error also take parsed values from callers).
    return deep_value(c.int(1, 900) if c.int(0, 3) else c.int(901, 5000), c.int(0, 1))


def deep_value(depth: int, kind: int) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = [v] if kind == 0 else {"a": v}
    return v


def deep_text(depth: int, kind: int) -> str:
    if kind == 0:
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "0" + "}" * depth


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a field or element of ``value`` (the root included; 40 levels)."""
    out = [prefix]
    if len(prefix) >= 40:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(json_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(json_paths(v, (*prefix, i)))
    return out


def replace_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        out[head] = replace_at(value[head], rest, new)
        return out
    out_list = list(value)
    out_list[head] = replace_at(value[head], rest, new)
    return out_list


def delete_at(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return value
    if len(path) == 1:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != path[0]}
        return [v for i, v in enumerate(value) if i != path[0]]
    head = path[0]
    if isinstance(value, dict):
        return {**value, head: delete_at(value[head], path[1:])}
    out = list(value)
    out[head] = delete_at(value[head], path[1:])
    return out


def mutate_json(c: Chooser, value: Any) -> Any:
    """Remove a field, or give any field (the root too) a value of the wrong type."""
    paths = json_paths(value)
    path = pick(c, paths)
    if path and c.int(0, 2) == 0:
        return delete_at(value, path)
    return replace_at(value, path, wrong_value(c))


def dumps(value: Any) -> str:
    # allow_nan: NaN/Infinity are what a sloppy server writes; json.loads accepts them.
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        return deep_text(500, 0)


# ------------------------------------------------------------------ mutations

_BAD_UTF8 = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xe2\x80",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xf4\x90\x80\x80",
    b"\xef\xbb\xbf",
    b"\x00",
)
_LINE_NOISE = (
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\r",
    b": ping\n\n",
    b"event: error\n",
    b"event: ping\n",
    b"id: 1\n",
    b"retry: 10\n",
    b"data:\n\n",
    b"data: [DONE]\n\n",
    b"data: {}\n\n",
    b"data: null\n\n",
    b"data: []\n\n",
    b'data: {"error":{}}\n\n',
    b"data",
    b"data:",
    b"data: ",
    b"\xef\xbb\xbf",
)


def mutate_frames(c: Chooser, frames: list[bytes], limit: int) -> list[bytes]:
    """One mutation of a body held as a list of frames."""
    op = c.int(0, 13)
    n = len(frames)
    if n == 0:
        return [c.raw(64)]
    i = c.int(0, n - 1)
    f = frames[i]
    if op == 0:  # truncate the body inside frame i
        return [*frames[:i], f[: c.int(0, len(f))]]
    if op == 1:  # byte flips
        b = bytearray(f)
        for _ in range(c.int(1, 4)):
            if b:
                p = c.int(0, len(b) - 1)
                b[p] ^= c.int(1, 255)
        return [*frames[:i], bytes(b), *frames[i + 1 :]]
    if op == 2:  # remove a frame
        return frames[:i] + frames[i + 1 :]
    if op == 3:  # duplicate a frame
        return [*frames[: i + 1], f, *frames[i + 1 :]]
    if op == 4:  # reorder: swap two frames
        j = c.int(0, n - 1)
        out = list(frames)
        out[i], out[j] = out[j], out[i]
        return out
    if op == 5:  # invalid UTF-8 inside a frame
        p = c.int(0, len(f))
        bad = pick(c, _BAD_UTF8)
        return [*frames[:i], f[:p] + bad + f[p:], *frames[i + 1 :]]
    if op == 6:  # an enormous line (sometimes without its line end)
        size = limit * c.int(1, 4) + c.int(0, 64) if c.int(0, 9) else c.int(1, 2) << 20
        fill = pick(c, (b"x", b"\xe2\x80\xa8", b"{", b"["))
        line = b"data: " + (fill * size)[:size]
        end = pick(c, (b"", b"\n", b"\n\n"))
        return [*frames[:i], line + end, *frames[i:]]
    if op == 7:  # deeply nested JSON as a frame or inside a field
        depth = c.int(1, 20_000)
        if c.int(0, 1):
            text = deep_text(depth, c.int(0, 1))
            return [*frames[:i], f"data: {text}\n\n".encode(), *frames[i:]]
        return [
            *frames[:i],
            _json_frame(c, f, deep_value(min(depth, 900), c.int(0, 1))),
            *frames[i + 1 :],
        ]
    if op in (8, 9):  # a field removed or of the wrong type
        return [*frames[:i], _json_frame(c, f, None), *frames[i + 1 :]]
    if op == 10:  # line ends changed
        ending = pick(c, (b"\r\n", b"\r"))
        return [g.replace(b"\n", ending) for g in frames]
    if op == 11:  # SSE field noise (comments, event: error, bare data, BOM)
        return [*frames[:i], pick(c, _LINE_NOISE), *frames[i:]]
    if op == 12:  # random bytes
        return [*frames[:i], c.raw(256), *frames[i:]]
    # op 13: a frame split into several data: lines
    if f.startswith(b"data: ") and len(f) > 10:
        body = f[6:].rstrip(b"\n")
        p = c.int(1, len(body) - 1)
        return [
            *frames[:i],
            b"data: " + body[:p] + b"\ndata: " + body[p:] + b"\n\n",
            *frames[i + 1 :],
        ]
    return frames


def _json_frame(c: Chooser, frame: bytes, replacement: Any) -> bytes:
    if not frame.startswith(b"data: {") and not frame.startswith(b"data: ["):
        return frame
    try:
        value = json.loads(frame[6:].decode("utf-8"))
    except (ValueError, RecursionError):
        return frame
    if replacement is None:
        value = mutate_json(c, value)
    else:
        path = pick(c, json_paths(value))
        value = replace_at(value, path, replacement)
    return f"data: {dumps(value)}\n\n".encode("utf-8", "surrogatepass")


def split(c: Chooser, body: bytes) -> list[bytes]:
    """Cut ``body`` into reads: whole, every byte, or at a few random points."""
    mode = c.int(0, 5)
    if mode == 0 or not body:
        return [body]
    if mode == 1 and len(body) <= 4096:
        return [body[i : i + 1] for i in range(len(body))]
    cuts = sorted({c.int(0, len(body)) for _ in range(c.int(1, 12))})
    pieces = []
    last = 0
    for cut in cuts:
        pieces.append(body[last:cut])
        last = cut
    pieces.append(body[last:])
    return pieces


# --------------------------------------------------------------------- oracles


def _check_events(events: Sequence[Any], errored: bool, where: str) -> None:
    for i, ev in enumerate(events):
        if not isinstance(ev, STREAM_EVENT_TYPES):
            raise Finding(f"{where}: event {i} is not a stream event: {ev!r}")
        if isinstance(ev, Done) and (i != len(events) - 1 or errored):
            raise Finding(f"{where}: Done is not last, or came before an error")


def _check_error(err: LlmError, where: str) -> None:
    try:
        s, r = str(err), repr(err)
    except Exception as exc:
        raise Finding(f"{where}: str/repr of {type(err).__name__} raised {exc!r}") from exc
    if not isinstance(s, str) or not isinstance(r, str):
        raise Finding(f"{where}: str/repr did not give text")
    if isinstance(err, RateLimited) and err.retry_after is not None:
        ra = err.retry_after
        if not (isinstance(ra, float | int) and math.isfinite(ra) and ra >= 0):
            raise Finding(f"{where}: RateLimited.retry_after={ra!r}: not a finite wait >= 0")


def _guard(where: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; an ``LlmError`` is a legal outcome, anything else is a finding."""
    try:
        return fn()
    except LlmError as err:
        _check_error(err, where)
        return err
    except (Finding, Hang):
        raise
    except Exception as exc:
        raise Finding(f"{where}: {type(exc).__name__} escaped: {exc!r:.300}") from exc


def _drive(where: str, core: Any, receive: Callable[[], None]) -> tuple[list[Any], Any]:
    """One input to a sans-I/O object (``receive``), then every batch it gives:
    the events before a break, and the break (an ``LlmError``) or None."""
    got: list[Any] = []

    def go() -> None:
        receive()
        while batch := core.next_events():
            got.extend(batch)

    return got, _guard(where, go)


def run_parser(provider: str, pieces: Sequence[bytes], limit: int) -> tuple[list[Any], Any]:
    """Drive ``StreamParser`` like the provider does; check the memory bound after each read."""
    where = f"StreamParser({provider}, max_frame_bytes={limit})"
    parser = StreamParser(DIALECTS[provider], limit)
    events: list[Any] = []
    pending = 0  # bytes since the last CR or LF: the line the parser must be holding
    err: Any = None
    for piece in pieces:
        if not piece:
            continue  # b"" would end the body
        out, err = _drive(where, parser, lambda p=piece: parser.receive_data(p))  # type: ignore[misc]
        events.extend(out)
        if err is not None:
            break
        if parser.done:  # after Done the rest of the body is never buffered
            break
        cut = max(piece.rfind(b"\n"), piece.rfind(b"\r"))
        pending = len(piece) - cut - 1 if cut >= 0 else pending + len(piece)
        if pending > limit + 3:  # + a BOM the decoder strips
            raise Finding(
                f"{where}: holds an unterminated line of {pending} bytes after a read "
                f"(limit {limit}); memory is not bounded"
            )
    else:
        out, err = _drive(where, parser, lambda: parser.receive_data(b""))
        events.extend(out)
    # StreamParser gives the events decoded before an error, then raises: collect them too.
    _check_events(events, err is not None, where)
    return events, err


def run_decode_stream(provider: str, pieces: Sequence[bytes]) -> tuple[list[Any], Any]:
    where = f"decode_stream({provider!r})"
    events: list[Any] = []

    def go() -> None:
        for ev in decode_stream(list(pieces), provider):
            events.append(ev)

    err = _guard(where, go)
    if events and not isinstance(events[0], Connected):
        raise Finding(f"{where}: the first event is not Connected")
    _check_events(events[1:], isinstance(err, LlmError), where)
    return events, err


def check_sse(body_pieces: Sequence[bytes], limit: int) -> None:
    where = f"SSEDecoder(max_frame_bytes={limit})"
    dec = SSEDecoder(limit)
    frames: list[ServerSentEvent] = []
    for piece in [*(p for p in body_pieces if p), b""]:  # b"": the end
        out, err = _drive(where, dec, lambda p=piece: dec.receive_data(p))  # type: ignore[misc]
        frames.extend(out)
        if err is not None:
            if not isinstance(err, StreamError):
                raise Finding(f"{where}: raised {type(err).__name__}, not StreamError")
            break
    for f in frames:
        if not isinstance(f, ServerSentEvent) or not isinstance(f.data, str):
            raise Finding(f"{where}: produced {f!r}")
        if len(f.data) > limit:
            raise Finding(f"{where}: a frame of {len(f.data)} characters passed the limit")


def check_stream(provider: str, body: bytes, pieces: Sequence[bytes], limit: int) -> None:
    """The full pipeline on one body: small limit, then split independence."""
    run_parser(provider, pieces, limit)
    if len(body) <= 1 << 20:
        whole = run_decode_stream(provider, [body])
        split_ = run_decode_stream(provider, pieces)
        if whole[0] != split_[0] or type(whole[1]) is not type(split_[1]):
            raise Finding(
                f"decode_stream({provider!r}): the outcome depends on the split: "
                f"{len(whole[0])} events/{type(whole[1]).__name__} whole vs "
                f"{len(split_[0])}/{type(split_[1]).__name__} in {len(pieces)} pieces"
            )


def check_chunks(provider: str, chunks: Sequence[Any]) -> None:
    """Parsed chunks, each sent as one frame's JSON text (and each alone as a
    whole reply through ``events_of_reply``)."""
    sses = []
    for chunk in chunks:
        try:
            sses.append(ServerSentEvent(json.dumps(chunk)))
        except (TypeError, ValueError, RecursionError):
            continue  # not JSON text: no frame can carry it
        if isinstance(chunk, dict):
            where = f"events_of_reply({provider})"
            out = _guard(where, lambda ch=chunk: events_of_reply(ch, DIALECTS[provider]))  # type: ignore[misc]
            _check_events(
                [] if isinstance(out, LlmError) else out, isinstance(out, LlmError), where
            )
    check_events(provider, sses)


def check_events(provider: str, sses: Sequence[ServerSentEvent]) -> None:
    where = f"StreamAdapter({provider}).receive_event"
    adapter = StreamAdapter(DIALECTS[provider])
    events: list[Any] = []
    for sse in [*sses, None]:  # None: the end
        out, err = _drive(where, adapter, lambda s=sse: adapter.receive_event(s))  # type: ignore[misc]
        events.extend(out)
        if err is not None:
            _check_events(events, True, where)
            return
    _check_events(events, False, where)


_STATUSES = (
    None,
    0,
    200,
    400,
    401,
    402,
    403,
    404,
    405,
    408,
    409,
    413,
    415,
    422,
    429,
    499,
    500,
    502,
    503,
    504,
    529,
    599,
    999,
    -1,
)
_RETRY_VALUES = (
    "1",
    "0",
    "-1",
    "1.5",
    "  2 ",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "1e-400",
    "",
    " ",
    "abc",
    "0x10",
    "1_000",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Wed, 21 Oct 2999 07:28:00 GMT",
    "Wed, 99 Oct 99999 07:28:00 GMT",
    "Wed, 21 Oct 2015 07:28:00 +9999",
    "Mon, 31 Feb 2021 25:61:61 GMT",
    "\x00",
    "९",
    "١٢",
)


def check_classify(status: int | None, headers: dict[str, str], body: Any, provider: str) -> None:
    where = f"classify_error({status}, {provider})"
    dialect = DIALECTS[provider]
    for fn in (
        lambda: classify_error(status, headers, body, dialect),
        lambda: error_from_payload(body, dialect),
    ):
        try:
            err = fn()
        except LlmError as raised:
            msg = f"{where}: raised {type(raised).__name__} instead of returning it"
            raise Finding(msg) from raised
        except Exception as exc:
            raise Finding(f"{where}: {type(exc).__name__} escaped: {exc!r:.300}") from exc
        if not isinstance(err, LlmError):
            raise Finding(f"{where}: returned {type(err).__name__}, not an LlmError")
        _check_error(err, where)


# ------------------------------------------------------------------- targets


def _headers(c: Chooser) -> dict[str, str]:
    h: dict[str, str] = {}
    for _ in range(c.int(0, 3)):
        name = pick(
            c,
            (
                "retry-after",
                "Retry-After",
                "retry-after-ms",
                "x-request-id",
                "request-id",
                "cf-ray",
                "content-type",
            ),
        )
        if c.int(0, 4) == 0:
            h[name] = c.raw(24).decode("utf-8", "replace")
        else:
            h[name] = pick(c, _RETRY_VALUES)
    return h


def target_random_bytes(c: Chooser) -> None:
    body = c.raw(4096)
    limit = pick(c, SMALL_LIMITS)
    pieces = split(c, body)
    check_sse(pieces, limit)
    check_stream(pick(c, PROVIDERS), body, pieces, limit)


def target_mutated_body(c: Chooser) -> None:
    seed = pick(c, stream_seeds())
    limit = pick(c, SMALL_LIMITS)
    frames = list(seed.frames)
    for _ in range(c.int(1, 4)):
        frames = mutate_frames(c, frames, limit)
    body = b"".join(frames)
    pieces = split(c, body)
    provider = seed.provider if c.int(0, 3) else pick(c, PROVIDERS)
    check_sse(pieces, limit)
    check_stream(provider, body, pieces, limit)


def target_chunks(c: Chooser) -> None:
    provider, chunks = pick(c, chunk_seeds())
    out = list(chunks)
    for _ in range(c.int(1, 4)):
        if not out:
            break
        i = c.int(0, len(out) - 1)
        op = c.int(0, 5)
        if op <= 3:
            out[i] = mutate_json(c, out[i])
        elif op == 4:
            out.insert(i, wrong_value(c))
        else:
            out.insert(i, out[c.int(0, len(out) - 1)])
    check_chunks(provider, out)


def target_sse_events(c: Chooser) -> None:
    provider = pick(c, PROVIDERS)
    _, chunks = pick(c, chunk_seeds())
    sses: list[ServerSentEvent] = []
    for chunk in chunks:
        k = c.int(0, 7)
        if k == 0:
            data = c.raw(64).decode("utf-8", "replace")
        elif k == 1:
            data = pick(
                c,
                (
                    "",
                    " ",
                    "[DONE]",
                    "null",
                    "[]",
                    "{}",
                    "1",
                    '"x"',
                    "NaN",
                    '{"error":null}',
                    '{"error":""}',
                    '{"error":[]}',
                    "[DONE] ",
                ),
            )
        elif k == 2:
            data = deep_text(c.int(1, 20_000), c.int(0, 1))
        else:
            data = dumps(chunk)
        event = pick(c, ("message", "message", "message", "error", "", "ping", "done"))
        sses.append(ServerSentEvent(data, event))
    check_events(provider, sses)


def target_error_body(c: Chooser) -> None:
    seed = pick(c, error_seeds())
    body: Any = seed.body
    for _ in range(c.int(0, 3)):
        body = mutate_json(c, body)
    status = seed.status if c.int(0, 2) else pick(c, _STATUSES)
    headers = dict(seed.headers) if c.int(0, 1) else {}
    headers.update(_headers(c))
    provider = seed.provider if c.int(0, 3) else pick(c, PROVIDERS)
    form = c.int(0, 3)
    sent: Any
    if form == 0:
        sent = body
    elif form == 1:
        sent = dumps(body)
    elif form == 2:
        sent = dumps(body).encode("utf-8", "surrogatepass")
    else:
        raw = dumps(body).encode("utf-8", "surrogatepass")
        sent = raw[: c.int(0, len(raw))]
    check_classify(status, headers, sent, provider)


def target_error_bytes(c: Chooser) -> None:
    raw = c.raw(1024)
    check_classify(pick(c, _STATUSES), _headers(c), raw, pick(c, PROVIDERS))
    check_classify(
        pick(c, _STATUSES), _headers(c), raw.decode("utf-8", "replace"), pick(c, PROVIDERS)
    )


TARGETS: tuple[Callable[[Chooser], None], ...] = (
    target_random_bytes,
    target_mutated_body,
    target_mutated_body,
    target_chunks,
    target_sse_events,
    target_error_body,
    target_error_bytes,
)


def fuzz_one(c: Chooser) -> None:
    pick(c, TARGETS)(c)


# --------------------------------------------------------------------- choosers


class RandomChooser:
    """Choices from a seeded ``random.Random``: deterministic and dependency-free."""

    def __init__(self, rng: Any) -> None:
        self._rng = rng

    def int(self, lo: int, hi: int) -> int:
        return int(self._rng.randint(lo, hi))

    def raw(self, max_len: int) -> bytes:
        n = self._rng.randint(0, max_len)
        if self._rng.random() < 0.5:  # mostly printable/SSE-ish bytes
            alphabet = b'data: {}[]",:\n\r\n\nevent:error id:retry:0123456789abc\xe2\x80\xa8\xff'
            return bytes(self._rng.choice(alphabet) for _ in range(n))
        return bytes(self._rng.getrandbits(8) for _ in range(n))
