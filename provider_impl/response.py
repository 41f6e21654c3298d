"""Whole replies: collect a stream into a ``CompletionResponse``, or parse a
non-streaming ``chat.completion`` body through the same adapter."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from provider_impl import events as ev_types
from provider_impl.adapter import events_of_reply
from provider_impl.classify import classify_error
from provider_impl.dialects import HasDialect, ProviderDialect, resolve_dialect
from provider_impl.errors import DeserializationError
from provider_impl.events import StreamEvent
from provider_impl.types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    StopReason,
    TokenLogprob,
    ToolCall,
    Usage,
)

__all__ = [
    "decode_response",
    "events_from_json",
    "response_from_events",
    "response_from_json",
    "with_parsed_json",
]


def response_from_events(events: Iterable[StreamEvent]) -> CompletionResponse:
    """Fold a stream's events into one response (text, thinking, refusal, tool calls)."""
    kinds: dict[int, str] = {}
    text: list[str] = []
    thinking: list[str] = []
    refusal: list[str] = []
    calls: list[ToolCall] = []
    rid: str | None = None
    model: str | None = None
    stop = StopReason.END_TURN
    raw: str | None = None
    usage = Usage()
    for ev in events:
        if isinstance(ev, ev_types.TextDelta):
            (refusal if kinds.get(ev.index) == "refusal" else text).append(ev.text)
        elif isinstance(ev, ev_types.ThinkingDelta):
            thinking.append(ev.thinking)
        elif isinstance(ev, ev_types.ContentBlockStart):
            kinds[ev.index] = ev.content_type
        elif isinstance(ev, ev_types.ToolUseComplete):
            calls.append(ToolCall(ev.id, ev.name, ev.input, ev.thought_signature))
        elif isinstance(ev, ev_types.MessageStart):
            rid, model = ev.id, ev.model
        elif isinstance(ev, ev_types.MessageDelta):
            stop, raw = ev.stop_reason, ev.raw_finish_reason
        elif isinstance(ev, Usage):
            usage = ev
    return CompletionResponse(
        id=rid,
        model=model,
        text="".join(text),
        thinking="".join(thinking) if thinking else None,
        tool_calls=tuple(calls),
        stop_reason=stop,
        usage=usage,
        raw_finish_reason=raw,
        refusal="".join(refusal) if refusal else None,
    )


def response_from_json(body: Any, dialect: ProviderDialect) -> CompletionResponse:
    """Parse a non-streaming ``chat.completion`` body: choice 0 in the response's own
    fields, its ``logprobs`` when sent, and every choice in ``choices`` when there are
    several (a request with n > 1)."""
    first = response_from_events(events_from_json(body, dialect))
    if isinstance(body, Mapping) and not isinstance(body, dict):
        body = dict(body)
    raw = [c for c in body["choices"] if isinstance(c, dict)]
    zero = next((c for c in raw if c.get("index", 0) == 0), raw[0])
    logprobs = _logprobs(zero.get("logprobs"))
    choices: tuple[Choice, ...] = ()
    if len(raw) > 1:
        choices = tuple(_choice(body, c, pos, dialect) for pos, c in enumerate(raw))
    if logprobs is None and not choices:
        return first
    return dataclasses.replace(first, logprobs=logprobs, choices=choices)


def _choice(
    body: dict[str, Any], raw: dict[str, Any], pos: int, dialect: ProviderDialect
) -> Choice:
    index = raw.get("index", pos)
    one = response_from_events(_events_of_choice(body, raw, dialect))
    return Choice(
        index=index if isinstance(index, int) and not isinstance(index, bool) else pos,
        text=one.text,
        thinking=one.thinking,
        tool_calls=one.tool_calls,
        stop_reason=one.stop_reason,
        raw_finish_reason=one.raw_finish_reason,
        refusal=one.refusal,
        logprobs=_logprobs(raw.get("logprobs")),
    )


