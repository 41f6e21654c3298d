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

from provider_impl.types import StopReason, Usage

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
class Connected:
    """The provider answered with a 2xx status; nothing was received yet."""

    type: ClassVar[Literal["connected"]] = "connected"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}


@dataclass(frozen=True, slots=True)
class MessageStart:
    id: str | None
    model: str | None
    type: ClassVar[Literal["message_start"]] = "message_start"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "model": self.model}


@dataclass(frozen=True, slots=True)
class ContentBlockStart:
    index: int
    content_type: str  # "text" | "thinking" | "tool_use" | "refusal"
    id: str | None = None
    name: str | None = None
    type: ClassVar[Literal["content_block_start"]] = "content_block_start"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.type,
            "index": self.index,
            "content_type": self.content_type,
        }
        if self.content_type == "tool_use":
            d["id"] = self.id
            d["name"] = self.name
        return d


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str
    type: ClassVar[Literal["text_delta"]] = "text_delta"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "index": self.index, "text": self.text}


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    index: int
    thinking: str
    type: ClassVar[Literal["thinking_delta"]] = "thinking_delta"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "index": self.index, "thinking": self.thinking}


@dataclass(frozen=True, slots=True)
class ToolUseInputDelta:
    index: int
    partial_json: str
    type: ClassVar[Literal["tool_use_input_delta"]] = "tool_use_input_delta"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "index": self.index, "partial_json": self.partial_json}


@dataclass(frozen=True, slots=True)
class ToolUseComplete:
    index: int
    id: str
    name: str
    input: dict[str, Any] = field(hash=False)
    # Gemini's extra_content.google.thought_signature for this call, to send back.
    thought_signature: str | None = None
    type: ClassVar[Literal["tool_use_complete"]] = "tool_use_complete"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.type,
            "index": self.index,
            "id": self.id,
            "name": self.name,
            "input": self.input,
        }
        if self.thought_signature is not None:
            d["thought_signature"] = self.thought_signature
        return d


@dataclass(frozen=True, slots=True)
class ContentBlockStop:
    index: int
    type: ClassVar[Literal["content_block_stop"]] = "content_block_stop"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "index": self.index}


@dataclass(frozen=True, slots=True)
class MessageDelta:
    stop_reason: StopReason
    raw_finish_reason: str | None
    type: ClassVar[Literal["message_delta"]] = "message_delta"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "stop_reason": self.stop_reason.value,
            "raw_finish_reason": self.raw_finish_reason,
        }


@dataclass(frozen=True, slots=True)
class Done:
    """The stream ended cleanly. Always last; never after an error."""

    type: ClassVar[Literal["done"]] = "done"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}


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
