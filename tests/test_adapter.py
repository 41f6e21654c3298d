"""The stream adapter through ``decode_stream``: hand-written bodies in each wire style of
the wire formats (docs/DIALECTS.md), checked against the stream rules (provider_impl.invariants)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from invariants import assert_invariants
from transports import PROVIDERS
from wire import (
    DONE,
    bytewise,
    chunk,
    collected_text,
    collected_thinking,
    decode,
    dicts,
    of_type,
    sse,
    stop_of,
    tool_calls,
    usage_of,
)

from provider_impl import (
    DeserializationError,
    LlmError,
    OpenAiCompatibleProvider,
    RateLimited,
    StopReason,
    StreamError,
    Usage,
    decode_stream,
)
from provider_impl.adapter import StreamAdapter
from provider_impl.dialects import DIALECTS, GEMINI
from provider_impl.errors import AuthenticationFailed, ContextLengthExceeded, Overloaded
from provider_impl.events import (
    Connected,
    ContentBlockStart,
    ContentBlockStop,
    Done,
    MessageDelta,
    MessageStart,
    TextDelta,
    ThinkingDelta,
    ToolUseComplete,
    ToolUseInputDelta,
)
from provider_impl.invariants import check_invariants
from provider_impl.response import response_from_events
from provider_impl.sse import ServerSentEvent


def _content_kinds() -> list[str]:
    """One dialect per way the adapter can read a content body: of a record it
    reads only ``usage_limit_prefix`` (held-back text) and
    ``reasoning_outside_completion`` (usage); its name and error codes matter
    to error frames alone. Every other dialect would repeat one of these runs."""
    kinds: dict[tuple[object, ...], str] = {}
    for name in PROVIDERS:
        d = DIALECTS[name]
        kinds.setdefault((d.usage_limit_prefix, d.reasoning_outside_completion), name)
    return sorted(kinds.values())


CONTENT_KINDS = _content_kinds()


def decode_checked(body: bytes, provider: str = "openai") -> list[Any]:
    """Decode whole and byte by byte; both must agree and keep the invariants."""
    events = decode(body, provider)
    assert_invariants(events)
    assert dicts(decode(bytewise(body), provider)) == dicts(events)
    return events


def decode_failing(
    body: bytes, provider: str = "openai", step: int = 1
) -> tuple[list[Any], LlmError]:
    """Decode a body that must fail; return what was yielded first and the error."""
    events: list[Any] = []
    with pytest.raises(LlmError) as info:
        for ev in decode_stream(body, provider):
            events.append(ev)
    assert not of_type(events, Done)
    assert_invariants(events, complete=False)
    # the same failure whatever the split
    again: list[Any] = []
    with pytest.raises(type(info.value)):
        for ev in decode_stream([body[i : i + step] for i in range(0, len(body), step)], provider):
            again.append(ev)
    assert dicts(again) == dicts(events)
    return events, info.value


# -- OpenAI ---------------------------------------------------------------------

OPENAI_TOOLS = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Let me "}),
    chunk({"content": "check."}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_A1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Par'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'is", "days": [1, 2]}'}}]}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_B2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
    chunk({}, "tool_calls"),
    {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "model": "test-model",
        "choices": [],
        "usage": {
            "prompt_tokens": 31,
            "completion_tokens": 17,
            "total_tokens": 48,
            "prompt_tokens_details": {"cached_tokens": 16},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    },
    DONE,
)


@pytest.mark.parametrize("provider", CONTENT_KINDS)
def test_openai_fragments_by_index_and_separate_usage_chunk(provider: str) -> None:
    events = decode_checked(OPENAI_TOOLS, provider)
    assert dicts(events) == [
        {"type": "connected"},
        {"type": "message_start", "id": "chatcmpl-test", "model": "test-model"},
        {"type": "content_block_start", "index": 0, "content_type": "text"},
        {"type": "text_delta", "index": 0, "text": "Let me "},
        {"type": "text_delta", "index": 0, "text": "check."},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_type": "tool_use",
            "id": "call_A1",
            "name": "get_weather",
        },
        {"type": "tool_use_input_delta", "index": 1, "partial_json": '{"city": "Par'},
        {"type": "tool_use_input_delta", "index": 1, "partial_json": 'is", "days": [1, 2]}'},
        {
            "type": "tool_use_complete",
            "index": 1,
            "id": "call_A1",
            "name": "get_weather",
            "input": {"city": "Paris", "days": [1, 2]},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_type": "tool_use",
            "id": "call_B2",
            "name": "get_time",
        },
        {"type": "tool_use_input_delta", "index": 2, "partial_json": "{}"},
        {"type": "tool_use_complete", "index": 2, "id": "call_B2", "name": "get_time", "input": {}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "stop_reason": "tool_use", "raw_finish_reason": "tool_calls"},
        {
            "type": "usage",
            "input_tokens": 31,
            "output_tokens": 17,
            "cache_read_input_tokens": 16,
            "reasoning_tokens": 5,
        },
        {"type": "done"},
    ]


def test_usage_chunk_followed_by_other_chunks_and_no_usage_at_all() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    body = sse(
        chunk({"content": "hi"}),
        chunk({}, "stop"),
        {"id": "x", "choices": [], "usage": usage},
        {"id": "x", "choices": [], "system_fingerprint": "fp"},
        {"id": "x", "choices": [], "usage": None},
        DONE,
    )
    events = decode_checked(body)
    assert usage_of(events) == Usage(3, 2, None, None)

    no_usage = decode_checked(sse(chunk({"content": "hi"}), chunk({}, "stop"), DONE))
    assert usage_of(no_usage) == Usage(None, None, None, None)


def test_refusal_is_its_own_block_never_text() -> None:
    body = sse(
        chunk({"role": "assistant", "content": None, "refusal": ""}),
        chunk({"refusal": "I'm sorry, "}),
        chunk({"refusal": "I can't help."}),
        chunk({}, "stop"),
        DONE,
    )
    events = decode_checked(body)
    starts = of_type(events, ContentBlockStart)
    assert [s.content_type for s in starts] == ["refusal"]
    assert collected_text(events, "refusal") == "I'm sorry, I can't help."
    assert collected_text(events, "text") == ""
    resp = response_from_events(events)
    assert resp.text == ""
    assert resp.refusal == "I'm sorry, I can't help."


def test_refusal_and_text_in_one_stream_stay_apart() -> None:
    body = sse(chunk({"content": "Sure"}), chunk({"refusal": "no"}), chunk({}, "stop"), DONE)
    events = decode_checked(body)
    assert [s.content_type for s in of_type(events, ContentBlockStart)] == ["text", "refusal"]
    resp = response_from_events(events)
    assert (resp.text, resp.refusal) == ("Sure", "no")


def test_n_greater_than_one_keeps_choice_zero_only() -> None:
    def two(
        d0: dict[str, Any], d1: dict[str, Any], f0: str | None = None, f1: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": "c",
            "model": "m",
            "choices": [
                {"index": 1, "delta": d1, "finish_reason": f1},
                {"index": 0, "delta": d0, "finish_reason": f0},
            ],
        }

    body = sse(
        two({"content": "zero-a "}, {"content": "ONE-a "}),
        # choice 1 finishes first: that must not end the message
        two({"content": "zero-b"}, {"content": "ONE-b"}, None, "length"),
        {
            "id": "c",
            "choices": [
                {
                    "index": 1,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "t1", "function": {"name": "x", "arguments": "{}"}}
                        ]
                    },
                }
            ],
        },
        two({}, {}, "stop", None),
        DONE,
    )
    events = decode_checked(body)
    assert collected_text(events) == "zero-a zero-b"
    assert tool_calls(events) == []
    assert stop_of(events) == MessageDelta(StopReason.END_TURN, "stop")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", StopReason.END_TURN),
        ("length", StopReason.MAX_TOKENS),
        ("model_length", StopReason.MAX_TOKENS),
        ("tool_calls", StopReason.TOOL_USE),
        ("function_call", StopReason.TOOL_USE),
        ("content_filter", StopReason.CONTENT_FILTER),
        ("sensitive", StopReason.CONTENT_FILTER),
        ("something_new", StopReason.END_TURN),
        ("STOP", StopReason.END_TURN),
    ],
)
def test_finish_reasons_map_and_keep_the_raw_value(raw: str, expected: StopReason) -> None:
    events = decode_checked(sse(chunk({"content": "x"}), chunk({}, raw), DONE))
    assert stop_of(events) == MessageDelta(expected, raw)


def test_done_without_finish_reason_is_a_clean_end() -> None:
    events = decode_checked(sse(chunk({"content": "abc"}), DONE))
    assert stop_of(events).stop_reason is StopReason.END_TURN
    assert stop_of(events).raw_finish_reason is None
    assert isinstance(events[-1], Done)
    assert collected_text(events) == "abc"


def test_done_without_finish_reason_after_tool_fragments_closes_the_call() -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a":'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        DONE,
    )
    events = decode_checked(body)
    assert tool_calls(events) == [("c1", "f", {"a": 1})]
    assert stop_of(events).stop_reason is StopReason.TOOL_USE


def test_finish_reason_without_done_is_a_clean_end() -> None:
    events = decode_checked(sse(chunk({"content": "abc"}), chunk({}, "stop")))
    assert isinstance(events[-1], Done)


def test_only_done() -> None:
    events = decode_checked(sse(DONE))
    # Still one well-formed message: MessageStart (nothing known about it) first.
    assert [type(e) for e in events] == [Connected, MessageStart, MessageDelta, Usage, Done]
    assert events[1] == MessageStart(id=None, model=None)


def test_data_after_done_is_ignored() -> None:
    body = sse(chunk({"content": "a"}), chunk({}, "stop"), DONE) + b"data: not json\n\n"
    events = decode_checked(body)
    assert collected_text(events) == "a"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        sse(chunk({"content": "partial"})),
        sse(chunk({"content": "partial"}))[:-7],
        sse(
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a"'}}
                    ]
                }
            )
        ),
        b": just a comment\n\n",
    ],
    ids=["empty", "no-end", "cut-mid-frame", "cut-mid-tool", "comment-only"],
)
def test_body_without_done_or_finish_reason_is_truncated(body: bytes) -> None:
    events, err = decode_failing(body)
    assert isinstance(err, StreamError)
    assert "truncated" in str(err)
    assert not of_type(events, MessageDelta)
    assert not of_type(events, ToolUseComplete)


# -- Gemini ---------------------------------------------------------------------


def gemini_chunk(delta: dict[str, Any], finish: str | None, prompt: int, out: int) -> dict:
    return {
        "choices": [{"delta": {"role": "assistant", **delta}, "finish_reason": finish, "index": 0}],
        "created": 1700000000,
        "model": "gemini-2.5-flash",
        "object": "chat.completion.chunk",
        "usage": {"completion_tokens": out, "prompt_tokens": prompt, "total_tokens": prompt + out},
    }


@pytest.mark.parametrize("provider", CONTENT_KINDS)
def test_gemini_whole_call_with_stop_is_tool_use(provider: str) -> None:
    body = sse(
        gemini_chunk({"content": "Checking"}, None, 40, 1),
        gemini_chunk({"content": " now"}, None, 40, 3),
        gemini_chunk(
            {
                "tool_calls": [
                    {
                        "function": {"arguments": '{"city":"Oslo"}', "name": "get_weather"},
                        "id": "",
                        "type": "function",
                    }
                ]
            },
            "stop",
            40,
            9,
        ),
        DONE,
    )
    events = decode_checked(body, provider)
    assert events[1] == MessageStart(None, "gemini-2.5-flash")
    (call,) = tool_calls(events)
    assert call[1:] == ("get_weather", {"city": "Oslo"})
    assert isinstance(call[0], str) and call[0]  # a synthesized id, never ""
    assert stop_of(events) == MessageDelta(StopReason.TOOL_USE, "stop")
    # usage on every chunk: the last report, never the sum
    assert usage_of(events) == Usage(40, 9, None, None)
    assert collected_text(events) == "Checking now"


def test_gemini_two_whole_calls_get_distinct_ids() -> None:
    call = {"id": "", "type": "function"}
    body = sse(
        gemini_chunk(
            {
                "tool_calls": [
                    {**call, "function": {"name": "a", "arguments": '{"x":1}'}},
                    {**call, "function": {"name": "b", "arguments": '{"y":2}'}},
                ]
            },
            None,
            10,
            4,
        ),
        gemini_chunk(
            {"tool_calls": [{**call, "function": {"name": "c", "arguments": "{}"}}]}, "stop", 10, 6
        ),
        DONE,
    )
    events = decode_checked(body, "gemini")
    calls = tool_calls(events)
    assert [(n, a) for _, n, a in calls] == [("a", {"x": 1}), ("b", {"y": 2}), ("c", {})]
    assert len({i for i, _, _ in calls}) == 3
    assert stop_of(events).stop_reason is StopReason.TOOL_USE


def test_gemini_text_only_stop_is_end_turn_and_usage_not_summed() -> None:
    body = sse(
        *[gemini_chunk({"content": f"w{i} "}, None, 12, i + 1) for i in range(5)],
        gemini_chunk({"content": ""}, "stop", 12, 5),
        DONE,
    )
    events = decode_checked(body, "gemini")
    assert stop_of(events) == MessageDelta(StopReason.END_TURN, "stop")
    assert usage_of(events) == Usage(12, 5, None, None)
    assert collected_text(events) == "w0 w1 w2 w3 w4 "


def test_gemini_thought_parts_are_thinking() -> None:
    # Gemini's thought summaries: flagged pieces, "<thought>" first, "</thought>" ending
    # them at the head of the first answer piece.
    thought = {"extra_content": {"google": {"thought": True}}}
    body = sse(
        gemini_chunk({"content": "<thought>ponder", **thought}, None, 5, 1),
        gemini_chunk({"content": "ing", **thought}, None, 5, 1),
        gemini_chunk({"content": "</thought>Answer"}, "stop", 5, 2),
        DONE,
    )
    events = decode_checked(body, "gemini")
    assert collected_thinking(events) == "pondering"
    assert collected_text(events) == "Answer"
    assert [s.content_type for s in of_type(events, ContentBlockStart)] == ["thinking", "text"]


def test_gemini_in_band_array_error() -> None:
    body = sse(
        gemini_chunk({"content": "a"}, None, 1, 1),
        [{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}],
    )
    events, err = decode_failing(body, "gemini")
    assert isinstance(err, Overloaded)
    assert err.code == "UNAVAILABLE"
    assert collected_text(events) == "a"


# -- Mistral ---------------------------------------------------------------------

MISTRAL_ID = "0123456789abcdef0123456789abcdef"


def mistral_chunk(
    delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "id": MISTRAL_ID,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "mistral-large-latest",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        c["usage"] = usage
    return c


@pytest.mark.parametrize("provider", CONTENT_KINDS)
def test_mistral_parallel_whole_calls_with_short_ids(provider: str) -> None:
    body = sse(
        mistral_chunk({"role": "assistant", "content": ""}),
        mistral_chunk(
            {
                "tool_calls": [
                    {
                        "id": "aB3dE6gH9",
                        "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
                    },
                    {
                        "id": "Zy8Xw7Vu6",
                        "function": {"name": "sub", "arguments": '{"a": 5, "b": 3}'},
                    },
                ]
            },
            "tool_calls",
            {"prompt_tokens": 90, "total_tokens": 120, "completion_tokens": 30},
        ),
        DONE,
    )
    events = decode_checked(body, provider)
    assert tool_calls(events) == [
        ("aB3dE6gH9", "add", {"a": 1, "b": 2}),
        ("Zy8Xw7Vu6", "sub", {"a": 5, "b": 3}),
    ]
    assert [s.index for s in of_type(events, ContentBlockStart)] == [0, 1]
    assert stop_of(events) == MessageDelta(StopReason.TOOL_USE, "tool_calls")
    assert usage_of(events) == Usage(90, 30, None, None)
    assert events[1] == MessageStart(MISTRAL_ID, "mistral-large-latest")


def test_mistral_thinking_list_parts_then_text() -> None:
    def think(text: str) -> dict[str, Any]:
        return {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": text}]}]}

    body = sse(
        mistral_chunk({"role": "assistant", "content": ""}),
        mistral_chunk(think("Hmm, ")),
        mistral_chunk(think("two plus two.")),
        mistral_chunk({"content": [{"type": "text", "text": "It is "}]}),
        mistral_chunk({"content": "4."}),
        mistral_chunk(
            {"content": ""},
            "stop",
            {"prompt_tokens": 8, "total_tokens": 50, "completion_tokens": 42},
        ),
        DONE,
    )
    events = decode_checked(body, "mistral")
    assert [s.content_type for s in of_type(events, ContentBlockStart)] == ["thinking", "text"]
    assert collected_thinking(events) == "Hmm, two plus two."
    assert collected_text(events) == "It is 4."
    assert usage_of(events) == Usage(8, 42, None, None)
    resp = response_from_events(events)
    assert (resp.thinking, resp.text) == ("Hmm, two plus two.", "It is 4.")


def test_mistral_model_length_and_error_finish() -> None:
    events = decode_checked(sse(mistral_chunk({"content": "abc"}, "model_length")), "mistral")
    assert stop_of(events) == MessageDelta(StopReason.MAX_TOKENS, "model_length")
    _, err = decode_failing(sse(mistral_chunk({"content": "abc"}, "error")), "mistral")
    assert isinstance(err, StreamError)


# -- GLM ---------------------------------------------------------------------------

GLM_ID = "20260101120000abcdef0123456789ab"


def glm_chunk(
    delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": {"role": "assistant", **delta}}
    if finish is not None:
        choice["finish_reason"] = finish
    c: dict[str, Any] = {
        "id": GLM_ID,
        "created": 1700000000,
        "object": "chat.completion.chunk",
        "model": "glm-4.7",
        "choices": [choice],
    }
    if usage is not None:
        c["usage"] = usage
    return c


GLM_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 60,
    "total_tokens": 180,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 45},
}


@pytest.mark.parametrize("provider", CONTENT_KINDS)
def test_glm_reasoning_then_content_then_whole_call(provider: str) -> None:
    body = sse(
        glm_chunk({"reasoning_content": "The user wants"}),
        glm_chunk({"reasoning_content": " the weather."}),
        glm_chunk({"content": "Looking it up"}),
        glm_chunk({"content": "."}),
        glm_chunk(
            {
                "tool_calls": [
                    {
                        "id": "call_0123abcd",
                        "index": 0,
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"location":"Rome"}'},
                    }
                ]
            }
        ),
        glm_chunk({"content": ""}, "tool_calls", GLM_USAGE),
        DONE,
    )
    events = decode_checked(body, provider)
    kinds = [s.content_type for s in of_type(events, ContentBlockStart)]
    assert kinds == ["thinking", "text", "tool_use"]
    assert collected_thinking(events) == "The user wants the weather."
    assert collected_text(events) == "Looking it up."
    assert tool_calls(events) == [("call_0123abcd", "weather", {"location": "Rome"})]
    assert stop_of(events) == MessageDelta(StopReason.TOOL_USE, "tool_calls")
    assert usage_of(events) == Usage(120, 60, 100, 45)


def test_glm_network_error_is_a_stream_error() -> None:
    body = sse(glm_chunk({"content": "partial"}), glm_chunk({}, "network_error"), DONE)
    events, err = decode_failing(body, "glm")
    assert isinstance(err, StreamError)
    assert err.code == "network_error"
    assert collected_text(events) == "partial"
    assert not of_type(events, MessageDelta)


def test_glm_sensitive_is_content_filter() -> None:
    events = decode_checked(
        sse(glm_chunk({"content": "x"}), glm_chunk({}, "sensitive"), DONE), "glm"
    )
    assert stop_of(events) == MessageDelta(StopReason.CONTENT_FILTER, "sensitive")


def test_glm_in_band_error_code_uses_the_dialect_table() -> None:
    body = sse(
        glm_chunk({"content": "x"}),
        {"error": {"code": "1302", "message": "High concurrency usage"}},
    )
    _, err = decode_failing(body, "glm")
    assert isinstance(err, RateLimited)
    assert err.code == "1302"
    assert err.provider == "glm"


def test_reasoning_field_is_thinking() -> None:
    body = sse(
        chunk({"reasoning": "think "}),
        chunk({"reasoning": "more"}),
        chunk({"content": "done"}, "stop"),
        DONE,
    )
    events = decode_checked(body)
    assert collected_thinking(events) == "think more"
    assert collected_text(events) == "done"


# -- Claude proxy ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", CONTENT_KINDS)
def test_claude_proxy_comments_text_fragments_and_no_arg_tool(provider: str) -> None:
    body = sse(
        ": OPENROUTER PROCESSING\n\n",
        chunk({"role": "assistant"}, id="msg_01XYZ", model="claude-sonnet-4"),
        ": keep-alive\n",
        chunk({"content": "I'll look."}, id="msg_01XYZ", model="claude-sonnet-4"),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": ""},
                    }
                ]
            },
            id="msg_01XYZ",
            model="claude-sonnet-4",
        ),
        chunk(
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]},
            id="msg_01XYZ",
            model="claude-sonnet-4",
        ),
        ":\n",
        chunk(
            {"tool_calls": [{"index": 0, "function": {"arguments": '"é ☃"}'}}]},
            id="msg_01XYZ",
            model="claude-sonnet-4",
        ),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_02",
                        "type": "function",
                        "function": {"name": "now", "arguments": ""},
                    }
                ]
            },
            id="msg_01XYZ",
            model="claude-sonnet-4",
        ),
        chunk(
            {},
            "tool_calls",
            id="msg_01XYZ",
            model="claude-sonnet-4",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {},
                "completion_tokens_details": {},
            },
        ),
        DONE,
    )
    events = decode_checked(body, provider)
    assert events[1] == MessageStart("msg_01XYZ", "claude-sonnet-4")
    assert collected_text(events) == "I'll look."
    assert tool_calls(events) == [("toolu_01", "lookup", {"q": "é ☃"}), ("toolu_02", "now", {})]
    # an empty arguments string is not a fragment
    no_arg_block = of_type(events, ContentBlockStart)[2].index
    assert not [e for e in of_type(events, ToolUseInputDelta) if e.index == no_arg_block]
    assert usage_of(events) == Usage(10, 5, None, None)


def test_claude_proxy_mid_stream_error_then_done_is_an_error() -> None:
    body = sse(
        chunk({"content": "Hel"}),
        {"error": {"message": "upstream failed", "type": "api_error"}},
        DONE,
    )
    events, err = decode_failing(body, "claude_subscription")
    assert isinstance(err, StreamError)
    assert "upstream failed" in str(err)
    assert collected_text(events) == "Hel"


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "cls"),
    [
        ({"error": {"message": "boom", "type": "server_error"}}, StreamError),
        (
            {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
            RateLimited,
        ),
        ({"error": {"message": "Overloaded", "type": "overloaded_error"}}, Overloaded),
        ({"error": {"message": "bad key", "code": "invalid_api_key"}}, AuthenticationFailed),
        (
            {
                "error": {
                    "message": "This model's maximum context length is 100 tokens. However, "
                    "your messages resulted in 150 tokens."
                }
            },
            ContextLengthExceeded,
        ),
        ({"error": "plain string error"}, StreamError),
    ],
)
def test_in_band_error_frame_is_a_typed_error(payload: dict[str, Any], cls: type) -> None:
    events, err = decode_failing(sse(chunk({"content": "a"}), payload, DONE))
    assert type(err) is cls
    assert err.provider == "openai"
    assert collected_text(events) == "a"


def test_in_band_error_before_any_chunk() -> None:
    events, err = decode_failing(sse({"error": {"message": "nope", "code": "rate_limited"}}))
    assert isinstance(err, RateLimited)
    assert [type(e) for e in events] == [Connected]


@pytest.mark.parametrize(
    ("data", "cls", "text"),
    [
        (
            '{"error": {"message": "upstream overloaded", "type": "overloaded_error"}}',
            Overloaded,
            "upstream overloaded",
        ),
        ('{"message": "quota", "code": "rate_limit_exceeded"}', RateLimited, "quota"),
        ("connection reset by peer", StreamError, "connection reset by peer"),
        ("", StreamError, ""),
    ],
)
def test_event_error_frame_is_a_typed_error(data: str, cls: type, text: str) -> None:
    body = sse(chunk({"content": "a"})) + f"event: error\ndata: {data}\n\n".encode() + sse(DONE)
    _, err = decode_failing(body)
    assert type(err) is cls
    assert text in str(err)


def test_non_json_arguments_name_the_tool() -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_9",
                        "function": {"name": "search_docs", "arguments": "{not json"},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
        DONE,
    )
    events, err = decode_failing(body)
    assert isinstance(err, DeserializationError)
    assert "search_docs" in str(err)
    assert not of_type(events, ToolUseComplete)


@pytest.mark.parametrize("args", ['"a string"', "[1, 2]", "42", "null"])
def test_arguments_that_are_json_but_not_an_object(args: str) -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "odd_tool", "arguments": args}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
        DONE,
    )
    _, err = decode_failing(body)
    assert isinstance(err, DeserializationError)
    assert "odd_tool" in str(err)


def test_frame_that_is_not_json() -> None:
    _, err = decode_failing(sse(chunk({"content": "a"}), "data: {oops\n\n", DONE))
    assert isinstance(err, DeserializationError)


@pytest.mark.parametrize("frame", ["[1, 2]", "42", '"str"', '{"choices": {"0": 1}}'])
def test_frames_of_the_wrong_json_type(frame: str) -> None:
    _, err = decode_failing(sse(f"data: {frame}\n\n", DONE))
    assert isinstance(err, DeserializationError)


def test_deeply_nested_frame_is_an_llm_error_not_a_crash() -> None:
    _, err = decode_failing(sse("data: " + "[" * 100_000 + "\n\n", DONE), step=4096)
    assert isinstance(err, DeserializationError)


def test_deeply_nested_arguments_are_an_llm_error_not_a_crash() -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c",
                        "function": {"name": "deep", "arguments": '{"a":' + "[" * 100_000},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
        DONE,
    )
    _, err = decode_failing(body, step=4096)
    assert isinstance(err, DeserializationError)
    assert "deep" in str(err)


# -- liberal input --------------------------------------------------------------------


def test_pings_extra_keys_and_empty_frames_are_ignored() -> None:
    body = sse(
        {"type": "ping"},
        "data: \n\n",
        chunk({"content": "x"}, provider="somewhere", x_extra={"nested": [1]}),
        {"object": "chat.completion.chunk", "choices": None},
        chunk({}, "stop"),
        DONE,
    )
    events = decode_checked(body)
    assert collected_text(events) == "x"


def test_legacy_function_call_delta() -> None:
    body = sse(
        chunk({"function_call": {"name": "legacy", "arguments": '{"k":'}}),
        chunk({"function_call": {"arguments": '"v"}'}}),
        chunk({}, "function_call"),
        DONE,
    )
    events = decode_checked(body)
    assert [(n, a) for _, n, a in tool_calls(events)] == [("legacy", {"k": "v"})]
    assert stop_of(events).stop_reason is StopReason.TOOL_USE


def test_arguments_sent_as_an_object() -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c",
                        "function": {"name": "f", "arguments": {"n": [1, {"m": None}]}},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
        DONE,
    )
    events = decode_checked(body)
    assert tool_calls(events) == [("c", "f", {"n": [1, {"m": None}]})]


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    body = sse(
        chunk({"content": "a"}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}
        ),
        chunk({"content": "b"}),
        chunk({}, "stop"),
        DONE,
    )
    events = decode_checked(body)
    assert [s.content_type for s in of_type(events, ContentBlockStart)] == [
        "text",
        "tool_use",
        "text",
    ]
    # stop after a streamed tool call: tool_use (whoever sends it)
    assert stop_of(events).stop_reason is StopReason.TOOL_USE


def test_proxy_reusing_index_for_a_new_whole_call() -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"i":1}'}}
                ]
            }
        ),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c2", "function": {"name": "f", "arguments": '{"i":2}'}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
        DONE,
    )
    events = decode_checked(body)
    assert tool_calls(events) == [("c1", "f", {"i": 1}), ("c2", "f", {"i": 2})]


@pytest.mark.parametrize("args", ["", "{}"])
def test_whole_calls_sharing_an_index_are_all_kept(args: str) -> None:
    # newer Mistral streams put "index": 0 on every whole call
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {"id": "aaaaaaaaa", "index": 0, "function": {"name": "now", "arguments": args}},
                    {
                        "id": "bbbbbbbbb",
                        "index": 0,
                        "function": {"name": "today", "arguments": args},
                    },
                ]
            },
            "tool_calls",
        ),
        DONE,
    )
    events = decode_checked(body, "mistral")
    assert tool_calls(events) == [("aaaaaaaaa", "now", {}), ("bbbbbbbbb", "today", {})]


def test_fragments_repeating_their_id_continue_the_call() -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": ": 1}"}}]}),
        chunk({"tool_calls": [{"id": "c2", "function": {"name": "g", "arguments": '{"b"'}}]}),
        chunk({"tool_calls": [{"id": "c2", "function": {"arguments": ": 2}"}}]}),
        chunk({}, "tool_calls"),
        DONE,
    )
    events = decode_checked(body)
    assert tool_calls(events) == [("c1", "f", {"a": 1}), ("c2", "g", {"b": 2})]


# -- decode_stream's interface -------------------------------------------------------------


def test_decode_stream_accepts_names_dialects_providers_and_iterables() -> None:
    body = sse(chunk({"content": "hello"}), chunk({}, "stop"), DONE)
    by_name = dicts(decode(body, "gemini"))
    assert dicts(list(decode_stream(body, GEMINI))) == by_name
    provider = OpenAiCompatibleProvider.gemini(api_key="test-key")
    assert dicts(list(decode_stream(body, provider))) == by_name
    assert dicts(list(decode_stream(iter([body[:5], b"", body[5:]]), "gemini"))) == by_name
    assert dicts(list(decode_stream(bytearray(body), "gemini"))) == by_name
    assert dicts(list(decode_stream(memoryview(body), "gemini"))) == by_name


def test_decode_stream_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError):
        decode_stream("data: [DONE]\n\n", "openai")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nosuch"):
        decode_stream(b"", "nosuch")
    with pytest.raises(TypeError):
        list(decode_stream(["data: [DONE]\n\n"], "openai"))  # type: ignore[list-item]


def test_decode_stream_is_lazy_and_incremental() -> None:
    """Events come out as soon as their bytes are in, before the body is over."""
    pieces = [sse(chunk({"content": "first"})), sse(chunk({"content": "second"}))]
    seen: list[int] = []

    def source() -> Any:
        for i, p in enumerate(pieces):
            seen.append(i)
            yield p
        seen.append(99)
        yield sse(chunk({}, "stop"), DONE)

    it = decode_stream(source(), "openai")
    assert next(it) == Connected()
    assert seen == []  # nothing read before Connected
    assert isinstance(next(it), MessageStart)
    assert next(it) == ContentBlockStart(0, "text")
    assert next(it) == TextDelta(0, "first")
    assert seen == [0]
    rest = list(it)
    assert isinstance(rest[-1], Done)


def test_stream_adapter_takes_decoded_events_one_way_in_one_way_out() -> None:
    adapter = StreamAdapter(DIALECTS["openai"])
    adapter.receive_event(ServerSentEvent(json.dumps(chunk({"content": "hi"}))))
    adapter.receive_event(ServerSentEvent(json.dumps(chunk({}, "length"))))
    out = adapter.next_events()
    assert adapter.next_events() == []  # taken once
    adapter.receive_event(None)  # the end
    out += adapter.next_events()
    assert_invariants(out, connected=False)
    assert stop_of(out).stop_reason is StopReason.MAX_TOKENS
    adapter.receive_event(None)
    assert adapter.next_events() == []  # already done


def test_stream_adapter_gives_the_events_before_a_bad_frame_then_raises() -> None:
    adapter = StreamAdapter(DIALECTS["openai"])
    adapter.receive_event(ServerSentEvent(json.dumps(chunk({"content": "hi"}))))
    adapter.receive_event(ServerSentEvent("{not json"))
    adapter.receive_event(ServerSentEvent(json.dumps(chunk({"content": "lost"}))))
    assert [e.text for e in adapter.next_events() if isinstance(e, TextDelta)] == ["hi"]
    for _ in range(2):  # the error stays
        with pytest.raises(DeserializationError, match="not valid JSON"):
            adapter.next_events()


# -- the invariants helper can fail -------------------------------------------------------


GOOD = [
    Connected(),
    MessageStart("i", "m"),
    ContentBlockStart(0, "text"),
    TextDelta(0, "a"),
    ContentBlockStop(0),
    ContentBlockStart(1, "tool_use", "t", "f"),
    ToolUseInputDelta(1, '{"a":'),
    ToolUseInputDelta(1, "1}"),
    ToolUseComplete(1, "t", "f", {"a": 1}),
    ContentBlockStop(1),
    MessageDelta(StopReason.TOOL_USE, "tool_calls"),
    Usage(1, 2),
    Done(),
]


def test_invariants_accept_a_good_stream() -> None:
    assert_invariants(GOOD)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda ev: ev[1:],  # no Connected
        lambda ev: [
            *ev[:2],
            ContentBlockStart(1, "text"),
            TextDelta(1, "a"),
            ContentBlockStop(1),
            *ev[5:],
        ],  # index starts at 1, then 1 again
        lambda ev: [*ev[:4], *ev[5:]],  # text block never stopped: blocks interleave
        lambda ev: [*ev[:8], ToolUseComplete(1, "t", "f", {"a": 2}), *ev[9:]],  # wrong input
        lambda ev: [*ev[:9], ev[8], *ev[9:]],  # two ToolUseComplete
        lambda ev: [*ev[:8], *ev[9:]],  # no ToolUseComplete
        lambda ev: [*ev[:-1], Usage(1, 2), ev[-1]],  # two Usage
        lambda ev: [*ev[:-3], ev[-2], ev[-3], ev[-1]],  # Usage before MessageDelta
        lambda ev: [*ev, Done()],  # Done twice
        lambda ev: [*ev[:-1]],  # no Done
        lambda ev: [*ev[:3], TextDelta(0, ""), *ev[3:]],  # empty text
        lambda ev: [*ev[:3], ThinkingDelta(0, "x"), *ev[3:]],  # wrong delta kind
        lambda ev: [
            *ev[:-2],
            ContentBlockStart(2, "text"),
            TextDelta(2, "late"),
            ContentBlockStop(2),
            *ev[-2:],
        ],  # a block after MessageDelta
        lambda ev: [ev[0], *ev[2:3], ev[1], *ev[3:]],  # MessageStart after a block started
        lambda ev: [*ev[:5], ContentBlockStart(1, "tool_use", "t", "g"), *ev[6:]],  # name differs
    ],
)
def test_invariants_reject_broken_streams(mutate: Any) -> None:
    with pytest.raises(AssertionError):
        assert_invariants(mutate(list(GOOD)))


def test_invariants_for_an_errored_stream() -> None:
    partial = GOOD[:4]
    assert_invariants(partial, complete=False)
    with pytest.raises(AssertionError):
        assert_invariants(partial)
    with pytest.raises(AssertionError):
        assert_invariants(GOOD, complete=False)  # Done after an error


def test_event_dicts_are_json_ready() -> None:
    for ev in GOOD:
        d = ev.to_dict()
        assert json.loads(json.dumps(d)) == d


# -- the invariant checker's ordering rules ----------------------------------------------


END = [MessageDelta(StopReason.END_TURN, "stop"), Usage(), Done()]


def test_checker_accepts_a_well_formed_stream() -> None:
    check_invariants(
        [
            Connected(),
            MessageStart("a", "m"),
            ContentBlockStart(0, "text"),
            TextDelta(0, "hi"),
            ContentBlockStop(0),
            *END,
        ]
    )


def test_checker_wants_message_start_before_any_block() -> None:
    with pytest.raises(AssertionError, match="before MessageStart"):
        check_invariants(
            [Connected(), ContentBlockStart(0, "text"), TextDelta(0, "x")], complete=False
        )
    with pytest.raises(AssertionError, match="MessageStart must come once"):
        check_invariants(
            [Connected(), MessageStart(None, None), MessageDelta(StopReason.END_TURN, None),
             MessageStart(None, None)],
            complete=False,
        )  # fmt: skip


def test_checker_reports_unparseable_fragments_as_a_rule_break() -> None:
    events = [
        Connected(),
        MessageStart(None, None),
        ContentBlockStart(0, "tool_use", "c1", "f"),
        ToolUseInputDelta(0, '{"a":'),
        ToolUseComplete(0, "c1", "f", {}),
    ]
    with pytest.raises(AssertionError, match="not JSON"):
        check_invariants(events, complete=False)