def _token(raw: Any) -> TokenLogprob | None:
    """One ``logprobs.content`` entry; None for an entry of another shape."""
    if not isinstance(raw, dict):
        return None
    token, logprob = raw.get("token"), raw.get("logprob")
    if not isinstance(token, str) or isinstance(logprob, bool):
        return None
    if not isinstance(logprob, (int, float)) or math.isnan(logprob):
        return None
    data = raw.get("bytes")
    as_bytes = (
        tuple(data)
        if isinstance(data, list) and all(isinstance(b, int) and 0 <= b < 256 for b in data)
        else None
    )
    top = raw.get("top_logprobs")
    alternatives = tuple(t for t in map(_token, top if isinstance(top, list) else []) if t)
    return TokenLogprob(token, float(logprob), as_bytes, alternatives)


def _logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    """A choice's ``logprobs`` ({"content": [...]}) as tokens; None when it sent none."""
    if not isinstance(raw, dict):
        return None
    content = raw.get("content")
    return tuple(t for t in map(_token, content if isinstance(content, list) else []) if t)


def with_parsed_json(response: CompletionResponse) -> CompletionResponse:
    """``response`` with ``parsed`` set (and each choice's) where the text is JSON:
    what ``complete()`` returns for a request with a json_schema or json_object
    response format. Text that is not JSON (a refusal, a reply cut at max_tokens)
    leaves ``parsed`` None."""

    def parse(text: str) -> Any:
        try:
            return json.loads(text) if text else None
        except (ValueError, RecursionError):
            return None

    choices = tuple(dataclasses.replace(c, parsed=parse(c.text)) for c in response.choices)
    return dataclasses.replace(response, parsed=parse(response.text), choices=choices)


def _wants_json(request: CompletionRequest) -> bool:
    rf = request.response_format
    return rf is not None and rf.type in ("json_object", "json_schema")


def decode_response(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any] | list[Any],
    provider: str | ProviderDialect | HasDialect,
) -> CompletionResponse:
    """Decode a captured non-streaming ``chat.completion`` reply, as ``complete()`` does.

    ``body`` is the JSON text (bytes or str) or the parsed JSON. Text that is not
    JSON, or JSON that is not an object, raises ``DeserializationError``; an error
    body (``{"error": ...}``, Gemini's ``[{"error": ...}]``) raises the typed
    ``LlmError`` the client raises for it in a 2xx response.
    """
    dialect = resolve_dialect(provider)
    parsed: Any = body
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        text = body if isinstance(body, str) else bytes(body)
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise DeserializationError(
                f"the response is not JSON: {text[:200]!r}", provider=dialect.name
            ) from None
    elif not isinstance(body, (Mapping, list)):
        raise TypeError(
            f"decode_response expects bytes, str or parsed JSON, not {type(body).__name__}"
        )
    return response_from_json(parsed, dialect)


def events_from_json(body: Any, dialect: ProviderDialect) -> list[StreamEvent]:
    """The events a non-streaming body stands for: its ``message`` is fed to the
    adapter as one delta (also used when a server answers a streaming request
    with a plain JSON body)."""
    if isinstance(body, Mapping) and not isinstance(body, dict):
        body = dict(body)
    if (isinstance(body, dict) and body.get("error")) or (
        isinstance(body, list) and any(isinstance(b, dict) and b.get("error") for b in body)
    ):  # Gemini's errors come as [{"error": ...}]
        raise classify_error(200, {}, body, dialect)
    if not isinstance(body, dict):
        raise DeserializationError(
            f"the response is {type(body).__name__}, expected a JSON object",
            provider=dialect.name,
        )
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise DeserializationError("the response has no choices", provider=dialect.name)
    choice = next(
        (c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), choices[0]
    )
    if not isinstance(choice, dict):
        raise DeserializationError(
            "the response's first choice is not an object", provider=dialect.name
        )
    return _events_of_choice(body, choice, dialect)


def _events_of_choice(
    body: dict[str, Any], choice: dict[str, Any], dialect: ProviderDialect
) -> list[StreamEvent]:
    message = choice.get("message")
    chunk = {
        "id": body.get("id"),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "delta": message if isinstance(message, dict) else {},
                "finish_reason": choice.get("finish_reason"),
            }
        ],
        "usage": body.get("usage"),
    }
    return events_of_reply(chunk, dialect)
