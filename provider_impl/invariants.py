"""The DESIGN §3 stream invariants, as one checker shared by tests and the
conformance suite. ``check_invariants`` raises ``AssertionError`` naming the
first broken rule."""

from __future__ import annotations

import json
from collections.abc import Sequence

from provider_impl.events import (
    Connected,
    ContentBlockStart,
    ContentBlockStop,
    Done,
    MessageDelta,
    MessageStart,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolUseComplete,
    ToolUseInputDelta,
)
from provider_impl.types import Usage

__all__ = ["check_invariants"]


def _fail(i: int, ev: object, rule: str) -> AssertionError:
    return AssertionError(f"event {i} ({ev!r}): {rule}")


def check_invariants(events: Sequence[StreamEvent], *, complete: bool = True) -> None:
    """Check one stream's events. ``complete=False`` for a stream that ended in an
    error: then ``Done`` must be absent and the end-of-stream rules are skipped."""
    next_index = 0
    open_block: ContentBlockStart | None = None
    fragments: list[str] = []
    tool_completed = False
    seen_delta = seen_usage = seen_done = seen_start = False
    for i, ev in enumerate(events):
        if seen_done:
            raise _fail(i, ev, "nothing may follow Done")
        if isinstance(ev, Connected):
            if i != 0:
                raise _fail(i, ev, "Connected must be first")
        elif isinstance(ev, MessageStart):
            if seen_start or next_index or seen_delta:
                raise _fail(i, ev, "MessageStart must come once, before any block")
            seen_start = True
        elif isinstance(ev, ContentBlockStart):
            if not seen_start:
                raise _fail(i, ev, "a block before MessageStart")
            if open_block is not None:
                raise _fail(i, ev, f"block {open_block.index} is still open: blocks interleave")
            if ev.index != next_index:
                raise _fail(i, ev, f"expected block index {next_index}")
            if seen_delta:
                raise _fail(i, ev, "no block may start after MessageDelta")
            if ev.content_type == "tool_use" and not (ev.id and ev.name):
                raise _fail(i, ev, "a tool_use block needs an id and a name")
            open_block, fragments, tool_completed = ev, [], False
            next_index += 1
        elif isinstance(ev, (TextDelta, ThinkingDelta, ToolUseInputDelta)):
            if open_block is None or ev.index != open_block.index:
                raise _fail(i, ev, "a delta outside its open block")
            want = {
                TextDelta: ("text", "refusal"),
                ThinkingDelta: ("thinking",),
                ToolUseInputDelta: ("tool_use",),
            }[type(ev)]
            if open_block.content_type not in want:
                raise _fail(i, ev, f"wrong delta for a {open_block.content_type} block")
            if isinstance(ev, ToolUseInputDelta):
                fragments.append(ev.partial_json)
            elif not (ev.text if isinstance(ev, TextDelta) else ev.thinking):
                raise _fail(i, ev, "empty delta")
        elif isinstance(ev, ToolUseComplete):
            if open_block is None or open_block.content_type != "tool_use":
                raise _fail(i, ev, "ToolUseComplete outside a tool_use block")
            if ev.index != open_block.index or tool_completed:
                raise _fail(i, ev, "exactly one ToolUseComplete per tool block")
            if (ev.id, ev.name) != (open_block.id, open_block.name):
                raise _fail(i, ev, "ToolUseComplete id/name differ from its block start")
            joined = "".join(fragments)
            try:
                expected = json.loads(joined) if joined.strip() else {}
            except ValueError:
                raise _fail(i, ev, f"its fragments are not JSON: {joined[:200]!r}") from None
            if ev.input != expected:
                raise _fail(i, ev, f"input differs from its fragments {joined!r}")
            tool_completed = True
        elif isinstance(ev, ContentBlockStop):
            if open_block is None or ev.index != open_block.index:
                raise _fail(i, ev, "ContentBlockStop for a block that is not open")
            if open_block.content_type == "tool_use" and not tool_completed:
                raise _fail(i, ev, "a tool block closed without ToolUseComplete")
            open_block = None
        elif isinstance(ev, MessageDelta):
            if not seen_start:
                raise _fail(i, ev, "MessageDelta before MessageStart")
            if seen_delta:
                raise _fail(i, ev, "MessageDelta must come once")
            if open_block is not None:
                raise _fail(i, ev, "MessageDelta while a block is open")
            seen_delta = True
        elif isinstance(ev, Usage):
            if seen_usage or not seen_delta:
                raise _fail(i, ev, "exactly one Usage, after MessageDelta")
            seen_usage = True
        elif isinstance(ev, Done):
            if not complete:
                raise _fail(i, ev, "Done after an error")
            if not (seen_delta and seen_usage):
                raise _fail(i, ev, "Done must follow MessageDelta and Usage")
            seen_done = True
        else:
            raise _fail(i, ev, "not a StreamEvent")
    if complete:
        if not seen_done:
            raise AssertionError("a complete stream must end with Done")
        if not seen_start:
            raise AssertionError("a complete stream needs MessageStart")
