"""Property tests: generated streams in every wire style the providers use.

For each generated conversation (thinking, text, tool calls with random JSON
arguments cut into random fragments, a finish reason, usage placed the way the
provider places it) the body is rendered in one wire style and decoded:
any split gives the same events as the whole body; the §3 invariants hold; the
tool inputs are the generated arguments; the text is the generated text; the
stop reason and the usage are what the provider meant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invariants import assert_invariants
from wire import (
    bytewise,
    collected_text,
    collected_thinking,
    dicts,
    end,
    feed,
    of_type,
    splits,
    stop_of,
    tool_calls,
    usage_of,
)

from provider_impl import LlmError, StopReason, StreamError, Usage, decode_stream
from provider_impl.dialects import DIALECTS
from provider_impl.events import Done, MessageDelta
from provider_impl.sse import SSEDecoder

STYLES = ["openai", "gemini", "mistral", "glm", "claude"]
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
ARGS = st.dictionaries(st.text(max_size=6), JSON, max_size=4)
NAME = st.from_regex(r"[a-zA-Z0-9_-]{1,16}", fullmatch=True)
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class Call:
    id: str
    name: str
    args: dict[str, Any]
    fragments: list[str]  # the serialized arguments, cut into pieces


@dataclass
class DrawnStream:
    style: str
    thinking: list[str]
    text: list[str]
    refusal: list[str]
    calls: list[Call]
    finish: str | None  # None: the stream ends with [DONE] and no finish reason
    usage: Usage | None  # None: the provider reported none
    send_done: bool
    eol: str
    noise: bool  # comments, pings, a second choice, extra keys
    seed: int


@st.composite
def calls_st(draw: st.DrawFn, style: str) -> list[Call]:
    out = []
    for i in range(draw(st.integers(0, 3))):
        args = draw(ARGS)
        raw = json.dumps(args, ensure_ascii=draw(st.booleans()))
        if style == "claude" and not args and draw(st.booleans()):
            raw = ""  # a no-argument tool: arguments "" and nothing else
        cuts = draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=6))
        points = sorted({c for c in cuts if 0 < c < len(raw)})
        fragments = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
        fragments = [f for f in fragments if f]
        if style == "mistral":
            cid = str(i) + draw(st.text(ID_CHARS, min_size=8, max_size=8))
        elif style == "gemini":
            cid = ""
        else:
            cid = f"call_{i}_" + draw(st.text(ID_CHARS, min_size=4, max_size=24))
        out.append(Call(cid, draw(NAME), args, fragments))
    return out


FINISHES = {
    "openai": ["stop", "length", "content_filter", "tool_calls", None, "brand_new_reason"],
    "gemini": ["stop", "length", "brand_new_reason"],
    "mistral": ["stop", "length", "model_length", "tool_calls"],
    "glm": ["stop", "length", "sensitive", "tool_calls"],
    "claude": ["stop", "length", "tool_calls", None],
}


@st.composite
def scripts(draw: st.DrawFn, style: str | None = None) -> DrawnStream:
    style = style or draw(st.sampled_from(STYLES))
    calls = draw(calls_st(style))
    finish = draw(st.sampled_from(FINISHES[style]))
    if finish == "tool_calls" and not calls:
        finish = "stop"
    if calls and style in ("mistral", "glm") and finish in ("stop", "length", "sensitive"):
        finish = "tool_calls"
    if calls and style == "openai" and finish in ("stop", "content_filter"):
        finish = "tool_calls"
    prompt = draw(st.integers(0, 10**6))
    completion = draw(st.integers(0, 10**5))
    usage: Usage | None = Usage(prompt, completion, None, None)
    if style in ("openai", "glm"):
        usage = Usage(
            prompt,
            completion,
            draw(st.none() | st.integers(0, prompt)),
            draw(st.none() | st.integers(0, completion)),
        )
    if style in ("openai", "claude") and draw(st.booleans()):
        usage = None  # include_usage not honoured: no usage anywhere
    thinking_ok = style in ("gemini", "mistral", "glm")
    return DrawnStream(
        style=style,
        thinking=draw(st.lists(TEXT, max_size=4)) if thinking_ok else [],
        text=draw(st.lists(TEXT, max_size=5)),
        refusal=draw(st.lists(TEXT, max_size=3)) if style == "openai" and not calls else [],
        calls=calls,
        finish=finish,
        usage=usage,
        send_done=finish is None or draw(st.booleans()),
        eol=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        noise=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


# -- rendering each wire style -------------------------------------------------------------


def _usage_json(u: Usage, details: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": (u.input_tokens or 0) + (u.output_tokens or 0),
    }
    if details:
        if u.cache_read_input_tokens is not None:
            d["prompt_tokens_details"] = {"cached_tokens": u.cache_read_input_tokens}
        if u.reasoning_tokens is not None:
            d["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return d


def render(s: DrawnStream) -> bytes:
    frames: list[Any] = []  # dicts become data frames; str are raw SSE lines (comments)
    cid, model = {
        "openai": ("chatcmpl-P1", "gpt-4o"),
        "gemini": (None, "gemini-2.5-flash"),
        "mistral": ("f" * 32, "mistral-large-latest"),
        "glm": ("20260101abcdef", "glm-4.7"),
        "claude": ("msg_01P", "claude-sonnet-4"),
    }[s.style]

    def ch(
        delta: dict[str, Any], finish: str | None = None, usage: Any = None, index: int = 0
    ) -> dict[str, Any]:
        c: dict[str, Any] = {
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        }
        if cid is not None:
            c["id"] = cid
        if usage is not None:
            c["usage"] = usage
        if s.noise:
            c["system_fingerprint"] = "fp_x"
        return c

    u = s.usage
    if s.style == "openai":
        frames.append(ch({"role": "assistant", "content": None if s.noise else ""}))
        frames += [ch({"content": p}) for p in s.text]
        if s.noise:
            frames.append(ch({"content": "OTHER CHOICE"}, index=1))
        frames += [ch({"refusal": p}) for p in s.refusal]
        for i, c in enumerate(s.calls):
            frames.append(
                ch(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            frames += [
                ch({"tool_calls": [{"index": i, "function": {"arguments": f}}]})
                for f in c.fragments
            ]
        if s.finish is not None:
            frames.append(ch({}, s.finish))
        if u is not None:
            frames.append(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                    "usage": _usage_json(u, True),
                }
            )
            if s.noise:
                frames.append({"id": cid, "choices": [], "usage": None})
    elif s.style == "gemini":
        assert u is not None
        total = len(s.thinking) + len(s.text) + 1
        step = 0

        def gu() -> dict[str, Any]:  # growing usage, the final values on the last chunk
            nonlocal step
            step += 1
            out = (u.output_tokens or 0) * step // total
            return _usage_json(Usage(u.input_tokens, out), False)

        # Thought summaries as Gemini streams them: "<thought>" opens the first flagged
        # piece, "</thought>" heads the first piece after them.
        thought = {"extra_content": {"google": {"thought": True}}}
        opened = ["<thought>" + p if i == 0 else p for i, p in enumerate(s.thinking)]
        closing = "</thought>" if s.thinking else ""
        frames += [ch({"role": "assistant", "content": p, **thought}, usage=gu()) for p in opened]
        frames += [
            ch({"role": "assistant", "content": (closing if i == 0 else "") + p}, usage=gu())
            for i, p in enumerate(s.text)
        ]
        if s.text:
            closing = ""
        last: dict[str, Any] = {"role": "assistant"}
        if s.calls:
            last["tool_calls"] = [
                {
                    "function": {"arguments": "".join(c.fragments), "name": c.name},
                    "id": "",
                    "type": "function",
                }
                for c in s.calls
            ]
        else:
            last["content"] = closing
        frames.append(ch(last, s.finish, gu()))
    elif s.style == "mistral":
        assert u is not None
        frames.append(ch({"role": "assistant", "content": ""}))
        frames += [
            ch({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": p}]}]})
            for p in s.thinking
        ]
        frames += [ch({"content": [{"type": "text", "text": p}] if s.noise else p}) for p in s.text]
        if s.calls:
            frames.append(
                ch(
                    {
                        "tool_calls": [
                            {
                                "id": c.id,
                                "function": {"name": c.name, "arguments": "".join(c.fragments)},
                            }
                            for c in s.calls
                        ]
                    },
                    s.finish,
                    _usage_json(u, False),
                )
            )
        else:
            frames.append(ch({"content": ""}, s.finish, _usage_json(u, False)))
    elif s.style == "glm":
        assert u is not None
        frames += [ch({"role": "assistant", "reasoning_content": p}) for p in s.thinking]
        frames += [ch({"role": "assistant", "content": p}) for p in s.text]
        frames += [
            ch(
                {
                    "tool_calls": [
                        {
                            "id": c.id,
                            "index": i,
                            "type": "function",
                            "function": {"name": c.name, "arguments": "".join(c.fragments)},
                        }
                    ]
                }
            )
            for i, c in enumerate(s.calls)
        ]
        frames.append(ch({"role": "assistant", "content": ""}, s.finish, _usage_json(u, True)))
    else:  # claude proxy
        frames.append(": OPENROUTER PROCESSING")
        frames.append(ch({"role": "assistant"}))
        for p in s.text:
            frames.append(ch({"content": p}))
            if s.noise:
                frames.append(": keep-alive")
        for i, c in enumerate(s.calls):
            first = c.fragments[0] if s.noise and c.fragments else ""
            rest = c.fragments[1:] if s.noise and c.fragments else c.fragments
            frames.append(
                ch(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": first},
                            }
                        ]
                    }
                )
            )
            frames += [
                ch({"tool_calls": [{"index": i, "function": {"arguments": f}}]}) for f in rest
            ]
        usage = _usage_json(u, False) if u is not None else None
        if s.finish is not None:
            frames.append(ch({}, s.finish, usage))
        elif usage is not None:
            frames.append({"id": cid, "choices": [], "usage": usage})
    if s.noise and s.style != "claude":
        frames.insert(min(1, len(frames)), ": ping")
    eol = s.eol
    out = []
    for f in frames:
        if isinstance(f, str):
            out.append(f + eol)
        else:
            sep = "data:" if s.noise else "data: "
            out.append(sep + json.dumps(f, ensure_ascii=s.seed % 2 == 0) + eol + eol)
    if s.send_done:
        out.append("data: [DONE]" + eol + eol)
    return "".join(out).encode("utf-8")


# -- what the provider meant ----------------------------------------------------------------


def expected_stop(s: DrawnStream) -> StopReason:
    f = s.finish
    if f is None or f == "stop":
        return StopReason.TOOL_USE if s.calls else StopReason.END_TURN
    return {
        "length": StopReason.MAX_TOKENS,
        "model_length": StopReason.MAX_TOKENS,
        "tool_calls": StopReason.TOOL_USE,
        "content_filter": StopReason.CONTENT_FILTER,
        "sensitive": StopReason.CONTENT_FILTER,
    }.get(f, StopReason.END_TURN)


def check_meaning(s: DrawnStream, events: list[Any]) -> None:
    assert_invariants(events)
    assert collected_text(events) == "".join(s.text)
    assert collected_text(events, "refusal") == "".join(s.refusal)
    assert collected_thinking(events) == "".join(s.thinking)
    got = tool_calls(events)
    assert [(n, a) for _, n, a in got] == [(c.name, c.args) for c in s.calls]
    for (gid, _, _), c in zip(got, s.calls, strict=True):
        assert gid == (c.id or gid) and gid  # Gemini's "" becomes a usable id
    assert len({gid for gid, _, _ in got}) == len(got)
    assert stop_of(events) == MessageDelta(expected_stop(s), s.finish)
    assert usage_of(events) == (s.usage or Usage())


# -- the properties -------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@SETTINGS
@given(data=st.data())
def test_generated_streams_mean_what_was_generated(style: str, data: st.DataObject) -> None:
    s = data.draw(scripts(style))
    body = render(s)
    events = list(decode_stream(body, DIALECTS["openai"]))
    check_meaning(s, events)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    assert dicts(list(decode_stream(splits(body, cuts), "openai"))) == dicts(events)


@SETTINGS
@given(s=scripts(), provider=st.sampled_from(sorted(DIALECTS)))
def test_any_split_gives_the_same_events(s: DrawnStream, provider: str) -> None:
    body = render(s)
    whole = dicts(list(decode_stream(body, provider)))
    assert dicts(list(decode_stream(bytewise(body), provider))) == whole
    step = 1 + s.seed % 13
    pieces = [body[i : i + step] for i in range(0, len(body), step)]
    assert dicts(list(decode_stream(pieces, provider))) == whole


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(s=scripts(), data=st.data())
def test_a_truncated_body_is_an_error_or_a_clean_prefix(
    s: DrawnStream, data: st.DataObject
) -> None:
    body = render(s)
    full = dicts(list(decode_stream(body, "openai")))
    cut = data.draw(st.integers(0, len(body) - 1))
    events: list[Any] = []
    try:
        for ev in decode_stream(body[:cut], "openai"):
            events.append(ev)
    except StreamError:
        assert_invariants(events, complete=False)
        assert dicts(events) == full[: len(events)]
        return
    except LlmError as err:  # pragma: no cover - the property fails
        raise AssertionError(f"a truncation must be a StreamError, got {err!r}") from err
    # a clean end is only possible once the finish reason (or [DONE]) was in
    assert_invariants(events)
    assert isinstance(events[-1], Done)
    head = dicts(events[:-2])  # Usage may differ: the usage frame may be cut off
    assert head == full[: len(head)]
    assert of_type(events, MessageDelta) == [
        ev for ev in list(decode_stream(body, "openai")) if isinstance(ev, MessageDelta)
    ]


# -- the SSE decoder alone -------------------------------------------------------------------

LINE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12
)


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.sampled_from(["", "message", "error", "x"]),
            st.lists(LINE_TEXT, min_size=1, max_size=3),
        ),
        max_size=6,
    ),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    comments=st.booleans(),
    bom=st.booleans(),
    final_blank=st.booleans(),
    cuts=st.lists(st.integers(0, 400), max_size=10),
)
def test_sse_frames_survive_any_split(
    frames: list[tuple[str, list[str]]],
    eol: str,
    comments: bool,
    bom: bool,
    final_blank: bool,
    cuts: list[int],
) -> None:
    text = "\ufeff" if bom else ""
    for i, (event, lines) in enumerate(frames):
        if comments:
            text += ": comment " + str(i) + eol
        if event:
            text += "event: " + event + eol
        text += "".join("data: " + line + eol for line in lines)
        if i < len(frames) - 1 or final_blank:
            text += eol
    body = text.encode("utf-8")
    expected = [("\n".join(lines), event or "message") for event, lines in frames]
    for pieces in (splits(body, cuts), bytewise(body)):
        dec = SSEDecoder()
        got = []
        for p in pieces:
            got += feed(dec, p)
        got += end(dec)
        assert [(e.data, e.event) for e in got] == expected
