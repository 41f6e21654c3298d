"""The normalized stream vocabulary (README "Events").

Every provider's stream becomes a sequence of these frozen dataclasses. Each has
``to_dict()`` returning a JSON-ready dict whose ``"type"`` is the snake_case
event name; snapshots store those dicts. ``StreamEvent`` is a discriminated
union: each class's ``type`` is a literal, so ``if event.type == "text_delta":``
narrows ``event`` to ``TextDelta`` under mypy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from provider_impl.types import OMIT_IF_NONE, EventData, StopReason, Usage

__all__ = [
    "Connected",
    "ContentBlockStart",
    "ContentBlockStop",
    "Done",
    "MessageDelta",
    "MessageStart",
    "StreamEvent",
    "TextDelta",
    "ThinkingDelta",
    "ToolUseComplete",
    "ToolUseInputDelta",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class Connected(EventData):
    """The provider answered with a 2xx status; nothing was received yet."""

    type: ClassVar[Literal["connected"]] = "connected"


@dataclass(frozen=True, slots=True)
class MessageStart(EventData):
    id: str | None
    model: str | None
    type: ClassVar[Literal["message_start"]] = "message_start"


@dataclass(frozen=True, slots=True)
class ContentBlockStart(EventData):
    index: int
    content_type: str  # "text" | "thinking" | "tool_use" | "refusal"
    id: str | None = None
    name: str | None = None
    type: ClassVar[Literal["content_block_start"]] = "content_block_start"

    def to_dict(self) -> dict[str, Any]:
        d = EventData.to_dict(self)
        if self.content_type != "tool_use":  # only a tool call's block has an id and name
            del d["id"], d["name"]
        return d


@dataclass(frozen=True, slots=True)
class TextDelta(EventData):
    index: int
    text: str
    type: ClassVar[Literal["text_delta"]] = "text_delta"


@dataclass(frozen=True, slots=True)
class ThinkingDelta(EventData):
    index: int
    thinking: str
    type: ClassVar[Literal["thinking_delta"]] = "thinking_delta"


@dataclass(frozen=True, slots=True)
class ToolUseInputDelta(EventData):
    index: int
    partial_json: str
    type: ClassVar[Literal["tool_use_input_delta"]] = "tool_use_input_delta"


@dataclass(frozen=True, slots=True)
class ToolUseComplete(EventData):
    index: int
    id: str
    name: str
    input: dict[str, Any] = field(hash=False)
    # Gemini's extra_content.google.thought_signature for this call, to send back.
    thought_signature: str | None = field(default=None, metadata=OMIT_IF_NONE)
    type: ClassVar[Literal["tool_use_complete"]] = "tool_use_complete"


@dataclass(frozen=True, slots=True)
class ContentBlockStop(EventData):
    index: int
    type: ClassVar[Literal["content_block_stop"]] = "content_block_stop"


@dataclass(frozen=True, slots=True)
class MessageDelta(EventData):
    stop_reason: StopReason
    raw_finish_reason: str | None
    type: ClassVar[Literal["message_delta"]] = "message_delta"


@dataclass(frozen=True, slots=True)
class Done(EventData):
    """The stream ended cleanly. Always last; never after an error."""

    type: ClassVar[Literal["done"]] = "done"


StreamEvent = (
    Connected
    | MessageStart
    | ContentBlockStart
    | TextDelta
    | ThinkingDelta
    | ToolUseInputDelta
    | ToolUseComplete
    | ContentBlockStop
    | MessageDelta
    | Usage
    | Done
)
