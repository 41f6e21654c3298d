"""CompletionRequest -> the exact JSON body one provider accepts.

Pure: validates, then builds a dict. Nothing here does I/O, so bad input is
refused (``InvalidRequest`` naming the field) before any request is sent.

Every iterable in the request (``messages``, ``tools``, ``stop_sequences``, a
message's ``tool_calls``) is read exactly once, so a generator is checked and
sent whole rather than consumed by the checks and sent empty.
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import re
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from provider_impl.dialects import ProviderDialect, thawed
from provider_impl.errors import InvalidRequest, UsageError
from provider_impl.types import (
    REASONING_EFFORTS,
    AudioPart,
    CompletionRequest,
    FilePart,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolDefinition,
)

__all__ = ["build_payload"]

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_CHOICE_WORDS = frozenset({"auto", "none", "required", "any"})
_NEEDS_TOOLS = frozenset({"required", "any"})
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_NO_TOOLS = "{} cannot call tools (its record says tool_calling=False); it would ignore them"


def _invalid(dialect: ProviderDialect, field: str, message: str) -> InvalidRequest:
    """A request this dialect cannot carry, refused before any I/O: local misuse."""
    return UsageError(f"{field}: {message}", field=field, provider=dialect.name)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: object) -> str:
    return type(value).__name__


def _items(
    dialect: ProviderDialect,
    field: str,
    value: object,
    what: str,
    single: type,
    *,
    ordered: bool = False,
) -> tuple[Any, ...]:
    """``value`` read once into a tuple; text, a mapping or a lone item is refused.

    With ``ordered``, so is a set: the order of messages is part of their meaning.
    """
    if (
        isinstance(value, (str, bytes, bytearray, Mapping, single))
        or (ordered and isinstance(value, Set))
        or not isinstance(value, Iterable)
    ):
        got = "a set, which has no order" if isinstance(value, Set) else _kind(value)
        raise _invalid(dialect, field, f"must be a list of {what}, got {got}")
    return tuple(value)


def _dumps(value: Any) -> str:
    """Strict JSON (no NaN or Infinity, which no provider parses)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _json_value(dialect: ProviderDialect, field: str, value: Any) -> Any:
    """``value`` as plain JSON data, or ``InvalidRequest`` naming ``field``."""
    try:
        plain = thawed(value)
        _dumps(plain)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _invalid(dialect, field, _not_json(exc)) from None
    return plain


def _not_json(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "is not JSON-serialisable: nested too deeply, or holds itself"
    return f"is not JSON-serialisable: {exc}"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True)
class _Call:
    id: str
    name: str
    arguments: str  # the JSON text sent on the wire
    thought_signature: str | None = None


@dataclass(frozen=True)
class _Checked:
    """The request's iterables, each read once, checked and normalised."""

    messages: tuple[Message, ...]
    contents: tuple[str | list[dict[str, Any]] | None, ...]  # per message, as sent
    calls: tuple[tuple[_Call, ...], ...]  # per message
    stop: tuple[str, ...]
    tools: tuple[tuple[str, str, dict[str, Any]], ...]  # name, description, parameters
    tool_choice: Any
    extra_body: dict[str, Any] | None


def _check_arguments(dialect: ProviderDialect, field: str, raw: object) -> str:
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            raise _invalid(
                dialect, field, "must be a JSON object or its JSON text; this text is not JSON"
            ) from None
        if not isinstance(parsed, dict):
            raise _invalid(
                dialect, field, f"JSON text must hold an object, it holds a {_kind(parsed)}"
            )
        args: Any = parsed
    elif isinstance(raw, Mapping):
        args = raw
    else:
        raise _invalid(dialect, field, f"must be a mapping or JSON object text, got {_kind(raw)}")
    try:
        return _dumps(thawed(dict(args)))
    except (TypeError, ValueError, RecursionError) as exc:
        raise _invalid(dialect, field, _not_json(exc)) from None


