"""Request and response types shared by every provider."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from provider_impl.errors import UsageError

__all__ = [
    "REASONING_EFFORTS",
    "AudioPart",
    "Choice",
    "CompletionRequest",
    "CompletionResponse",
    "ContentPart",
    "FilePart",
    "ImagePart",
    "Message",
    "ReasoningEffort",
    "ResponseFormat",
    "Role",
    "StopReason",
    "TextPart",
    "TokenLogprob",
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
    raise UsageError(f"{name} is not JSON")


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
class TextPart:
    """A piece of text in a message made of parts."""

    text: str
    kind: ClassVar[Literal["text"]] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image: a URL (``https:`` or ``data:``), or raw ``data`` with its ``media_type``.

    ``detail`` (``"auto"``, ``"low"``, ``"high"``) is sent where the dialect takes it.
    """

    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    kind: ClassVar[Literal["image"]] = "image"


@dataclass(frozen=True, slots=True)
class AudioPart:
    """Audio bytes and their format (``"wav"``, ``"mp3"``, ...), sent base64-encoded."""

    data: bytes = field(repr=False)
    format: str
    kind: ClassVar[Literal["audio"]] = "audio"


@dataclass(frozen=True, slots=True)
class FilePart:
    """A document (a PDF...): raw ``data`` with its ``media_type``, a ``url``, or the
    ``file_id`` of a file uploaded to the provider beforehand. ``filename`` is sent
    where the dialect takes one."""

    data: bytes | None = field(default=None, repr=False)
    media_type: str | None = None
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    kind: ClassVar[Literal["file"]] = "file"


#: One part of a message's content; each dialect record says which it can send
#: (``ProviderDialect.content_parts``) and refuses the others before any I/O.
ContentPart = TextPart | ImagePart | AudioPart | FilePart


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message.

    ``content`` is text, or a sequence of parts (``TextPart``, ``ImagePart``,
    ``AudioPart``, ``FilePart``); media parts go in user messages only.
    ``tool_calls`` is only for assistant messages; ``tool_call_id`` only (and
    always) for ``role="tool"`` messages carrying a tool's result. ``reasoning``
    (assistant only) is the reasoning a reply came with (``CompletionResponse.thinking``);
    it goes back to the dialects whose record names a key for it
    (``reasoning_history_field``) and is left out for the others.
    """

    role: Role
    content: str | Sequence[ContentPart] | None = None
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None
    reasoning: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise UsageError(f"Message.role must be one of {sorted(_ROLES)}, got {self.role!r}")
        if self.tool_calls and self.role != "assistant":
            raise UsageError("Message.tool_calls is only allowed on assistant messages")
        if self.role == "tool" and not self.tool_call_id:
            raise UsageError("a tool message needs tool_call_id")
        if self.tool_call_id is not None and self.role != "tool":
            raise UsageError("Message.tool_call_id is only allowed on tool messages")
        if self.reasoning is not None and self.role != "assistant":
            raise UsageError("Message.reasoning is only allowed on assistant messages")

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str | Sequence[ContentPart]) -> Message:
        return cls(role="user", content=content if isinstance(content, str) else tuple(content))

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


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """What shape the reply's text must have: plain ``text``, any JSON object
    (``json_object``), or JSON matching ``schema`` (``json_schema``; ``strict``
    asks the provider to enforce it exactly). Use the class methods."""

    type: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None = field(default=None, hash=False)
    name: str | None = None
    description: str | None = None
    strict: bool | None = None

    @classmethod
    def text(cls) -> ResponseFormat:
        return cls("text")

    @classmethod
    def json_object(cls) -> ResponseFormat:
        return cls("json_object")

    @classmethod
    def json_schema(
        cls,
        name: str,
        schema: Mapping[str, Any],
        *,
        strict: bool | None = True,
        description: str | None = None,
    ) -> ResponseFormat:
        return cls("json_schema", schema=schema, name=name, description=description, strict=strict)


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
    # Typed options; each dialect sends them under its own key or refuses them
    # (``ProviderDialect.request_options``, ``response_formats``).
    response_format: ResponseFormat | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    # Several choices: decoded per choice by complete() (``CompletionResponse.choices``);
    # a stream keeps no choices apart, so n > 1 is refused for streaming.
    n: int | None = None
    extra_body: Mapping[str, Any] | None = None


# A field left out of ``to_dict()`` while it is None: one only some providers report.
OMIT_IF_NONE: Mapping[str, bool] = {"omit_if_none": True}


class EventData:
    """``to_dict()`` of the stream events (``provider_impl.events`` and ``Usage``):
    ``"type"``, then every field in declaration order, an enum as its value; a field
    whose metadata is ``OMIT_IF_NONE`` is left out while it is None. Snapshots store
    these dicts."""

    __slots__ = ()
    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        for f in fields(self):  # type: ignore[arg-type]  # every subclass is a dataclass
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_if_none"):
                continue
            d[f.name] = value.value if isinstance(value, enum.Enum) else value
        return d


@dataclass(frozen=True, slots=True)
class Usage(EventData):
    """Token counts; ``None`` where the provider reported nothing.

    Used both as the stream event and as ``CompletionResponse.usage``.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    # Prompt tokens written to the provider's cache (billed above the input price);
    # like cache reads, counted inside input_tokens.
    cache_write_input_tokens: int | None = field(default=None, metadata=OMIT_IF_NONE)
    type: ClassVar[Literal["usage"]] = "usage"


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token's log probability, and the likeliest alternatives
    (``top_logprobs``, when the request asked for them)."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    top_logprobs: tuple[TokenLogprob, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": list(self.bytes) if self.bytes is not None else None,
            "top_logprobs": [t.to_dict() for t in self.top_logprobs],
        }


@dataclass(frozen=True)
class Choice:
    """One of the ``n`` choices of a whole reply (``CompletionResponse.choices``)."""

    index: int
    text: str
    thinking: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason = StopReason.END_TURN
    raw_finish_reason: str | None = None
    refusal: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    parsed: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            **_answer_dict(self),
            "logprobs": [t.to_dict() for t in self.logprobs] if self.logprobs is not None else None,
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
    # The tokens' log probabilities, when the request set logprobs (whole replies).
    logprobs: tuple[TokenLogprob, ...] | None = None
    # The reply's JSON, parsed, when the request asked for json_schema or
    # json_object and the text is JSON; None otherwise.
    parsed: Any = None
    # Every choice of a reply to a request with n > 1 (the fields above are choice 0's);
    # empty for a single choice.
    choices: tuple[Choice, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            **_answer_dict(self),
            "usage": self.usage.to_dict(),
        }
        # Only when present, so replies without them keep their recorded snapshots.
        if self.logprobs is not None:
            d["logprobs"] = [t.to_dict() for t in self.logprobs]
        if self.parsed is not None:
            d["parsed"] = self.parsed
        if self.choices:
            d["choices"] = [c.to_dict() for c in self.choices]
        return d


def _answer_dict(answer: Choice | CompletionResponse) -> dict[str, Any]:
    """What a choice and a whole reply both say, in their ``to_dict`` order."""
    return {
        "text": answer.text,
        "thinking": answer.thinking,
        "refusal": answer.refusal,
        "tool_calls": [_call_dict(c) for c in answer.tool_calls],
        "stop_reason": answer.stop_reason.value,
        "raw_finish_reason": answer.raw_finish_reason,
    }


def _call_dict(call: ToolCall) -> dict[str, Any]:
    d: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": dict(call.arguments)}
    if call.thought_signature is not None:  # only Gemini's carry one
        d["thought_signature"] = call.thought_signature
    return d
