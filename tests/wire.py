"""Helpers for writing SSE bodies by hand and for reading events back.

The bodies are written from the wire formats the providers document, not
copied from captures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

from provider_impl import decode_stream
from provider_impl.events import (
    ContentBlockStart,
    MessageDelta,
    TextDelta,
    ThinkingDelta,
    ToolUseComplete,
)
from provider_impl.types import Usage


def frame(obj: Any) -> str:
    """One ``data:`` frame for a JSON object (compact, as providers send it)."""
    return "data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n\n"


DONE = "data: [DONE]\n\n"
_T = TypeVar("_T")


def sse(*parts: Any) -> bytes:
    """Join frames: strings go in verbatim, anything else becomes a ``data:`` frame."""
    return "".join(p if isinstance(p, str) else frame(p) for p in parts).encode("utf-8")


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    id: str | None = "chatcmpl-test",
    model: str | None = "test-model",
    usage: dict[str, Any] | None = None,
    index: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    c: dict[str, Any] = {"object": "chat.completion.chunk"}
    if id is not None:
        c["id"] = id
    if model is not None:
        c["model"] = model
    c["choices"] = [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    if usage is not None:
        c["usage"] = usage
    c.update(extra)
    return c


def decode(body: bytes | Iterable[bytes], provider: str) -> list[Any]:
    return list(decode_stream(body, provider))


def dicts(events: Sequence[Any]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def of_type(events: Sequence[Any], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def collected_text(events: Sequence[Any], content_type: str = "text") -> str:
    kinds: dict[int, str] = {}
    out: list[str] = []
    for e in events:
        if isinstance(e, ContentBlockStart):
            kinds[e.index] = e.content_type
        elif isinstance(e, TextDelta) and kinds.get(e.index) == content_type:
            out.append(e.text)
    return "".join(out)


def collected_thinking(events: Sequence[Any]) -> str:
    return "".join(e.thinking for e in events if isinstance(e, ThinkingDelta))


def tool_calls(events: Sequence[Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.id, e.name, e.input) for e in events if isinstance(e, ToolUseComplete)]


def stop_of(events: Sequence[Any]) -> MessageDelta:
    (md,) = of_type(events, MessageDelta)
    return md  # type: ignore[no-any-return]


def usage_of(events: Sequence[Any]) -> Usage:
    (u,) = of_type(events, Usage)
    return u  # type: ignore[no-any-return]


def splits(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``body`` cut at the given offsets (sorted, deduplicated, clamped)."""
    points = sorted({c for c in cuts if 0 < c < len(body)})
    pieces, last = [], 0
    for p in points:
        pieces.append(body[last:p])
        last = p
    pieces.append(body[last:])
    return pieces


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


class _Core(Protocol[_T]):
    """``SSEDecoder`` or ``StreamParser``: bytes in, a batch of events out."""

    def receive_data(self, data: bytes) -> None: ...

    def next_events(self) -> list[_T]: ...


def feed(core: _Core[_T], data: bytes) -> list[_T]:
    """Give ``core`` one read and take one batch: the events before a break; the
    break itself is raised by the next call. An empty read is no read (``b""``
    would say the input is over)."""
    if data:
        core.receive_data(data)
    return core.next_events()


def end(core: _Core[_T]) -> list[_T]:
    """Say the input is over and take one batch."""
    core.receive_data(b"")
    return core.next_events()


def drain(core: _Core[_T], data: bytes) -> list[_T]:
    """Give ``core`` ``data`` (``b""``: the end) and take every event; a break raises."""
    core.receive_data(data)
    out: list[_T] = []
    while batch := core.next_events():
        out += batch
    return out
