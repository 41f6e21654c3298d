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
    """The reply began: the provider's message ``id`` and ``model``, where it sent them."""

    id: str | None
    model: str | None
    type: ClassVar[Literal["message_start"]] = "message_start"


@dataclass(frozen=True, slots=True)
class ContentBlockStart(EventData):
    """A block of one kind opens at ``index``: text, thinking, a refusal, or a tool
    call (then with the call's ``id`` and function ``name``)."""

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
    """More answer text for the open text block at ``index``."""

    index: int
    text: str
    type: ClassVar[Literal["text_delta"]] = "text_delta"


@dataclass(frozen=True, slots=True)
class ThinkingDelta(EventData):
    """More reasoning for the thinking block at ``index``: the provider's
    ``reasoning_content``/``reasoning`` field or a ``<thought>`` summary, as the
    dialect record says."""

    index: int
    thinking: str
    type: ClassVar[Literal["thinking_delta"]] = "thinking_delta"


@dataclass(frozen=True, slots=True)
class ToolUseInputDelta(EventData):
    """A piece of a tool call's JSON arguments, as received; the pieces joined
    are the ``input`` of the block's ``ToolUseComplete``."""

    index: int
    partial_json: str
    type: ClassVar[Literal["tool_use_input_delta"]] = "tool_use_input_delta"


@dataclass(frozen=True, slots=True)
class ToolUseComplete(EventData):
    """A tool call is whole: its ``input`` is the parsed JSON object of all its
    argument pieces (empty arguments are ``{}``; any other text that is not a JSON
    object is a ``DeserializationError``)."""

    index: int
    id: str
    name: str
    input: dict[str, Any] = field(hash=False)
    # Gemini's extra_content.google.thought_signature for this call, to send back.
    thought_signature: str | None = field(default=None, metadata=OMIT_IF_NONE)
    type: ClassVar[Literal["tool_use_complete"]] = "tool_use_complete"


@dataclass(frozen=True, slots=True)
class ContentBlockStop(EventData):
    """The block at ``index`` is closed; nothing more arrives for it."""

    index: int
    type: ClassVar[Literal["content_block_stop"]] = "content_block_stop"


@dataclass(frozen=True, slots=True)
class MessageDelta(EventData):
    """How the reply ended: the normalized ``stop_reason`` and the provider's own
    ``raw_finish_reason``."""

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
