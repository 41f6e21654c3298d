"""A sans-I/O state machine: chat-completion chunks in, ``StreamEvent`` out.

Liberal in what it accepts, whichever dialect it serves: argument fragments
keyed by ``index`` (OpenAI, Claude proxies), whole calls without ``index`` and
with ``id: ""`` (Gemini) or 9-character ids (Mistral), usage on every chunk,
on the last choice chunk or in a ``choices: []`` chunk (the last one wins,
never summed), reasoning as ``reasoning_content``/``reasoning`` or Mistral's
``{"type": "thinking"}`` content parts, OpenAI's ``refusal`` as its own block.
It keeps the stream rules (``provider_impl.invariants``): blocks numbered
0, 1, 2 … never interleave; each tool call ends in exactly one
``ToolUseComplete``; one ``MessageDelta``, then one ``Usage``, then ``Done``.
"""

from __future__ import annotations

import json
import json.scanner
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from provider_impl._outbox import Outbox
from provider_impl.classify import error_from_payload
from provider_impl.dialects import ProviderDialect
from provider_impl.errors import (
    DeserializationError,
    LlmError,
    RateLimited,
    StreamError,
)
from provider_impl.events import (
    ContentBlockStart,
    ContentBlockStop,
    Done,
    MessageDelta,
    MessageStart,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolUseComplete,
    ToolUseInputDelta,
)
from provider_impl.sse import ServerSentEvent
from provider_impl.types import StopReason, Usage

__all__ = [
    "FINISH_REASONS",
    "StreamAdapter",
    "events_of_reply",
    "map_finish_reason",
    "usage_from_json",
]

FINISH_REASONS: Mapping[str, StopReason] = {
    "stop": StopReason.END_TURN,
    "end_turn": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "model_length": StopReason.MAX_TOKENS,
    "max_tokens": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "tool_use": StopReason.TOOL_USE,
    "content_filter": StopReason.CONTENT_FILTER,
    "sensitive": StopReason.CONTENT_FILTER,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "pause_turn": StopReason.PAUSE_TURN,
}
# A delta with only these keys carries no refusal, tool call or function call.
_PLAIN_DELTA_KEYS = frozenset({"role", "content", "reasoning_content"})
# Finish reasons that mean the generation failed (GLM, Mistral): an error, not an end.
_FAILURE_FINISH_REASONS = frozenset({"network_error", "error"})
# Gemini's OpenAI layer, asked for thought summaries (include_thoughts), opens the
# content with "<thought>" on a piece flagged extra_content.google.thought and ends the
# summary with "</thought>" (streamed: at the head of the first unflagged piece).
# The flag alone is no summary: a whole reply flags its message, answer and all.
_THOUGHT_OPEN = "<thought>"
_THOUGHT_CLOSE = "</thought>"
# Where string content stands: none yet, inside a thought summary, in the answer.
_BEFORE_CONTENT, _IN_SUMMARY, _IN_ANSWER = 0, 1, 2