def _check_call(dialect: ProviderDialect, where: str, call: object) -> _Call:
    if not isinstance(call, ToolCall):
        raise _invalid(dialect, where, f"must be a ToolCall, got {_kind(call)}")
    if not isinstance(call.id, str) or not call.id:
        raise _invalid(dialect, f"{where}.id", f"must be a non-empty string, got {call.id!r}")
    if not isinstance(call.name, str) or not _TOOL_NAME.fullmatch(call.name):
        raise _invalid(
            dialect, f"{where}.name", f"must match [a-zA-Z0-9_-]{{1,64}}, got {call.name!r}"
        )
    args = _check_arguments(dialect, f"{where}.arguments", call.arguments)
    sig = call.thought_signature
    if sig is not None and (not isinstance(sig, str) or not sig):
        raise _invalid(
            dialect,
            f"{where}.thought_signature",
            f"must be a non-empty string or None, got {sig!r}",
        )
    return _Call(call.id, call.name, args, sig)


_PARTS = (TextPart, ImagePart, AudioPart, FilePart)
_DETAILS = frozenset({"auto", "low", "high"})


def _is_data(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def _b64(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _one_source(dialect: ProviderDialect, where: str, part: object, names: tuple[str, ...]) -> str:
    """The one of ``names`` that ``part`` sets; refused unless exactly one is set."""
    given = [n for n in names if getattr(part, n) is not None]
    if len(given) != 1:
        wanted = " or ".join(names)
        got = f"got {' and '.join(given)}" if given else "got none"
        raise _invalid(dialect, where, f"needs exactly one of {wanted}, {got}")
    return given[0]


def _media_type(dialect: ProviderDialect, where: str, value: object, prefix: str = "") -> str:
    if not isinstance(value, str) or "/" not in value or not value.startswith(prefix):
        wanted = f"a {prefix}* media type" if prefix else "a media type (type/subtype)"
        raise _invalid(dialect, f"{where}.media_type", f"must be {wanted}, got {value!r}")
    return value


def _url(dialect: ProviderDialect, where: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://", "data:")):
        raise _invalid(dialect, where, f"must be an http(s) or data: URL, got {value!r}")
    return value


def _image_json(dialect: ProviderDialect, where: str, part: ImagePart, form: str) -> dict[str, Any]:
    source = _one_source(dialect, where, part, ("url", "data"))
    if source == "url":
        url = _url(dialect, f"{where}.url", part.url)
    else:
        if not _is_data(part.data):
            raise _invalid(dialect, f"{where}.data", f"must be bytes, got {_kind(part.data)}")
        media = _media_type(dialect, where, part.media_type, "image/")
        url = f"data:{media};base64,{_b64(part.data)}"  # type: ignore[arg-type]
    image: dict[str, Any] = {"url": url}
    if part.detail is not None:
        if part.detail not in _DETAILS:
            raise _invalid(
                dialect, f"{where}.detail", f"must be auto, low, high or None, got {part.detail!r}"
            )
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _audio_json(dialect: ProviderDialect, where: str, part: AudioPart, form: str) -> dict[str, Any]:
    if not _is_data(part.data) or not part.data:
        raise _invalid(dialect, f"{where}.data", "must be non-empty bytes")
    fmt = part.format
    allowed = dialect.audio_formats
    if not isinstance(fmt, str) or not fmt or (allowed and fmt not in allowed):
        wanted = ", ".join(sorted(allowed)) if allowed else "a non-empty format name"
        raise _invalid(
            dialect, f"{where}.format", f"{dialect.name} takes audio as {wanted}, got {fmt!r}"
        )
    data = _b64(part.data)
    if form == "input_audio_base64":
        return {"type": "input_audio", "input_audio": data}
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


def _file_json(dialect: ProviderDialect, where: str, part: FilePart, form: str) -> dict[str, Any]:
    source = _one_source(dialect, where, part, ("data", "url", "file_id"))
    name = part.filename
    if name is not None and (not isinstance(name, str) or not name):
        raise _invalid(dialect, f"{where}.filename", f"must be a non-empty string, got {name!r}")
    if source == "file_id":
        if not isinstance(part.file_id, str) or not part.file_id:
            raise _invalid(dialect, f"{where}.file_id", "must be a non-empty string")
        if form == "document_url":
            return {"type": "file", "file_id": part.file_id}
        if form == "file_or_url":
            raise _invalid(dialect, f"{where}.file_id", f"{dialect.name} takes no file ids")
        return {"type": "file", "file": {"file_id": part.file_id}}
    if source == "url":
        url = _url(dialect, f"{where}.url", part.url)
        if form == "file":
            raise _invalid(
                dialect, f"{where}.url", f"{dialect.name} takes a document as data or a file_id"
            )
    else:
        if not _is_data(part.data):
            raise _invalid(dialect, f"{where}.data", f"must be bytes, got {_kind(part.data)}")
        media = _media_type(dialect, where, part.media_type)
        url = f"data:{media};base64,{_b64(part.data)}"  # type: ignore[arg-type]
        if name is None and form != "document_url":  # OpenAI wants a name with file_data
            name = "document" + (mimetypes.guess_extension(media) or "")
    if form == "document_url":
        doc: dict[str, Any] = {"type": "document_url", "document_url": url}
        if name is not None:
            doc["document_name"] = name
        return doc
    file: dict[str, Any] = {"file_data": url}
    if name is not None:
        file["filename"] = name
    return {"type": "file", "file": file}


_BUILDERS: dict[type, Callable[[ProviderDialect, str, Any, str], dict[str, Any]]] = {
    ImagePart: _image_json,
    AudioPart: _audio_json,
    FilePart: _file_json,
}


def _check_content(
    dialect: ProviderDialect, where: str, role: str, content: object
) -> str | list[dict[str, Any]] | None:
    """Text as it is, or the parts in the dialect's wire forms (``content_parts``)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, _PARTS):
        raise _invalid(dialect, where, "must be text or a list of parts, got a lone part")
    parts = _items(dialect, where, content, "content parts", str, ordered=True)
    if not parts:
        raise _invalid(dialect, where, "a list of parts needs at least one part")
    forms = dialect.content_parts
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    for j, part in enumerate(parts):
        at = f"{where}[{j}]"
        if not isinstance(part, _PARTS):
            raise _invalid(
                dialect,
                at,
                f"must be a TextPart, ImagePart, AudioPart or FilePart, got {_kind(part)}",
            )
        if isinstance(part, TextPart):
            if not isinstance(part.text, str):
                raise _invalid(dialect, f"{at}.text", f"must be text, got {_kind(part.text)}")
            texts.append(part.text)
            out.append({"type": "text", "text": part.text})
            continue
        if role != "user":
            raise _invalid(dialect, at, f"only user messages carry {part.kind} parts, not {role}")
        form = forms.get(part.kind)
        if form is None:
            raise _invalid(
                dialect,
                at,
                f"{dialect.name} cannot take {part.kind} parts (its record's content_parts "
                f"has no {part.kind}; it takes {', '.join(forms) or 'text only'})",
            )
        out.append(_BUILDERS[type(part)](dialect, at, part, form))
    if "text" not in forms:  # an endpoint that reads content as a string only
        return "\n".join(texts)
    return out


def _check_messages(
    request: CompletionRequest, dialect: ProviderDialect
) -> tuple[
    tuple[Message, ...],
    tuple[str | list[dict[str, Any]] | None, ...],
    tuple[tuple[_Call, ...], ...],
]:
    messages = _items(dialect, "messages", request.messages, "Message", Message, ordered=True)
    if not messages:
        raise _invalid(dialect, "messages", "at least one message is required")
    contents: list[str | list[dict[str, Any]] | None] = []
    all_calls: list[tuple[_Call, ...]] = []
    seen_calls: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, Message):
            raise _invalid(dialect, where, f"must be a Message, got {_kind(msg)}")
        role = msg.role
        if role not in _ROLES:
            raise _invalid(dialect, f"{where}.role", f"must be one of {sorted(_ROLES)}")
        if role == "tool" and not dialect.capabilities.tool_calling:
            raise _invalid(dialect, f"{where}.role", _NO_TOOLS.format(dialect.name))
        if msg.tool_calls and not dialect.capabilities.tool_calling:
            raise _invalid(dialect, f"{where}.tool_calls", _NO_TOOLS.format(dialect.name))
        content = _check_content(dialect, f"{where}.content", role, msg.content)
        if role in ("user", "system") and content is None:
            raise _invalid(dialect, f"{where}.content", f"a {role} message needs text or parts")
        if role == "tool" and content is None:
            raise _invalid(dialect, f"{where}.content", "a tool result needs text or text parts")
        contents.append(content)
        if msg.reasoning is not None and not isinstance(msg.reasoning, str):
            raise _invalid(
                dialect, f"{where}.reasoning", f"must be text or None, got {_kind(msg.reasoning)}"
            )
        raw_calls = msg.tool_calls
        if raw_calls is None or (role != "assistant" and not raw_calls):
            calls: tuple[_Call, ...] = ()
        else:
            items = _items(
                dialect, f"{where}.tool_calls", raw_calls, "ToolCall", ToolCall, ordered=True
            )
            calls = tuple(
                _check_call(dialect, f"{where}.tool_calls[{j}]", c) for j, c in enumerate(items)
            )
        if calls and role != "assistant":
            raise _invalid(dialect, f"{where}.tool_calls", "only assistant messages make calls")
        seen_calls.update(c.id for c in calls)
        all_calls.append(calls)
        call_id = msg.tool_call_id
        if role == "tool" and not isinstance(call_id, str):
            raise _invalid(
                dialect, f"{where}.tool_call_id", f"must be a string, got {_kind(call_id)}"
            )
        if role == "tool" and call_id not in seen_calls:
            raise _invalid(
                dialect,
                f"{where}.tool_call_id",
                f"{call_id!r} answers no tool call made by an earlier assistant message",
            )
    return messages, tuple(contents), tuple(all_calls)


def _check_tools(
    request: CompletionRequest, dialect: ProviderDialect
) -> tuple[tuple[str, str, dict[str, Any]], ...]:
    if request.tools is None:
        return ()
    items = _items(dialect, "tools", request.tools, "ToolDefinition", ToolDefinition)
    names: set[str] = set()
    tools: list[tuple[str, str, dict[str, Any]]] = []
    for i, tool in enumerate(items):
        if not isinstance(tool, ToolDefinition):
            raise _invalid(dialect, f"tools[{i}]", f"must be a ToolDefinition, got {_kind(tool)}")
        if not isinstance(tool.name, str) or not _TOOL_NAME.fullmatch(tool.name):
            raise _invalid(
                dialect, f"tools[{i}].name", f"must match [a-zA-Z0-9_-]{{1,64}}, got {tool.name!r}"
            )
        if tool.name in names:
            raise _invalid(dialect, f"tools[{i}].name", f"duplicate tool name {tool.name!r}")
        names.add(tool.name)
        if not isinstance(tool.description, str):
            raise _invalid(
                dialect, f"tools[{i}].description", f"must be text, got {_kind(tool.description)}"
            )
        if not isinstance(tool.parameters, Mapping):
            raise _invalid(
                dialect,
                f"tools[{i}].parameters",
                f"must be a JSON Schema object (a mapping), got {_kind(tool.parameters)}",
            )
        params = dict(tool.parameters)
        if params.get("type", "object") != "object":
            raise _invalid(
                dialect,
                f"tools[{i}].parameters",
                f'must be a JSON Schema object: "type" must be "object", got {params["type"]!r}',
            )
        params = _json_value(dialect, f"tools[{i}].parameters", params)
        tools.append((tool.name, tool.description, params))
    return tuple(tools)


def _check_tool_choice(choice: object, names: set[str], dialect: ProviderDialect) -> Any:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in _NEEDS_TOOLS and not names:
            raise _invalid(dialect, "tool_choice", f"{choice!r} needs tools, and none are given")
        if choice not in _TOOL_CHOICE_WORDS and choice not in names:
            if not names:
                raise _invalid(
                    dialect, "tool_choice", f"names the tool {choice!r}, but no tools are given"
                )
            raise _invalid(
                dialect, "tool_choice", f"{choice!r} is neither auto/none/required nor a tool"
            )
        return choice
    if isinstance(choice, Mapping):
        if "function" in choice:
            fn = choice["function"]
            chosen = fn.get("name") if isinstance(fn, Mapping) else None
            if not isinstance(chosen, str):
                raise _invalid(
                    dialect, "tool_choice", 'its "function" must be {"name": <a tool name>}'
                )
            if chosen not in names:
                why = "which is not a tool" if names else "but no tools are given"
                raise _invalid(dialect, "tool_choice", f"names {chosen!r}, {why}")
        return _json_value(dialect, "tool_choice", choice)
    raise _invalid(
        dialect,
        "tool_choice",
        f"must be 'auto', 'none', 'required', a tool's name or a mapping, got {_kind(choice)}",
    )


def _check_extra_body(extra: object, dialect: ProviderDialect) -> dict[str, Any] | None:
    if extra is None:
        return None
    if not isinstance(extra, Mapping):
        raise _invalid(dialect, "extra_body", f"must be a mapping, got {_kind(extra)}")
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if not isinstance(key, str):
            raise _invalid(dialect, "extra_body", f"keys must be strings, got {key!r}")
        out[key] = _json_value(dialect, f"extra_body.{key}", value)
    return out


def _has_items(value: object) -> bool:
    """A non-empty tools list (an empty one asks for nothing); anything else is checked later."""
    return not isinstance(value, (list, tuple)) or bool(value)


def _model_for(dialect: ProviderDialect, name: str) -> str:
    """The model name to send: the record's ``model_names`` decide when it has any."""
    table = dialect.model_names
    if not table or name in table.values():
        return name
    for word, sent in table.items():
        if word in name:
            return sent
    known = ", ".join(sorted(set(table.values())))
    raise _invalid(
        dialect,
        "model",
        f"{dialect.name} knows no model {name!r}; use one of {known} "
        f"(or a name containing {', '.join(table)})",
    )


def _check_prompt_argument(dialect: ProviderDialect, messages: list[dict[str, Any]]) -> None:
    """Refuse a conversation too big for the one command-line argument it becomes."""
    limit = dialect.prompt_arg_max_bytes
    if limit is None:
        return
    templates = dialect.prompt_arg_templates
    parts = [
        templates[m["role"]].replace("{content}", m["content"] or "")
        for m in messages
        if m["role"] in templates
    ]
    prompt = dialect.prompt_arg_separator.join(parts).strip()
    if "\x00" in prompt:
        raise _invalid(dialect, "messages", "a NUL character cannot be sent in a program argument")
    size = len(prompt.encode("utf-8")) + 1  # the argument's terminating NUL counts
    if size > limit:
        raise _invalid(
            dialect,
            "messages",
            f"the conversation flattens to {size - 1} bytes, and {dialect.name} passes it as "
            f"one command-line argument of at most {limit - 1} bytes",
        )


def _validate(request: CompletionRequest, dialect: ProviderDialect, model: str) -> _Checked:
    messages, contents, calls = _check_messages(request, dialect)
    if request.system is not None and not isinstance(request.system, str):
        raise _invalid(dialect, "system", f"must be text or None, got {_kind(request.system)}")
    if request.model is not None and not isinstance(request.model, str):
        raise _invalid(dialect, "model", f"must be text or None, got {_kind(request.model)}")
    # The model's own cap where the record knows it (model_limits), else the record's.
    cap = dialect.limits_for(request.model or model).max_output_tokens
    mt = request.max_tokens
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1 or mt > cap:
        raise _invalid(
            dialect,
            "max_tokens",
            f"must be an integer from 1 to {cap} for {dialect.name} model "
            f"{request.model or model!r}, got {mt!r}",
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
    stop: tuple[str, ...] = ()
    if request.stop_sequences is not None:
        if isinstance(request.stop_sequences, str):
            raise _invalid(dialect, "stop_sequences", "must be a list of strings, not a string")
        stop = _items(dialect, "stop_sequences", request.stop_sequences, "strings", str)
        for i, s in enumerate(stop):
            if not isinstance(s, str) or not s:
                raise _invalid(dialect, f"stop_sequences[{i}]", "must be a non-empty string")
    if not dialect.capabilities.tool_calling:
        for name in ("tools", "tool_choice", "parallel_tool_calls"):
            value = getattr(request, name)
            if value is not None and (name != "tools" or _has_items(value)):
                raise _invalid(dialect, name, _NO_TOOLS.format(dialect.name))
    tools = _check_tools(request, dialect)
    choice = _check_tool_choice(request.tool_choice, {name for name, _, _ in tools}, dialect)
    ptc = request.parallel_tool_calls
    if ptc is not None and not isinstance(ptc, bool):
        raise _invalid(dialect, "parallel_tool_calls", f"must be True, False or None, got {ptc!r}")
    extra = _check_extra_body(request.extra_body, dialect)
    return _Checked(messages, contents, calls, stop, tools, choice, extra)


def _call_json(call: _Call, dialect: ProviderDialect) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    if call.thought_signature is not None and dialect.sends_thought_signatures:
        # Where Gemini's OpenAI layer sent it (ai.google.dev/gemini-api/docs/thought-signatures).
        out["extra_content"] = {"google": {"thought_signature": call.thought_signature}}
    return out


def _message_json(
    msg: Message,
    content: str | list[dict[str, Any]] | None,
    calls: tuple[_Call, ...],
    dialect: ProviderDialect,
) -> dict[str, Any]:
    if msg.role == "tool":
        return {"role": "tool", "tool_call_id": msg.tool_call_id, "content": content or ""}
    if msg.role == "assistant" and calls:
        out: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "tool_calls": [_call_json(call, dialect) for call in calls],
        }
    else:
        out = {"role": msg.role, "content": content if content is not None else ""}
    key = dialect.reasoning_history_field
    if msg.role == "assistant" and msg.reasoning and key:
        out[key] = msg.reasoning  # earlier reasoning, where the record says it goes back
    return out


def _tool_choice_json(choice: Any) -> Any:
    if isinstance(choice, str) and choice not in _TOOL_CHOICE_WORDS:
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, str):
        return choice
    return dict(choice)


def _reasoning(effort: object, dialect: ProviderDialect, model: str) -> tuple[str, Any] | None:
    """``(key, value)`` that carries ``effort`` for ``model`` in ``dialect``, from its record."""
    if effort is None:
        return None
    field = "reasoning_effort"
    if not isinstance(effort, str) or effort not in REASONING_EFFORTS:
        raise _invalid(
            dialect, field, f"must be one of {', '.join(REASONING_EFFORTS)} or None, got {effort!r}"
        )
    control = dialect.reasoning_for(model)
    if control is None:
        why = "has no reasoning control" if not dialect.reasoning else f"has none for {model!r}"
        raise _invalid(dialect, field, f"{dialect.name} {why}; leave reasoning_effort unset")
    if effort not in control.values:
        raise _invalid(
            dialect,
            field,
            f"{effort!r} is not accepted by {dialect.name} for model {model!r}; "
            f"accepted: {', '.join(control.efforts)}",
        )
    return control.param, thawed(control.values[effort])


_SCHEMA_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MAX_SEED = 2**63 - 1


def _option_key(dialect: ProviderDialect, option: str, what: str) -> str:
    """The body key the record sends ``option`` under; refused when it has none."""
    key = dialect.request_options.get(option)
    if key is None:
        takes = ", ".join(dialect.request_options) or "none"
        raise _invalid(
            dialect,
            option,
            f"{dialect.name} cannot take {what} (its record's request_options: {takes})",
        )
    return key


def _response_format_json(rf: object, dialect: ProviderDialect) -> dict[str, Any]:
    field = "response_format"
    if not isinstance(rf, ResponseFormat):
        raise _invalid(dialect, field, f"must be a ResponseFormat or None, got {_kind(rf)}")
    _option_key(dialect, field, "a response format")
    if rf.type not in ("text", "json_object", "json_schema"):
        raise _invalid(
            dialect, f"{field}.type", f"must be text, json_object or json_schema, got {rf.type!r}"
        )
    if rf.type not in dialect.response_formats:
        takes = ", ".join(sorted(dialect.response_formats)) or "none"
        raise _invalid(
            dialect, f"{field}.type", f"{dialect.name} cannot take {rf.type} (it takes: {takes})"
        )
    if rf.type != "json_schema":
        for name in ("schema", "name", "description", "strict"):
            if getattr(rf, name) is not None:
                raise _invalid(dialect, f"{field}.{name}", f"only json_schema takes {name}")
        return {"type": rf.type}
    if not isinstance(rf.name, str) or not _SCHEMA_NAME.fullmatch(rf.name):
        raise _invalid(
            dialect, f"{field}.name", f"must match [a-zA-Z0-9_-]{{1,64}}, got {rf.name!r}"
        )
    if not isinstance(rf.schema, Mapping):
        raise _invalid(
            dialect, f"{field}.schema", f"must be a JSON Schema (a mapping), got {_kind(rf.schema)}"
        )
    spec: dict[str, Any] = {
        "name": rf.name,
        "schema": _json_value(dialect, f"{field}.schema", dict(rf.schema)),
    }
    if rf.description is not None:
        if not isinstance(rf.description, str):
            raise _invalid(dialect, f"{field}.description", "must be text or None")
        spec["description"] = rf.description
    if rf.strict is not None:
        if not isinstance(rf.strict, bool):
            raise _invalid(dialect, f"{field}.strict", "must be True, False or None")
        spec["strict"] = rf.strict
    return {"type": "json_schema", "json_schema": spec}


def _int_option(dialect: ProviderDialect, field: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(dialect, field, f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _options(request: CompletionRequest, dialect: ProviderDialect, stream: bool) -> dict[str, Any]:
    """The typed options, each under the key the record says (``request_options``)."""
    out: dict[str, Any] = {}
    if request.response_format is not None:
        key = _option_key(dialect, "response_format", "a response format")
        out[key] = _response_format_json(request.response_format, dialect)
    if request.seed is not None:
        seed = _int_option(dialect, "seed", request.seed, 0, _MAX_SEED)
        out[_option_key(dialect, "seed", "a seed")] = seed
    lp, top = request.logprobs, request.top_logprobs
    if lp is not None and not isinstance(lp, bool):
        raise _invalid(dialect, "logprobs", f"must be True, False or None, got {lp!r}")
    if top is not None:
        _int_option(dialect, "top_logprobs", top, 0, 20)
        if lp is not True:
            raise _invalid(dialect, "top_logprobs", "needs logprobs=True")
    if lp and stream:
        raise _invalid(
            dialect, "logprobs", "log probabilities are decoded from whole replies; use complete()"
        )
    if lp is not None:
        out[_option_key(dialect, "logprobs", "logprobs")] = lp
    if top is not None:
        out[_option_key(dialect, "top_logprobs", "top_logprobs")] = top
    if request.n is not None:
        n = _int_option(dialect, "n", request.n, 1, 128)
        if n > 1 and stream:
            raise _invalid(
                dialect, "n", "a stream's events keep no choices apart; use complete() for n > 1"
            )
        if n > 1 or "n" in dialect.request_options:  # n=1 is every endpoint's default
            out[_option_key(dialect, "n", "several choices (n)")] = n
    return out


def _check_body(body: dict[str, Any], request: CompletionRequest, dialect: ProviderDialect) -> None:
    """The last line: the body must be strict JSON, else name the field that is not."""
    try:
        _dumps(body)
        return
    except (TypeError, ValueError, RecursionError):
        pass
    fields = {"stop": "stop_sequences", dialect.max_tokens_param: "max_tokens"}
    extra = request.extra_body if isinstance(request.extra_body, Mapping) else {}
    for key, value in body.items():
        try:
            _dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            field = f"extra_body.{key}" if key in extra else fields.get(key, key)
            raise _invalid(dialect, field, _not_json(exc)) from None
    raise _invalid(dialect, "request", "the request body is not JSON-serialisable")


def build_payload(
    request: CompletionRequest,
    dialect: ProviderDialect,
    model: str,
    *,
    stream: bool,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for ``request`` in ``dialect``; raises ``InvalidRequest`` naming the field.

    ``extra_body`` (one call's own) is merged last, after ``request.extra_body``.
    """
    checked = _validate(request, dialect, model)
    call_extra = _check_extra_body(extra_body, dialect)
    reasoning = _reasoning(request.reasoning_effort, dialect, request.model or model)
    options = _options(request, dialect, stream)
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(
        _message_json(m, content, c, dialect)
        for m, content, c in zip(checked.messages, checked.contents, checked.calls, strict=True)
    )
    _check_prompt_argument(dialect, messages)
    body: dict[str, Any] = {
        "model": _model_for(dialect, request.model or model),
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
    if checked.stop:
        body["stop"] = list(checked.stop)
    if checked.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": name, "description": description, "parameters": params},
            }
            for name, description, params in checked.tools
        ]
    if checked.tool_choice is not None:
        body["tool_choice"] = _tool_choice_json(checked.tool_choice)
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if reasoning is not None:
        body[reasoning[0]] = reasoning[1]
    body.update(options)
    for key in dialect.forbidden_params:
        body.pop(key, None)
    if checked.extra_body:
        body.update(checked.extra_body)
    if call_extra:
        body.update(call_extra)
    _check_body(body, request, dialect)
    return body
