"""The stream rules (README "Events"), as one checker shared by the tests, the
fuzzers and the conformance suite. ``check_invariants`` raises
``AssertionError`` naming the event and the rule it breaks.

It knows only the event vocabulary and the rules, nothing of the adapter, so
it can judge any stream.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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
from provider_impl.types import StopReason, Usage

__all__ = ["check_invariants"]

_BLOCK_KINDS = frozenset({"text", "thinking", "tool_use", "refusal"})
_DELTA_KINDS: dict[type, frozenset[str]] = {
    TextDelta: frozenset({"text", "refusal"}),
    ThinkingDelta: frozenset({"thinking"}),
    ToolUseInputDelta: frozenset({"tool_use"}),
}


class _Broken(AssertionError):
    pass


def _fail(i: int, ev: object, rule: str) -> _Broken:
    return _Broken(f"event #{i} {ev!r}: {rule}")


def check_invariants(
    events: Sequence[Any], *, complete: bool = True, connected: bool = False
) -> None:
    """Check one stream's events against every stream rule.

    ``complete=False`` for a stream that ended in an error: then ``Done`` must
    be absent and the end-of-stream rules are skipped. ``connected=True``
    requires ``Connected`` first (a live or ``decode_stream`` stream); without
    it a ``Connected`` is still only allowed first (events straight from a
    ``StreamAdapter`` have none).
    """
    events = list(events)
    next_index = 0
    open_block: ContentBlockStart | None = None
    fragments: list[str] = []
    completed_for_open = 0
    tool_ids: set[str] = set()
    n_connected = n_start = n_delta = n_usage = n_done = 0
    message_delta_at = usage_at = -1

    for i, ev in enumerate(events):
        if n_done:
            raise _fail(i, ev, "nothing may follow Done")
        if hasattr(ev, "to_dict"):
            d = ev.to_dict()
            if d.get("type") != type(ev).type:
                raise _fail(i, ev, "to_dict()['type'] differs from the event's type name")
            json.dumps(d)  # JSON-ready
        if isinstance(ev, Connected):
            n_connected += 1
            if i != 0 or n_connected > 1:
                raise _fail(i, ev, "Connected must be first and only once")
        elif isinstance(ev, MessageStart):
            n_start += 1
            if n_start > 1 or next_index or n_delta or n_usage:
                raise _fail(i, ev, "MessageStart must come once, before any block")
        elif isinstance(ev, ContentBlockStart):
            if not n_start:
                raise _fail(i, ev, "a block before MessageStart")
            if open_block is not None:
                raise _fail(i, ev, f"block {open_block.index} still open: blocks interleave")
            if ev.index != next_index:
                raise _fail(i, ev, f"block indices must run 0,1,2…; expected {next_index}")
            if n_delta:
                raise _fail(i, ev, "no block may start after MessageDelta")
            if ev.content_type not in _BLOCK_KINDS:
                raise _fail(i, ev, f"unknown content_type {ev.content_type!r}")
            if ev.content_type == "tool_use":
                if not (isinstance(ev.id, str) and ev.id and isinstance(ev.name, str)):
                    raise _fail(i, ev, "a tool_use block needs a non-empty id and a name")
                if ev.id in tool_ids:
                    raise _fail(i, ev, f"tool id {ev.id!r} used twice in one stream")
                tool_ids.add(ev.id)
            open_block, fragments, completed_for_open = ev, [], 0
            next_index += 1
        elif isinstance(ev, (TextDelta, ThinkingDelta, ToolUseInputDelta)):
            if open_block is None or ev.index != open_block.index:
                raise _fail(i, ev, "a delta outside its open block")
            if open_block.content_type not in _DELTA_KINDS[type(ev)]:
                raise _fail(i, ev, f"wrong delta type for a {open_block.content_type} block")
            if completed_for_open:
                raise _fail(i, ev, "a delta after ToolUseComplete")
            if isinstance(ev, ToolUseInputDelta):
                if not isinstance(ev.partial_json, str):
                    raise _fail(i, ev, "partial_json must be a string")
                fragments.append(ev.partial_json)
            else:
                piece = ev.text if isinstance(ev, TextDelta) else ev.thinking
                if not isinstance(piece, str) or not piece:
                    raise _fail(i, ev, "text and thinking deltas must be non-empty strings")
        elif isinstance(ev, ToolUseComplete):
            if open_block is None or open_block.content_type != "tool_use":
                raise _fail(i, ev, "ToolUseComplete outside a tool_use block")
            if ev.index != open_block.index:
                raise _fail(i, ev, "ToolUseComplete for another block")
            if completed_for_open:
                raise _fail(i, ev, "more than one ToolUseComplete for one tool block")
            if (ev.id, ev.name) != (open_block.id, open_block.name):
                raise _fail(i, ev, "ToolUseComplete id/name differ from the block's start")
            joined = "".join(fragments)
            try:
                expected = json.loads(joined) if joined.strip() else {}
            except ValueError:
                raise _fail(i, ev, f"its fragments are not JSON: {joined[:200]!r}") from None
            if not isinstance(ev.input, dict) or ev.input != expected:
                raise _fail(i, ev, f"input is not the parse of its fragments {joined!r}")
            completed_for_open = 1
        elif isinstance(ev, ContentBlockStop):
            if open_block is None or ev.index != open_block.index:
                raise _fail(i, ev, "ContentBlockStop for a block that is not open")
            if open_block.content_type == "tool_use" and not completed_for_open:
                raise _fail(i, ev, "a tool block closed without its ToolUseComplete")
            open_block = None
        elif isinstance(ev, MessageDelta):
            if not n_start:
                raise _fail(i, ev, "MessageDelta before MessageStart")
            n_delta += 1
            if n_delta > 1:
                raise _fail(i, ev, "exactly one MessageDelta")
            if open_block is not None:
                raise _fail(i, ev, "MessageDelta while a block is open")
            if not isinstance(ev.stop_reason, StopReason):
                raise _fail(i, ev, "stop_reason must be a StopReason")
            message_delta_at = i
        elif isinstance(ev, Usage):
            n_usage += 1
            if n_usage > 1:
                raise _fail(i, ev, "exactly one Usage (never one per chunk)")
            if not n_delta:
                raise _fail(i, ev, "Usage must come after MessageDelta")
            for name in (
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "reasoning_tokens",
            ):
                value = getattr(ev, name)
                if value is not None and (not isinstance(value, int) or value < 0):
                    raise _fail(i, ev, f"{name} must be a non-negative int or None")
            usage_at = i
        elif isinstance(ev, Done):
            n_done += 1
            if not complete:
                raise _fail(i, ev, "Done in a stream that ended in an error")
            if not (n_delta and n_usage):
                raise _fail(i, ev, "Done must follow MessageDelta and Usage")
        else:
            raise _fail(i, ev, "not a StreamEvent")

    if connected and (not events or not isinstance(events[0], Connected)):
        raise _Broken("the stream must start with Connected")
    if complete:
        if open_block is not None:
            raise _Broken(f"block {open_block.index} never closed")
        if not n_done:
            raise _Broken("a complete stream must end with Done")
        if not n_start:
            raise _Broken("a complete stream needs MessageStart")
        if not (n_delta == 1 and n_usage == 1):
            raise _Broken("a complete stream has exactly one MessageDelta and one Usage")
        if not (message_delta_at < usage_at == len(events) - 2):
            raise _Broken("the stream must end MessageDelta … Usage, Done")
        if events[message_delta_at + 1 : usage_at]:
            raise _Broken("nothing may come between MessageDelta and Usage")