def map_finish_reason(raw: str, saw_tool_calls: bool) -> StopReason:
    """Normalize a finish reason; ``stop`` after streamed tool calls is ``tool_use`` (Gemini)."""
    reason = FINISH_REASONS.get(raw, StopReason.END_TURN)
    if reason is StopReason.END_TURN and saw_tool_calls and raw == "stop":
        return StopReason.TOOL_USE
    return reason


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def usage_from_json(usage: Mapping[str, Any], hidden_reasoning: bool = False) -> Usage:
    """OpenAI-style usage (and Anthropic-style names) -> ``Usage``.

    ``hidden_reasoning``: the provider counts thinking in ``total_tokens`` but not in
    ``completion_tokens`` (Gemini), so without ``reasoning_tokens`` the difference is it.
    """
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = usage.get("cache_read_input_tokens")
    if cached is None and isinstance(prompt_details, dict):
        cached = prompt_details.get("cached_tokens")
    if cached is None:
        cached = usage.get("num_cached_tokens")  # Mistral
    written = usage.get("cache_creation_input_tokens")  # Anthropic's name, through gateways
    if written is None and isinstance(prompt_details, dict):
        written = prompt_details.get("cache_write_tokens")  # OpenAI, OpenRouter
    reasoning = None
    if isinstance(completion_details, dict):
        reasoning = completion_details.get("reasoning_tokens")
    inp = usage.get("prompt_tokens")
    out = usage.get("completion_tokens")
    input_tokens = _int_or_none(inp if inp is not None else usage.get("input_tokens"))
    output_tokens = _int_or_none(out if out is not None else usage.get("output_tokens"))
    reasoning_tokens = _int_or_none(reasoning)
    if hidden_reasoning and reasoning_tokens is None:
        total = _int_or_none(usage.get("total_tokens"))
        if total is not None and input_tokens is not None and output_tokens is not None:
            hidden = total - input_tokens - output_tokens
            reasoning_tokens = hidden if hidden > 0 else None
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=_int_or_none(cached),
        reasoning_tokens=reasoning_tokens,
        cache_write_input_tokens=_int_or_none(written),
    )


class _Block:
    __slots__ = ("closed", "fragments", "id", "index", "kind", "name", "signature")

    def __init__(self, index: int, kind: str, id: str | None = None, name: str = "") -> None:
        self.index = index
        self.kind = kind
        self.id = id
        self.name = name
        self.fragments: list[str] = []
        self.closed = False
        self.signature: str | None = None


class _Call:
    """A tool call being assembled from fragments (``index`` is the provider's)."""

    __slots__ = ("emitted", "fragments", "id", "index", "name", "signature")

    def __init__(self, index: int | None, id: str | None) -> None:
        self.index = index
        self.id = id
        self.name = ""
        self.fragments: list[str] = []
        self.signature: str | None = None
        self.emitted = False

    def finished(self) -> bool:
        """Named, with arguments that already form a JSON object."""
        if not self.name or not self.fragments:
            return False
        try:
            return isinstance(json.loads("".join(self.fragments)), dict)
        except (ValueError, RecursionError):
            return False


def _index_of(item: Mapping[str, Any], what: str, adapter: StreamAdapter) -> int:
    """A choice's or tool call's ``index`` (0 when absent); anything but an integer is
    refused rather than read as another choice, which would drop the content."""
    value = item.get("index", 0)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise DeserializationError(
        f"a {what}'s index is {value!r}, expected an integer",
        provider=adapter._dialect.name,
    )


