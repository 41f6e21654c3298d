"""Request and response types shared by every provider."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "REASONING_EFFORTS",
    "CompletionRequest",
    "CompletionResponse",
    "Message",
    "ReasoningEffort",
    "Role",
    "StopReason",
    "ToolCall",
    "ToolDefinition",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES = frozenset(("system", "user", "assistant", "tool"))

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
#: Every value ``CompletionRequest.reasoning_effort`` may take, least effort first.
#: Which of them a provider (and model) accepts is in its dialect record.
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = (
    "none",
    "minimal",
    "low",
    "medium",
    "high",
    "xhigh",
    "max",
)


class StopReason(str, enum.Enum):
    """Why the model stopped, normalized across providers."""

    END_TURN = "end_turn"
    TOOL_USE = "tool_use"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    CONTENT_FILTER = "content_filter"
    PAUSE_TURN = "pause_turn"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call made by the assistant: ``arguments`` is the parsed JSON object.

    The JSON text of an object, as OpenAI's own wire format carries it
    (``'{"city": "Paris"}'``), is accepted too and parsed here. Text that is not
    a JSON object is kept as given; ``build_payload`` then refuses it with
    ``InvalidRequest`` naming ``messages[i].tool_calls[j].arguments``.

    ``thought_signature`` is Gemini's opaque token for the reasoning behind the
    call (``extra_content.google.thought_signature``; Gemini 3 sends it on the
    first call of a turn and refuses a follow-up that does not return it). Pass
    the decoded ``ToolCall`` back in ``Message.assistant(tool_calls=...)`` and it
    goes back to the dialects that take it (``sends_thought_signatures``).
    """

    id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)
    thought_signature: str | None = None

    def __post_init__(self) -> None:
        raw: object = self.arguments
        if isinstance(raw, str):
            try:
                parsed = json.loads(raw, parse_constant=_refuse_constant)
            except (ValueError, RecursionError):
                return
            if isinstance(parsed, dict):
                object.__setattr__(self, "arguments", parsed)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message.

    ``tool_calls`` is only for assistant messages; ``tool_call_id`` only (and
    always) for ``role="tool"`` messages carrying a tool's result. ``reasoning``
    (assistant only) is the reasoning a reply came with (``CompletionResponse.thinking``);
    it goes back to the dialects whose record names a key for it
    (``reasoning_history_field``) and is left out for the others.
    """

    role: Role
    content: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None
    reasoning: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"Message.role must be one of {sorted(_ROLES)}, got {self.role!r}")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("Message.tool_calls is only allowed on assistant messages")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError("Message.tool_call_id is only allowed on tool messages")
        if self.reasoning is not None and self.role != "assistant":
            raise ValueError("Message.reasoning is only allowed on assistant messages")

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(
        cls,
        content: str | None = None,
        tool_calls: Sequence[ToolCall] = (),
        *,
        reasoning: str | None = None,
    ) -> Message:
        return cls(
            role="assistant", content=content, tool_calls=tuple(tool_calls), reasoning=reasoning
        )

    @classmethod
    def tool_result(cls, tool_call_id: str, content: str) -> Message:
        return cls(role="tool", content=content, tool_call_id=tool_call_id)


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A function the model may call; ``parameters`` is a JSON Schema object.

    ``parameters`` may be any mapping (a ``dict``, a ``MappingProxyType``...);
    its ``"type"``, when present, must be ``"object"``.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}, hash=False
    )


@dataclass(frozen=True)
class CompletionRequest:
    """What to ask for; each provider's dialect turns it into its own JSON body."""

    messages: Sequence[Message]
    model: str | None = None
    system: str | None = None
    max_tokens: int = 4096
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: Sequence[str] | None = None
    tools: Sequence[ToolDefinition] | None = None
    tool_choice: str | Mapping[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    # How hard a reasoning model thinks (one of REASONING_EFFORTS); each dialect
    # sends it its own way (``ProviderDialect.reasoning``) or refuses it.
    reasoning_effort: ReasoningEffort | None = None
    extra_body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts; ``None`` where the provider reported nothing.

    Used both as the stream event and as ``CompletionResponse.usage``.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    type: ClassVar[str] = "usage"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True)
class CompletionResponse:
    """A whole reply, from ``complete()`` or collected from a stream."""

    id: str | None
    model: str | None
    text: str
    thinking: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason = StopReason.END_TURN
    usage: Usage = field(default_factory=Usage)
    raw_finish_reason: str | None = None
    refusal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "text": self.text,
            "thinking": self.thinking,
            "refusal": self.refusal,
            "tool_calls": [_call_dict(c) for c in self.tool_calls],
            "stop_reason": self.stop_reason.value,
            "raw_finish_reason": self.raw_finish_reason,
            "usage": self.usage.to_dict(),
        }


def _call_dict(call: ToolCall) -> dict[str, Any]:
    d: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": dict(call.arguments)}
    if call.thought_signature is not None:  # only Gemini's carry one
        d["thought_signature"] = call.thought_signature
    return d
