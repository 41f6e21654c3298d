"""CompletionRequest -> the exact JSON body one provider accepts.

Pure: validates, then builds a dict. Nothing here does I/O, so bad input is
refused before any request is sent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from provider_impl.dialects import ProviderDialect
from provider_impl.errors import InvalidRequest
from provider_impl.types import CompletionRequest, Message, ToolDefinition

__all__ = ["build_payload"]

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_CHOICE_WORDS = frozenset({"auto", "none", "required", "any"})


def _invalid(dialect: ProviderDialect, field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", field=field, provider=dialect.name)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate(request: CompletionRequest, dialect: ProviderDialect) -> None:
    if not request.messages:
        raise _invalid(dialect, "messages", "at least one message is required")
    cap = dialect.capabilities.max_output_tokens
    mt = request.max_tokens
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1 or mt > cap:
        raise _invalid(
            dialect,
            "max_tokens",
            f"must be an integer from 1 to {cap} for {dialect.name}, got {mt!r}",
        )
    t = request.temperature
    t_max = dialect.max_temperature
    if t is not None and (not _is_number(t) or math.isnan(t) or not 0.0 <= t <= t_max):
        raise _invalid(
            dialect, "temperature", f"must be between 0 and {t_max:g} for {dialect.name}, got {t!r}"
        )
    p = request.top_p
    if p is not None and (not _is_number(p) or math.isnan(p) or not 0.0 <= p <= 1.0):
        raise _invalid(dialect, "top_p", f"must be between 0 and 1, got {p!r}")
    if request.stop_sequences is not None:
        if isinstance(request.stop_sequences, str):
            raise _invalid(dialect, "stop_sequences", "must be a list of strings, not a string")
        for i, s in enumerate(request.stop_sequences):
            if not isinstance(s, str) or not s:
                raise _invalid(dialect, f"stop_sequences[{i}]", "must be a non-empty string")
    names: set[str] = set()
    for i, tool in enumerate(request.tools or ()):
        if not isinstance(tool, ToolDefinition):
            raise _invalid(dialect, f"tools[{i}]", "must be a ToolDefinition")
        if not isinstance(tool.name, str) or not _TOOL_NAME.fullmatch(tool.name):
            raise _invalid(
                dialect, f"tools[{i}].name", f"must match [a-zA-Z0-9_-]{{1,64}}, got {tool.name!r}"
            )
        if tool.name in names:
            raise _invalid(dialect, f"tools[{i}].name", f"duplicate tool name {tool.name!r}")
        names.add(tool.name)
        if (
            not isinstance(tool.parameters, dict)
            or tool.parameters.get("type", "object") != "object"
        ):
            raise _invalid(dialect, f"tools[{i}].parameters", "must be a JSON Schema object")
    choice = request.tool_choice
    if isinstance(choice, str) and choice not in _TOOL_CHOICE_WORDS and choice not in names:
        raise _invalid(
            dialect, "tool_choice", f"{choice!r} is neither auto/none/required nor a tool"
        )
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        chosen = fn.get("name") if isinstance(fn, Mapping) else None
        if chosen is not None and chosen not in names:
            raise _invalid(dialect, "tool_choice", f"names {chosen!r}, which is not a tool")
    seen_calls: set[str] = set()
    for i, msg in enumerate(request.messages):
        if not isinstance(msg, Message):
            raise _invalid(dialect, f"messages[{i}]", "must be a Message")
        for call in msg.tool_calls:
            seen_calls.add(call.id)
        if msg.role == "tool" and msg.tool_call_id not in seen_calls:
            raise _invalid(
                dialect,
                f"messages[{i}].tool_call_id",
                f"{msg.tool_call_id!r} answers no tool call made by an earlier assistant message",
            )
        if msg.role in ("user", "system") and not isinstance(msg.content, str):
            raise _invalid(dialect, f"messages[{i}].content", f"a {msg.role} message needs text")


def _message_json(msg: Message) -> dict[str, Any]:
    if msg.role == "tool":
        return {"role": "tool", "tool_call_id": msg.tool_call_id, "content": msg.content or ""}
    if msg.role == "assistant" and msg.tool_calls:
        return {
            "role": "assistant",
            "content": msg.content,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(dict(call.arguments), ensure_ascii=False),
                    },
                }
                for call in msg.tool_calls
            ],
        }
    return {"role": msg.role, "content": msg.content if msg.content is not None else ""}


def _tool_choice_json(choice: Any) -> Any:
    if isinstance(choice, str) and choice not in _TOOL_CHOICE_WORDS:
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, str):
        return choice
    return dict(choice)


def build_payload(
    request: CompletionRequest, dialect: ProviderDialect, model: str, *, stream: bool
) -> dict[str, Any]:
    """The JSON body for ``request`` in ``dialect``; raises ``InvalidRequest`` naming the field."""
    _validate(request, dialect)
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(_message_json(m) for m in request.messages)
    body: dict[str, Any] = {
        "model": request.model or model,
        "messages": messages,
        dialect.max_tokens_param: request.max_tokens,
        "stream": stream,
    }
    if stream and dialect.stream_usage_option:
        body["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop"] = list(request.stop_sequences)
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                },
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice_json(request.tool_choice)
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    for key in dialect.forbidden_params:
        body.pop(key, None)
    if request.extra_body:
        body.update(request.extra_body)
    return body
