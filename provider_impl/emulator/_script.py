"""Scenario scripts: what the emulated model "says", independent of any dialect.

A :class:`Script` is built from the parsed request body and the scenario name.
Each dialect then renders it as a stream of chunks or a ``chat.completion``
object in its own wire format. Everything here is deterministic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

JSON = Any

SCENARIOS: dict[str, str] = {
    "text": "a short reply echoing the last user message, split across several chunks",
    "text_nonstream": "the same reply as `text`, for a request sent with stream:false",
    "system_multi_turn": "a reply that depends on the message count and the system prompt",
    "tool_call": "one call to the first tool in the request, arguments built from its schema",
    "parallel_tool_calls": "two tool calls (the first two tools, or the first tool twice)",
    "tool_result_followup": "a text reply quoting the content of the last role:tool message",
    "tool_round_trip": "two turns: `tool_call` first, `tool_result_followup` once a result came",
    "tool_round_trip_nonstream": "the same two turns, for requests sent with stream:false",
    "max_tokens_length": "text cut off with finish reason `length` (Mistral variant model_length)",
    "stop_sequence": "text that stops before the first of the request's stop strings",
    "reasoning": "reasoning/thinking in each provider's style, then the answer",
    "unicode": "multi-byte text, emoji (ZWJ), CJK, raw U+2028/U+2029/U+0085 in JSON strings",
    "error_auth": "the provider's 401 body",
    "error_rate_limit": "the provider's 429 body and retry headers",
    "error_context_length": "the provider's context-length error, whatever the prompt size",
    "error_invalid_param": "the provider's rejection of an unknown/forbidden parameter",
    "error_overloaded": "the provider's overloaded/unavailable error",
    "error_in_stream": "a 200 stream with a few text chunks, then an in-band error",
    "content_filter": "text, then the provider's content-filter finish reason",
}

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
class Script:
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


def _tools(body: dict[str, JSON]) -> list[tuple[str, JSON]]:
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


def _stop_strings(body: dict[str, JSON]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def _max_tokens(body: dict[str, JSON]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        v = body.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def build_script(scenario: str, body: dict[str, JSON], variant: str = "") -> Script:
    """The neutral script for a (non-error) scenario."""
    user = last_user_text(body)
    script = Script(prompt_tokens=max(1, prompt_tokens(body)))
    echo = f"Echo: {user}"
    if scenario in ("tool_round_trip", "tool_round_trip_nonstream"):
        msgs = messages_of(body)
        answered = bool(msgs) and msgs[-1].get("role") == "tool"
        scenario = "tool_result_followup" if answered else "tool_call"

    if scenario in ("text", "text_nonstream", "error_in_stream"):
        reply = echo
        if scenario == "error_in_stream":
            reply = echo + " This reply is interrupted by a server error before it ends."
        script.text = split_words(reply)
    elif scenario == "system_multi_turn":
        msgs = messages_of(body)
        system = " ".join(
            content_text(m.get("content")) for m in msgs if m.get("role") in ("system", "developer")
        ).strip()
        n_user = sum(1 for m in msgs if m.get("role") == "user")
        reply = (
            f"You said {n_user} things in {len(msgs)} messages; "
            f"system: {system or '(none)'}; last: {user}"
        )
        script.text = split_words(reply)
        # A multi-turn conversation reuses its prefix: report part of it as cached.
        script.cached_tokens = (script.prompt_tokens // 2) if len(msgs) > 2 else 0
    elif scenario in ("tool_call", "parallel_tool_calls"):
        tools = _tools(body)
        if not tools:
            script.text = split_words("No tools were provided, so I cannot call one.")
        else:
            script.tool_preamble = split_words("I'll check that for you.")
            script.tool_thinking = split_words(
                f"The user asks: {user} I should call {tools[0][0]}."
            )
            first = ToolCallSpec(tools[0][0], sample_arguments(tools[0][1], 0))
            calls = [first]
            if scenario == "parallel_tool_calls":
                if len(tools) > 1:
                    calls.append(ToolCallSpec(tools[1][0], sample_arguments(tools[1][1], 0)))
                else:
                    calls.append(ToolCallSpec(tools[0][0], sample_arguments(tools[0][1], 1)))
            script.tool_calls = calls
            script.finish = "tool_calls"
    elif scenario == "tool_result_followup":
        result = None
        for m in reversed(messages_of(body)):
            if m.get("role") == "tool":
                result = content_text(m.get("content"))
                break
        if result is None:
            reply = "No tool result was found in the conversation."
        else:
            reply = f"The tool returned: {result}"
        script.text = split_words(reply)
    elif scenario == "max_tokens_length":
        words = split_words(echo + " and then a good deal more text that never gets finished")
        limit = _max_tokens(body) or 5
        script.text = words[: max(1, min(limit, len(words) - 1))]
        script.max_completion_tokens = limit
        script.finish = "model_length" if variant == "model_length" else "length"
    elif scenario == "stop_sequence":
        full = f"{echo.rstrip('.!? ')}. Then: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and so on."
        stops = _stop_strings(body)
        cut = len(full)
        for s in stops:
            idx = full.find(s)
            if idx != -1:
                cut = min(cut, idx)
        if stops and cut == len(full):
            # The stop string was not in the natural text: generate it at the end.
            full = full + " " + stops[0]
            cut = len(full) - len(stops[0])
        script.text = split_words(full[:cut]) if cut else [""]
    elif scenario == "reasoning":
        script.thinking = split_words(
            f"The user wrote: {user} A short, direct answer that echoes it is best."
        )
        script.text = split_words(echo)
    elif scenario == "unicode":
        script.text = split_words(f"{echo} {UNICODE_SAMPLE}")
    elif scenario == "content_filter":
        script.text = split_words("I can help with part of that, but")
        script.finish = "content_filter"
    else:  # pragma: no cover - callers check the scenario name first
        raise ValueError(f"unknown scenario {scenario!r}")
    return script
