"""What the emulated model "says", independent of any dialect.

A :class:`ReplyScript` is built from the parsed request body by the scenario's reply
builder (``provider_impl.scenarios``: each scenario with its reply). Each wire
format then renders it as a stream of chunks or a ``chat.completion`` object.
These are the neutral script model and the request-reading helpers the
builders share. Everything here is deterministic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

JSON = Any

UNICODE_SAMPLE = (
    "Grüße, naïve café — ½ ∑ ≠ ✓. 日本語のテキストと中文字符。 "
    "Emoji: 🎉 👩\u200d💻 👨\u200d👩\u200d👧\u200d👦 🇫🇷. "
    "Separators:\u2028line\u2029paragraph\u0085next-line. Ω≈ç√∫ 한국어."
)


@dataclass(frozen=True)
class ToolCallSpec:
    name: str
    arguments: dict[str, JSON]


@dataclass
class ReplyScript:
    """A dialect-neutral response script."""

    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    # Neutral finish: stop | length | model_length | tool_calls | content_filter
    finish: str = "stop"
    prompt_tokens: int = 1
    cached_tokens: int = 0
    # Hidden reasoning tokens (OpenAI reasoning models) on top of visible thinking.
    hidden_reasoning_tokens: int = 0
    # Text a proxy says before a tool call (Claude: "I'll check that for you.").
    tool_preamble: list[str] = field(default_factory=list)
    # Reasoning a thinking model streams before a tool call (GLM).
    tool_thinking: list[str] = field(default_factory=list)
    # Cap on reported completion tokens (max_tokens_length).
    max_completion_tokens: int | None = None

    @property
    def full_text(self) -> str:
        return "".join(self.text)

    @property
    def thinking_tokens(self) -> int:
        return estimate_tokens("".join(self.thinking)) if self.thinking else 0

    def completion_tokens(self, args_text: str = "", *, extra_thinking: int = 0) -> int:
        n = estimate_tokens(self.full_text) if self.text else 0
        n += self.thinking_tokens + self.hidden_reasoning_tokens + extra_thinking
        if self.tool_calls:
            n += estimate_tokens(args_text) + 4 * len(self.tool_calls)
        if self.max_completion_tokens is not None:
            n = self.max_completion_tokens
        return max(1, n)


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def content_text(content: JSON) -> str:
    """The text of a message ``content`` (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    out.append(text)
        return "".join(out)
    return ""


def messages_of(body: dict[str, JSON]) -> list[dict[str, JSON]]:
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return []
    return [m for m in msgs if isinstance(m, dict)]


def prompt_chars(body: dict[str, JSON]) -> int:
    return sum(len(content_text(m.get("content"))) for m in messages_of(body))


def prompt_tokens(body: dict[str, JSON]) -> int:
    """Tokens in the prompt, estimated as characters of all contents / 4."""
    return math.ceil(prompt_chars(body) / 4)


def last_user_text(body: dict[str, JSON]) -> str:
    for m in reversed(messages_of(body)):
        if m.get("role") == "user":
            return content_text(m.get("content"))
    return ""


def split_words(text: str, max_pieces: int = 24) -> list[str]:
    """Split on word boundaries (leading whitespace kept); join() == text."""
    if not text:
        return [""]
    pieces: list[str] = re.findall(r"\s*\S+|\s+", text)
    if len(pieces) <= max_pieces:
        return pieces
    per = math.ceil(len(pieces) / max_pieces)
    return ["".join(pieces[i : i + per]) for i in range(0, len(pieces), per)]


def split_fixed(text: str, sizes: tuple[int, ...] = (5, 7, 4, 8, 6)) -> list[str]:
    """Split a string into deterministic 4-8 character fragments."""
    out: list[str] = []
    i = 0
    k = 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        out.append(text[i : i + n])
        i += n
        k += 1
    return out or [""]


def _schema_type(schema: JSON) -> str:
    if not isinstance(schema, dict):
        return ""
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "")
    return t if isinstance(t, str) else ""


def sample_arguments(parameters: JSON, variant: int = 0) -> dict[str, JSON]:
    """Deterministic arguments for a JSON-schema ``parameters`` object."""
    props = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(props, dict):
        return {}
    strings = ("Paris", "London")
    args: dict[str, JSON] = {}
    for name, schema in props.items():
        t = _schema_type(schema)
        value: JSON
        if t == "string":
            value = strings[variant % 2]
        elif t in ("number", "integer"):
            value = 3 + variant
        elif t == "boolean":
            value = variant == 0
        elif t == "array":
            value = []
        elif t == "object":
            value = {}
        else:
            value = None
        args[str(name)] = value
    return args


def request_tools(body: dict[str, JSON]) -> list[tuple[str, JSON]]:
    tools = body.get("tools")
    out: list[tuple[str, JSON]] = []
    if not isinstance(tools, list):
        return out
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.append((fn["name"], fn.get("parameters")))
    return out


def stop_strings(body: dict[str, JSON]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def max_tokens_of(body: dict[str, JSON]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        v = body.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None