class StreamAdapter(Outbox[StreamEvent]):
    """Decoded SSE events in through ``receive_event``, normalized events out of
    ``next_events`` (the shape of ``SSEDecoder`` and ``StreamParser``)."""

    __slots__ = (
        "_calls",
        "_calls_by_id",
        "_calls_by_index",
        "_content_state",
        "_dialect",
        "_finish",
        "_held",
        "_last_call",
        "_next_index",
        "_open",
        "_started",
        "_tool_count",
        "_usage",
        "done",
    )

    def __init__(self, dialect: ProviderDialect) -> None:
        super().__init__()
        self._dialect = dialect
        self._started = False
        self._next_index = 0
        self._open: _Block | None = None
        # Tool calls are buffered until the message ends (or text follows whole
        # ones): a late name or id is filled in and interleaved fragments kept apart.
        self._calls: list[_Call] = []
        self._calls_by_index: dict[int, _Call] = {}
        self._calls_by_id: dict[str, _Call] = {}
        self._last_call: _Call | None = None
        self._tool_count = 0
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._content_state = _BEFORE_CONTENT
        # Text held back while it may still be the usage-limit answer (see
        # ProviderDialect.usage_limit_prefix); None once it cannot be.
        self._held: list[str] | None = [] if dialect.usage_limit_prefix else None
        self.done = False

    # -- input and output ----------------------------------------------------

    def receive_event(self, event: ServerSentEvent | None) -> None:
        """Take the next decoded SSE event; ``None`` says the body is over (a clean
        end needs ``[DONE]`` or a finish reason before it)."""
        if self.done or self._error is not None:
            return
        out = self._pending
        mark = len(out)  # a failing frame adds nothing
        try:
            if event is None:
                self._end(out)
            else:
                self._frame(event[0], event[1], out)
        except LlmError as err:
            del out[mark:]
            self._error = err

    def _frame(self, data: str, event: str, out: list[StreamEvent]) -> None:
        """One frame's data and event type; the events are appended to ``out``.
        Raises the frame's error (``StreamParser`` drives this, frame by frame)."""
        if self.done:
            return
        if data == "[DONE]":
            self._complete(out)
            return
        if event == "error":
            raise self._in_band_error(_loads_or_text(data))
        if not data or data.isspace():
            return
        try:
            chunk = _loads(data)
        except (ValueError, RecursionError):  # deep nesting too
            raise DeserializationError(
                f"a stream frame is not valid JSON: {data[:200]!r}", provider=self._dialect.name
            ) from None
        self._chunk(chunk, out)

    def _chunk(self, chunk: Any, out: list[StreamEvent]) -> None:
        if isinstance(chunk, list):  # Gemini sends errors as [{"error": ...}]
            if any(isinstance(c, dict) and c.get("error") for c in chunk):
                raise self._in_band_error(chunk)
            raise DeserializationError(
                "a stream frame is a JSON array, expected an object", provider=self._dialect.name
            )
        if not isinstance(chunk, dict):
            raise DeserializationError(
                f"a stream frame is {type(chunk).__name__}, expected a JSON object",
                provider=self._dialect.name,
            )
        if chunk.get("error"):
            raise self._in_band_error(chunk)
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        if choices is None and usage is None:
            return  # pings and other bookkeeping frames carry nothing for us
        if not self._started:
            self._started = True
            cid, model = chunk.get("id"), chunk.get("model")
            out.append(
                MessageStart(
                    id=cid if isinstance(cid, str) and cid else None,
                    model=model if isinstance(model, str) else None,
                )
            )
        if isinstance(usage, dict):
            self._usage = usage  # the last report wins: Gemini repeats usage on every chunk
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or _index_of(choice, "choice", self) != 0:
                    continue  # with n > 1, choice 0 only
                if self._finish is not None:
                    continue  # nothing after the provider said why it stopped
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self._delta(delta, out)
                raw = choice.get("finish_reason")
                if isinstance(raw, str) and raw:
                    self._finish_with(raw, out)
        elif choices is not None:
            raise DeserializationError(
                "a chunk's 'choices' is not a list", provider=self._dialect.name
            )

    def _end(self, out: list[StreamEvent]) -> None:
        """The body is over. A clean end needs ``[DONE]`` or a finish reason first."""
        if self.done:
            return
        if self._finish is None:
            raise StreamError(
                "the stream ended without [DONE] or a finish reason (truncated)",
                provider=self._dialect.name,
            )
        self._complete(out)

    # -- content -----------------------------------------------------------

    def _delta(self, delta: Mapping[str, Any], out: list[StreamEvent]) -> None:
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._append("thinking", reasoning, out)
        content = delta.get("content")
        if isinstance(content, str):
            if content:
                if self._content_state == _IN_ANSWER:  # nearly every chunk
                    self._append("text", content, out)
                else:
                    self._summary_or_answer(content, delta, out)
        elif isinstance(content, list):
            for part in content:
                self._content_part(part, out)
        if delta.keys() <= _PLAIN_DELTA_KEYS:
            return  # nearly every chunk: nothing more to look for
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._append("refusal", refusal, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            # Gemini 2.5 has sent a call's signature on the message instead of the
            # call: it belongs to the first call (Gemini signs the first of a set).
            fallback = _thought_signature(delta)
            for call in calls:
                if isinstance(call, dict):
                    self._tool_fragment(call, out, fallback)
                    fallback = None
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._tool_fragment({"index": 0, "function": legacy}, out)

    def _summary_or_answer(
        self, content: str, delta: Mapping[str, Any], out: list[StreamEvent]
    ) -> None:
        """String content before or inside a Gemini thought summary (see ``_THOUGHT_OPEN``).
        A whole reply's ``<thought>S</thought>A`` and its streamed pieces read alike."""
        if self._content_state == _BEFORE_CONTENT:
            if not (content.startswith(_THOUGHT_OPEN) and _is_thought(delta)):
                self._content_state = _IN_ANSWER
                self._append("text", content, out)
                return
            self._content_state = _IN_SUMMARY
            content = content[len(_THOUGHT_OPEN) :]
        end = content.find(_THOUGHT_CLOSE)
        if end < 0:
            if content:
                self._append("thinking", content, out)
            return
        if end:
            self._append("thinking", content[:end], out)
        self._content_state = _IN_ANSWER
        rest = content[end + len(_THOUGHT_CLOSE) :]
        if rest:
            self._append("text", rest, out)

    def _content_part(self, part: Any, out: list[StreamEvent]) -> None:
        if isinstance(part, str):
            if part:
                self._append("text", part, out)
            return
        if not isinstance(part, dict):
            return
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                self._append("text", part["text"], out)
        elif kind == "thinking":
            inner = part.get("thinking")
            pieces = inner if isinstance(inner, list) else [inner]
            for piece in pieces:
                text = piece.get("text") if isinstance(piece, dict) else piece
                if isinstance(text, str) and text:
                    self._append("thinking", text, out)

    def _append(self, kind: str, text: str, out: list[StreamEvent]) -> None:
        held = self._held
        if held is not None and kind == "text":
            held.append(text)
            if not _may_be_limit("".join(held), self._dialect.usage_limit_prefix or ""):
                self._release(out)
            return
        if self._calls and all(c.finished() for c in self._calls):
            self._flush_calls(out)  # content after whole calls: they come first, as sent
        block = self._open
        if block is None or block.kind != kind:
            block = self._start_block(kind, out)
        if kind == "thinking":
            out.append(ThinkingDelta(block.index, text))
        else:
            out.append(TextDelta(block.index, text))

    def _release(self, out: list[StreamEvent], *, final: bool = False) -> None:
        """Stop holding text back: at the end, a whole usage-limit answer raises
        ``RateLimited``; otherwise the held pieces go out as they came."""
        held = self._held
        if held is None:
            return
        self._held = None
        prefix = self._dialect.usage_limit_prefix or ""
        text = "".join(held)
        reset = text[len(prefix) :]
        if final and text.startswith(prefix) and reset.isascii() and reset.isdigit():
            wait = max(0.0, int(reset) - time.time())
            raise RateLimited(
                f"usage limit reached ({text!r}); it resets at Unix time {reset}",
                retry_after=wait,
                reset_at=float(reset),
                provider=self._dialect.name,
                code="usage_limit",
            )
        for piece in held:
            self._append("text", piece, out)

    def _start_block(
        self, kind: str, out: list[StreamEvent], id: str | None = None, name: str = ""
    ) -> _Block:
        if self._held and kind != "text":
            self._release(out)  # text held back comes before the new block
        self._close_open(out)
        block = _Block(self._next_index, kind, id, name)
        self._next_index += 1
        self._open = block
        if kind == "tool_use":
            out.append(ContentBlockStart(block.index, kind, id, name))
        else:
            out.append(ContentBlockStart(block.index, kind))
        return block

    def _close_open(self, out: list[StreamEvent]) -> None:
        block = self._open
        if block is None:
            return
        self._open = None
        block.closed = True
        if block.kind == "tool_use":
            out.append(
                ToolUseComplete(
                    block.index,
                    block.id or "",
                    block.name,
                    self._parse_args(block),
                    block.signature,
                )
            )
        out.append(ContentBlockStop(block.index))

    def _parse_args(self, block: _Block) -> dict[str, Any]:
        text = "".join(block.fragments)
        if not text.strip():
            return {}  # no-argument tools may send "" (Claude proxies)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # deep nesting too
            raise DeserializationError(
                f"tool call {block.name!r} ({block.id}) has arguments that are not JSON: "
                f"{text[:200]!r}",
                provider=self._dialect.name,
            ) from None
        if not isinstance(value, dict):
            raise DeserializationError(
                f"tool call {block.name!r} ({block.id}) has arguments that are not a JSON object",
                provider=self._dialect.name,
            )
        return value

    def _tool_fragment(
        self, call: Mapping[str, Any], out: list[StreamEvent], signature: str | None = None
    ) -> None:
        signature = _thought_signature(call) or signature
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        name = fn.get("name")
        name = name if isinstance(name, str) and name else None
        args = fn.get("arguments")
        cid = call.get("id")
        cid = cid if isinstance(cid, str) and cid else None
        idx = _index_of(call, "tool call", self) if call.get("index") is not None else None
        if args is not None and not isinstance(args, str):
            if isinstance(args, dict):  # some proxies send the object itself
                try:
                    args = json.dumps(args, ensure_ascii=False)
                except RecursionError:  # nested deeper than the interpreter can walk
                    raise DeserializationError(
                        f"tool call {name!r} has arguments nested too deeply",
                        provider=self._dialect.name,
                    ) from None
            else:
                raise DeserializationError(
                    f"tool call {name!r} has arguments of type {type(args).__name__}",
                    provider=self._dialect.name,
                )
        target = self._call_for(idx, cid, name)
        if target is None:
            target = _Call(idx, cid)
            self._calls.append(target)
            self._tool_count += 1
            if idx is not None:
                self._calls_by_index[idx] = target
            if cid is not None:
                self._calls_by_id[cid] = target
        elif target.emitted:
            raise DeserializationError(
                f"tool call {target.name!r} ({target.id}) received a fragment after text "
                "followed its complete arguments",
                provider=self._dialect.name,
            )
        if cid is not None and target.id is None:  # an id that comes late
            target.id = cid
            self._calls_by_id[cid] = target
        if name is not None and name != target.name:
            # A name that comes late, or in pieces ("get_" then "weather").
            target.name += name
        if signature is not None and target.signature is None:
            target.signature = signature
        if args:
            target.fragments.append(args)
        self._last_call = target

    def _call_for(self, idx: int | None, cid: str | None, name: str | None) -> _Call | None:
        """The buffered call a fragment continues, or None for a new call."""
        if cid is not None and cid in self._calls_by_id:
            known = self._calls_by_id[cid]
            same_index = idx is None or known.index is None or idx == known.index
            starts_anew = (
                name is not None
                and bool(known.fragments)
                and bool(known.name)
                and name != known.name
            )
            if same_index and not starts_anew:
                return known
            raise DeserializationError(
                f"two tool calls share the id {cid!r}: {known.name!r} (index {known.index}) "
                f"and {name or known.name!r} (index {idx})",
                provider=self._dialect.name,
                code="duplicate_tool_call_id",
            )
        if idx is not None:
            known_at = self._calls_by_index.get(idx)
            if known_at is None:
                return None
            if cid is not None and known_at.id is not None:
                return None  # a new whole call reusing an index (some proxies, Mistral)
            if name is not None and known_at.fragments and known_at.name and name != known_at.name:
                return None  # a new whole call, without an id, at the same index
            return known_at
        if cid is not None or name is not None:
            return None  # a whole call (Gemini: no index, id "")
        return self._last_call  # a continuation with neither index, id nor name

    def _flush_calls(self, out: list[StreamEvent]) -> None:
        """Each buffered call as one block: start, its fragments, complete, stop."""
        for call in self._calls:
            if call.emitted:
                continue
            call.emitted = True
            cid = call.id
            if cid is None:  # Gemini sends id ""; keep ids usable and distinct
                n = self._calls.index(call)
                while f"call_{n}" in self._calls_by_id:
                    n += 1
                cid = f"call_{n}"
                self._calls_by_id[cid] = call
            block = self._start_block("tool_use", out, cid, call.name)
            block.signature = call.signature
            for fragment in call.fragments:
                block.fragments.append(fragment)
                out.append(ToolUseInputDelta(block.index, fragment))
            self._close_open(out)
        self._calls = [c for c in self._calls if not c.emitted]

    # -- the end -----------------------------------------------------------

    def _finish_with(self, raw: str, out: list[StreamEvent]) -> None:
        if raw in _FAILURE_FINISH_REASONS:
            raise StreamError(
                f"the provider ended generation with finish_reason {raw!r}",
                provider=self._dialect.name,
                code=raw,
            )
        self._release(out, final=True)
        self._flush_calls(out)
        self._close_open(out)
        self._finish = raw
        out.append(MessageDelta(map_finish_reason(raw, self._tool_count > 0), raw))

    def _complete(self, out: list[StreamEvent]) -> list[StreamEvent]:
        if not self._started:  # a body of only [DONE]: still one well-formed message
            self._started = True
            out.append(MessageStart(id=None, model=None))
        if self._finish is None:
            # [DONE] without a finish reason: still a clean end.
            self._release(out, final=True)
            self._flush_calls(out)
            self._close_open(out)
            self._finish = ""
            reason = StopReason.TOOL_USE if self._tool_count else StopReason.END_TURN
            out.append(MessageDelta(reason, None))
        usage = self._usage
        hidden = self._dialect.reasoning_outside_completion
        out.append(usage_from_json(usage, hidden) if usage is not None else Usage())
        out.append(Done())
        self.done = True
        return out

    def _in_band_error(self, payload: Any) -> Exception:
        return error_from_payload(payload, self._dialect)


def events_of_reply(chunk: Mapping[str, Any], dialect: ProviderDialect) -> list[StreamEvent]:
    """The events of a whole reply already shaped as one chunk (its message as the
    delta), ended as by ``[DONE]``; a bad chunk raises at once."""
    adapter = StreamAdapter(dialect)
    out: list[StreamEvent] = []
    adapter._chunk(chunk, out)
    adapter._complete(out)
    return out


def _may_be_limit(text: str, prefix: str) -> bool:
    """``text`` is still a beginning of ``prefix`` + a Unix time."""
    if len(text) <= len(prefix):
        return prefix.startswith(text)
    rest = text[len(prefix) :]
    return text.startswith(prefix) and rest.isascii() and rest.isdigit()


def _thought_signature(part: Mapping[str, Any]) -> str | None:
    """Gemini's ``extra_content.google.thought_signature`` on a tool call (or message)."""
    extra = part.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    sig = google.get("thought_signature") if isinstance(google, dict) else None
    return sig if isinstance(sig, str) and sig else None


def _is_thought(delta: Mapping[str, Any]) -> bool:
    """Gemini's ``extra_content.google.thought`` flag (a summary only with ``<thought>``)."""
    extra = delta.get("extra_content")
    if not isinstance(extra, dict):
        return False
    google = extra.get("google")
    return isinstance(google, dict) and google.get("thought") is True


# The scanner json.loads runs (the C one where there is one), called directly.
_scan_once: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    cast(Any, json.JSONDecoder())
)


def _loads(data: str) -> Any:
    """``json.loads(data)``, the same result or error, without its two regex passes and
    three Python calls when ``data`` starts with the document (as every frame does)."""
    try:
        value, end = _scan_once(data, 0)
    except StopIteration:  # leading whitespace, a BOM or not JSON: json.loads decides
        return json.loads(data)
    if end != len(data) and data[end:].strip(" \t\n\r"):  # what json.loads skips after it
        return json.loads(data)  # raises "Extra data"
    return value


def _loads_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # deep nesting too
        return {
            "error": {"message": data or "the provider sent an `event: error` frame with no data"}
        }
