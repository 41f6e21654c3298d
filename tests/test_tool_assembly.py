"""Tool calls assembled from fragments however they arrive: a late or split name,
a late id, interleaved indexes, text between fragments — the right calls or a
typed error, never silent loss (docs/RELIABILITY.md, "Tool-call assembly")."""

from __future__ import annotations

from typing import Any

import pytest
from invariants import assert_invariants
from wire import DONE, bytewise, chunk, collected_text, decode, dicts, sse, stop_of, tool_calls

from provider_impl import DeserializationError, StopReason, decode_stream
from provider_impl.response import response_from_events


def call(
    index: int | None = None,
    id: str | None = None,
    name: str | None = None,
    args: str | None = None,
) -> dict[str, Any]:
    fn: dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if args is not None:
        fn["arguments"] = args
    out: dict[str, Any] = {"function": fn}
    if index is not None:
        out["index"] = index
    if id is not None:
        out["id"] = id
    return out


def calls(*items: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return chunk({"tool_calls": list(items)}, finish)


def decoded(*frames: Any, provider: str = "openai") -> list[Any]:
    body = sse(*frames, DONE)
    events = decode(body, provider)
    assert_invariants(events)
    assert dicts(decode(bytewise(body), provider)) == dicts(events)
    return events


def refused(*frames: Any) -> DeserializationError:
    with pytest.raises(DeserializationError) as info:
        list(decode_stream(sse(*frames, DONE), "openai"))
    return info.value


def test_a_name_that_arrives_after_the_arguments() -> None:
    events = decoded(
        calls(call(0, "c1", None, '{"city":')),
        calls(call(0, None, "get_weather", ' "Paris"}')),
        chunk({}, "tool_calls"),
    )
    assert tool_calls(events) == [("c1", "get_weather", {"city": "Paris"})]


def test_a_name_split_across_fragments() -> None:
    events = decoded(
        calls(call(0, "c1", "get_")),
        calls(call(0, None, "weather", '{"city":"Rome"}')),
        chunk({}, "tool_calls"),
    )
    assert tool_calls(events) == [("c1", "get_weather", {"city": "Rome"})]


def test_an_id_that_arrives_late_is_used_not_invented() -> None:
    events = decoded(
        calls(call(0, None, "f", '{"a":')),
        calls(call(0, "call_real", None, "1}")),
        chunk({}, "tool_calls"),
    )
    assert tool_calls(events) == [("call_real", "f", {"a": 1})]


def test_interleaved_calls_stay_apart() -> None:
    events = decoded(
        calls(call(0, "c0", "f", '{"x":'), call(1, "c1", "g", '{"y":')),
        calls(call(1, None, None, "2}")),
        calls(call(0, None, None, "1}")),
        chunk({}, "tool_calls"),
    )
    assert tool_calls(events) == [("c0", "f", {"x": 1}), ("c1", "g", {"y": 2})]
    assert stop_of(events).stop_reason is StopReason.TOOL_USE


def test_text_between_fragments_of_one_call() -> None:
    events = decoded(
        calls(call(0, "c1", "f", '{"q": "a')),
        chunk({"content": "thinking aloud "}),
        calls(call(0, None, None, 'b"}')),
        chunk({}, "tool_calls"),
    )
    assert tool_calls(events) == [("c1", "f", {"q": "ab"})]
    assert collected_text(events) == "thinking aloud "
    assert response_from_events(events).tool_calls[0].arguments == {"q": "ab"}


def test_fragments_by_id_only_interleaved() -> None:
    events = decoded(
        calls(call(None, "a", "f", '{"n":')),
        calls(call(None, "b", "g", '{"m":')),
        calls(call(None, "a", None, "1}")),
        calls(call(None, "b", None, "2}")),
        chunk({}, "tool_calls"),
    )
    assert tool_calls(events) == [("a", "f", {"n": 1}), ("b", "g", {"m": 2})]


def test_invented_ids_never_collide_with_real_ones() -> None:
    # Gemini's whole calls have id "": ids are invented, distinct from the real "call_1".
    events = decoded(
        calls(call(None, "", "f", "{}")),
        calls(call(None, "call_1", "g", "{}")),
        calls(call(None, "", "h", "{}")),
        chunk({}, "stop"),
    )
    ids = [c[0] for c in tool_calls(events)]
    assert len(set(ids)) == 3 and "call_1" in ids


def test_duplicate_ids_are_refused_naming_both_calls() -> None:
    err = refused(
        calls(call(0, "dup", "get_weather", '{"city":"Paris"}')),
        calls(call(1, "dup", "get_local_time", '{"city":"Rome"}')),
        chunk({}, "tool_calls"),
    )
    assert "'dup'" in err.message
    assert "get_weather" in err.message and "get_local_time" in err.message
    assert err.code == "duplicate_tool_call_id"
    # A whole second call with the same id at the same index is a duplicate too.
    err = refused(
        calls(call(0, "dup", "f", "{}")),
        calls(call(0, "dup", "g", "{}")),
        chunk({}, "tool_calls"),
    )
    assert "'f'" in err.message and "'g'" in err.message


@pytest.mark.parametrize("index", ["0", None, 0.5, True, [0]])
def test_a_choice_index_that_is_not_an_integer_is_an_error(index: Any) -> None:
    frame = chunk({"content": "lost?"}, "stop")
    frame["choices"][0]["index"] = index
    with pytest.raises(DeserializationError, match="choice's index"):
        list(decode_stream(sse(frame, DONE), "openai"))


@pytest.mark.parametrize("index", ["0", 1.5, False])
def test_a_tool_index_that_is_not_an_integer_is_an_error(index: Any) -> None:
    bad = call(0, "c", "f", "{}")
    bad["index"] = index
    with pytest.raises(DeserializationError, match="tool call's index"):
        list(decode_stream(sse(calls(bad), chunk({}, "tool_calls"), DONE), "openai"))


def test_a_fragment_after_text_followed_a_complete_call_is_an_error() -> None:
    # The call looked whole and was delivered before the text; more of it cannot be lost.
    err = refused(
        calls(call(0, "c1", "f", "{}")),
        chunk({"content": "and then"}),
        calls(call(0, None, None, '{"late": 1}')),
        chunk({}, "tool_calls"),
    )
    assert "'f'" in err.message and "after text" in err.message
