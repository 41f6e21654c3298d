"""Hand a conversation from one provider to another (docs/FALLBACK.md).

``hand_off(messages, target)`` rewrites a history so that ``target`` accepts it,
reading only ``target``'s dialect record:

* tool-call ids that ``target`` would refuse (``tool_call_ids``: Mistral's nine
  alphanumerics) are replaced, and each tool result follows its call's new id;
  ids it accepts are kept, and no two calls end up with one id;
* thought signatures stay only where they go back (``sends_thought_signatures``);
  there, the first call of an assistant step that has none (another provider
  made it) gets the record's ``foreign_thought_signature``;
* reasoning stays where the record names a key for it (``reasoning_history_field``)
  and is dropped elsewhere;
* tool calls and results for a target without tool calling are refused with
  ``InvalidRequest`` naming the message field.

Pure and deterministic: the same history gives the same ids every time.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from provider_impl.dialects import ProviderDialect, ToolCallIdFormat, resolve_dialect
from provider_impl.errors import UsageError
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.types import CompletionRequest, Message, ToolCall

__all__ = ["hand_off", "hand_off_request"]

Target = str | ProviderDialect | OpenAiCompatibleProvider


def _derive(call_id: str, fmt: ToolCallIdFormat, taken: set[str]) -> str:
    """A new id in ``fmt`` for ``call_id``, from its hash; never one in ``taken``."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{salt}\x00{call_id}".encode()).digest()
        while len(digest) < fmt.length:
            digest += hashlib.sha256(digest).digest()
        new = "".join(fmt.alphabet[b % len(fmt.alphabet)] for b in digest[: fmt.length])
        if new not in taken:
            return new
        salt += 1


def _id_map(messages: Sequence[Message], fmt: ToolCallIdFormat | None) -> dict[str, str]:
    """Old id -> new id for every id ``fmt`` refuses (empty when it takes any id)."""
    if fmt is None:
        return {}
    ids: list[str] = []
    for m in messages:
        ids.extend(c.id for c in m.tool_calls)
        if m.tool_call_id is not None:
            ids.append(m.tool_call_id)
    taken = {i for i in ids if fmt.matches(i)}
    mapping: dict[str, str] = {}
    for old in ids:
        if old not in taken and old not in mapping:
            mapping[old] = _derive(old, fmt, taken)
            taken.add(mapping[old])
    return mapping


def hand_off(messages: Sequence[Message], target: Target) -> tuple[Message, ...]:
    """``messages`` rewritten for ``target`` (a name, a record or a provider)."""
    dialect = resolve_dialect(target)
    history = tuple(messages)
    for i, m in enumerate(history):
        if not isinstance(m, Message):
            raise UsageError(
                f"messages[{i}]: must be a Message, got {type(m).__name__}",
                field=f"messages[{i}]",
                provider=dialect.name,
            )
        if not dialect.capabilities.tool_calling and (m.tool_calls or m.role == "tool"):
            where = f"messages[{i}].tool_calls" if m.tool_calls else f"messages[{i}].tool_call_id"
            raise UsageError(
                f"{where}: {dialect.name} has no tool calling, so it cannot take a "
                "conversation with tool calls or results",
                field=where,
                provider=dialect.name,
            )
    ids = _id_map(history, dialect.tool_call_ids)
    keeps_signatures = dialect.sends_thought_signatures
    placeholder = dialect.foreign_thought_signature if keeps_signatures else None
    out: list[Message] = []
    for m in history:
        calls: list[ToolCall] = []
        for j, c in enumerate(m.tool_calls):
            sig = c.thought_signature if keeps_signatures else None
            if sig is None and j == 0 and placeholder is not None:
                sig = placeholder  # Gemini checks the first call of each step
            calls.append(dataclasses.replace(c, id=ids.get(c.id, c.id), thought_signature=sig))
        result_id = m.tool_call_id
        out.append(
            dataclasses.replace(
                m,
                tool_calls=tuple(calls),
                tool_call_id=ids.get(result_id, result_id) if result_id is not None else None,
                reasoning=m.reasoning if dialect.reasoning_history_field else None,
            )
        )
    return tuple(out)


def hand_off_request(request: CompletionRequest, target: Target) -> CompletionRequest:
    """``request`` with its history handed to ``target``; tools for a target that
    cannot call them are refused (``InvalidRequest`` naming ``tools``)."""
    dialect = resolve_dialect(target)
    if not dialect.capabilities.tool_calling and request.tools:
        raise UsageError(
            f"tools: {dialect.name} has no tool calling",
            field="tools",
            provider=dialect.name,
        )
    return dataclasses.replace(request, messages=hand_off(request.messages, dialect))
