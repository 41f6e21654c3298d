"""A second, deliberately plain reader of OpenAI-shaped replies.

The conformance suite compares the library's decoder with this reading on
real captured replies. It shares no code with ``provider_impl.adapter``: it
reads the whole body at once, one ``json.loads`` per ``data:`` line, sums up
strings per tool-call index and looks at the usage object last sent. It is
meant to be obviously right rather than fast or forgiving: malformed input,
and a reply that carries an error object, raise ``ValueError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IndependentReading", "read_reply"]

# Gemini's OpenAI layer wraps thought summaries in these tags at the start of
# the content (and marks the pieces with extra_content.google.thought).
_OPEN_TAG = "<thought>"
_CLOSE_TAG = "</thought>"


@dataclass(frozen=True)
class IndependentReading:
    """What a reply says, read without the library."""

    text: str = ""
    thinking: str = ""
    # (id, name, parsed arguments) in the order the calls began.
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Reader:
    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)
    by_index: dict[int, _Call] = field(default_factory=dict)
    google_thought: bool = False
    usage: dict[str, Any] | None = None
    finish: str | None = None

    def message(self, message: dict[str, Any]) -> None:
        """One message or one delta (the same keys)."""
        if _google_thought(message):
            self.google_thought = True
        for key in ("reasoning_content", "reasoning"):
            value = message.get(key)
            if isinstance(value, str) and value:
                self.thinking.append(value)
                break
        content = message.get("content")
        if isinstance(content, str):
            self.text.append(content)
        elif isinstance(content, list):
            for part in content:
                self.part(part)
        for call in message.get("tool_calls") or []:
            self.call(call)

    def part(self, part: Any) -> None:
        if isinstance(part, str):
            self.text.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            self.text.append(str(part.get("text") or ""))
        elif isinstance(part, dict) and part.get("type") == "thinking":
            inner = part.get("thinking")
            for piece in inner if isinstance(inner, list) else [inner]:
                if isinstance(piece, dict):
                    piece = piece.get("text")
                if isinstance(piece, str):
                    self.thinking.append(piece)

    def call(self, call: dict[str, Any]) -> None:
        fn = call.get("function") or {}
        cid = call.get("id") or ""
        name = fn.get("name") or ""
        args = fn.get("arguments")
        if isinstance(args, dict):
            args = json.dumps(args)
        index = call.get("index")
        known = self.by_index.get(index) if isinstance(index, int) else None
        if known is not None and cid and known.id and cid != known.id:
            known = None  # the same index reused for another call
        if known is None and index is None and not name and self.calls:
            known = self.calls[-1]  # a fragment that names no call: the last one
        if known is None:
            known = _Call()
            self.calls.append(known)
            if isinstance(index, int):
                self.by_index[index] = known
        known.id = known.id or cid
        known.name = known.name or name
        known.arguments += args or ""

    def choice(self, choice: dict[str, Any], key: str) -> None:
        if choice.get("index", 0) != 0:
            return
        if isinstance(choice.get(key), dict):
            self.message(choice[key])
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])

    def reading(self) -> IndependentReading:
        text, thinking = "".join(self.text), "".join(self.thinking)
        if self.google_thought and text.startswith(_OPEN_TAG):
            summary, _, text = text[len(_OPEN_TAG) :].partition(_CLOSE_TAG)
            thinking += summary
        usage = self.usage or {}
        prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
        completion = _int(usage.get("completion_tokens", usage.get("output_tokens")))
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        cached = _int(prompt_details.get("cached_tokens"))
        if cached is None:
            cached = _int(usage.get("num_cached_tokens", usage.get("cache_read_input_tokens")))
        reasoning = _int(completion_details.get("reasoning_tokens"))
        total = _int(usage.get("total_tokens"))
        if reasoning is None and prompt is not None and completion is not None and total:
            # Gemini leaves its thinking out of completion_tokens but not out of total_tokens.
            hidden = total - prompt - completion
            reasoning = hidden if hidden > 0 else None
        return IndependentReading(
            text=text,
            thinking=thinking,
            tool_calls=[(c.id, c.name, _arguments(c.arguments)) for c in self.calls],
            input_tokens=prompt,
            output_tokens=completion,
            cache_read_tokens=cached,
            reasoning_tokens=reasoning,
            finish_reason=self.finish,
        )


def read_reply(body: bytes, is_sse: bool) -> IndependentReading:
    """Read a chat-completion reply: an SSE body of chunks or one JSON object."""
    reader = _Reader()
    if not is_sse:
        reply = _checked(json.loads(body))
        for choice in reply.get("choices") or []:
            reader.choice(choice, "message")
        reader.usage = reply.get("usage")
        return reader.reading()
    for line in body.decode("utf-8").splitlines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if not data or data == "[DONE]":
            continue
        chunk = _checked(json.loads(data))
        for choice in chunk.get("choices") or []:
            reader.choice(choice, "delta")
        if chunk.get("usage"):
            reader.usage = chunk["usage"]
    return reader.reading()


def _checked(value: Any) -> dict[str, Any]:
    """A JSON object that is no error report."""
    errors = value if isinstance(value, list) else [value]
    if any(isinstance(v, dict) and v.get("error") for v in errors):
        raise ValueError(f"the reply carries an error: {json.dumps(value)[:200]}")
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _google_thought(message: dict[str, Any]) -> bool:
    google = (message.get("extra_content") or {}).get("google") or {}
    return google.get("thought") is True


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _arguments(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments are not a JSON object: {text[:100]!r}")
    return value
