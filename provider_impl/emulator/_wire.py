"""What every emulated wire format shares: the renderer base class and its context.

Each :class:`Dialect` renders a neutral
:class:`~provider_impl.reply_script.ReplyScript` the way that provider puts it on
the wire, quirks included (checked against real traffic:
``cassettes/real/`` and the reply contracts). All output is deterministic for a given request.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from provider_impl.dialects import ProviderDialect
from provider_impl.reply_script import ReplyScript, ToolCallSpec
from provider_impl.schemas import refuses_unknown_fields, top_level_fields

from ._http import Request

JSON = Any
Headers = list[tuple[str, str]]

#: Fixed ``created`` timestamp of every response (2026-01-01T00:00:00Z).
CREATED = 1767225600

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def prefix_for(record: ProviderDialect) -> str:
    """Where the emulator serves a provider: ``/<name>`` + its base URL's path."""
    return f"/{record.name}" + urlsplit(record.base_url).path.rstrip("/")


class IdGen:
    """Deterministic pseudo-random ids derived from the request."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed

    def _digest(self, label: str, n: int) -> bytes:
        return hashlib.shake_256(self._seed + b"\x00" + label.encode()).digest(n)

    def alnum(self, label: str, n: int) -> str:
        return "".join(ALNUM[b % 62] for b in self._digest(label, n))

    def hex(self, label: str, n: int) -> str:
        return self._digest(label, (n + 1) // 2).hex()[:n]

    def number(self, label: str, lo: int, hi: int) -> int:
        return lo + int.from_bytes(self._digest(label, 4), "big") % (hi - lo + 1)

    def b64url(self, label: str, n_bytes: int) -> str:
        return base64.urlsafe_b64encode(self._digest(label, n_bytes)).rstrip(b"=").decode()

    def int64(self, label: str) -> int:
        return int.from_bytes(self._digest(label, 8), "big", signed=True)


@dataclass
class Ctx:
    """Per-request rendering context."""

    provider: str
    ids: IdGen
    body: dict[str, JSON] = field(default_factory=dict)
    model: str = ""
    variant: str = ""
    scenario: str = "text"

    @property
    def include_usage(self) -> bool:
        opts = self.body.get("stream_options")
        return isinstance(opts, dict) and opts.get("include_usage") is True

    @property
    def include_obfuscation(self) -> bool:
        opts = self.body.get("stream_options")
        return not (isinstance(opts, dict) and opts.get("include_obfuscation") is False)


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    body: JSON
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Frame:
    """One SSE event as bytes. ``kind`` is ``data``, ``comment`` or ``done``."""

    kind: str
    raw: bytes


DONE = Frame("done", b"data: [DONE]\n\n")


def comment(text: str) -> Frame:
    return Frame("comment", f": {text}\n\n".encode())


class Dialect:
    """One wire format. An instance serves one provider record (its name and prefix)."""

    #: The wire format's name, as a record's ``wire`` field names it.
    wire: ClassVar[str] = ""
    context_window: ClassVar[int] = 128_000
    #: Top-level fields the provider accepts, read from its request contract
    #: (``provider_impl/schemas/<provider>.json``); ``None`` accepts anything (claude proxy).
    gzip: ClassVar[bool] = False
    sort_keys: ClassVar[bool] = False
    sse_content_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    json_content_type: ClassVar[str] = "application/json"
    compact_arguments: ClassVar[bool] = True

    def __init__(self, record: ProviderDialect) -> None:
        self.name = record.name
        self.prefix = prefix_for(record)
        # A local proxy with a dummy key checks none.
        self.requires_auth = record.checks_key
        #: The tool-call ids it refuses any other shape of (Mistral's 9 alphanumerics).
        self.tool_call_ids = record.tool_call_ids
        #: Fields the provider accepts, from its request contract; ``None`` when
        #: it ignores what it does not know (the Claude proxy).
        self.known_fields = (
            top_level_fields(record.contract_name)
            if refuses_unknown_fields(record.contract_name)
            else None
        )

    def bad_tool_call_id(self, body: dict[str, JSON]) -> str | None:
        """The first tool-call id in the conversation (a call's or a result's) that does
        not have the record's shape, or None."""
        fmt = self.tool_call_ids
        messages = body.get("messages")
        if fmt is None or not isinstance(messages, list):
            return None
        for m in messages:
            if not isinstance(m, dict):
                continue
            calls = m.get("tool_calls")
            calls = calls if isinstance(calls, list) else []
            ids = [c.get("id") for c in calls if isinstance(c, dict)]
            if m.get("role") == "tool":
                ids.append(m.get("tool_call_id"))
            for call_id in ids:
                if isinstance(call_id, str) and not fmt.matches(call_id):
                    return call_id
        return None

    def model_name(self, model: JSON) -> str:
        """The model name the replies report for the requested one."""
        return model if isinstance(model, str) else ""

    # ----------------------------------------------------------------- helpers
    def dumps(self, obj: JSON, ctx: Ctx | None = None) -> str:
        return json.dumps(
            obj,
            ensure_ascii=False,  # providers send UTF-8 as is
            separators=(",", ":"),
            sort_keys=self.sort_keys,
        )

    def data(self, obj: JSON, ctx: Ctx) -> Frame:
        return Frame("data", b"data: " + self.dumps(obj, ctx).encode("utf-8") + b"\n\n")

    def arguments(self, call: ToolCallSpec) -> str:
        if self.compact_arguments:
            return json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))
        return json.dumps(call.arguments, ensure_ascii=False)

    def all_arguments(self, script: ReplyScript) -> str:
        return "".join(self.arguments(c) for c in script.tool_calls)

    def tool_call_id(self, ctx: Ctx, i: int) -> str:
        return ""  # Gemini's style; the others have their own id shapes

    def message_tool_calls(self, script: ReplyScript, ctx: Ctx) -> list[JSON]:
        """The script's tool calls as a non-streaming ``message.tool_calls`` lists them."""
        return [
            {
                "id": self.tool_call_id(ctx, i),
                "type": "function",
                "function": {"name": c.name, "arguments": self.arguments(c)},
            }
            for i, c in enumerate(script.tool_calls)
        ]

    def finish(self, neutral: str) -> str:
        return "length" if neutral == "model_length" else neutral

    def completion_id(self, ctx: Ctx) -> str:
        return "chatcmpl-" + ctx.ids.alnum("completion", 29)

    def head(self, ctx: Ctx, kind: str) -> dict[str, JSON]:
        """The keys an OpenAI-style reply or chunk opens with, in OpenAI's order;
        ``kind`` is its ``object`` (``chat.completion`` or ``chat.completion.chunk``)."""
        return {
            "id": self.completion_id(ctx),
            "object": kind,
            "created": CREATED,
            "model": ctx.model,
        }

    def request_id(self, ctx: Ctx) -> str:
        return "req_" + ctx.ids.hex("request", 32)

    def response_headers(self, ctx: Ctx) -> Headers:
        return []

    # ------------------------------------------------------------------- auth
    def api_key(self, req: Request) -> str | None:
        auth = req.header("authorization")
        if auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
            return key or None
        return None

    def check_auth(self, req: Request, ctx: Ctx) -> ErrorResponse | None:
        if not self.requires_auth:
            return None
        key = self.api_key(req)
        if key is None or "invalid" in key:
            return self.auth_error(key, ctx)
        return None

    def auth_error(self, key: str | None, ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    # ------------------------------------------------------------- validation
    def validate(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse | None:
        if self.known_fields is not None:
            extra = [k for k in body if k not in self.known_fields]
            if extra:
                return self.unknown_fields(body, extra, ctx)
        return None

    def unknown_fields(self, body: dict[str, JSON], extra: list[str], ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    def invalid_param_error(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse:
        """Scenario ``error_invalid_param``: reject ``not_a_real_param``."""
        return self.unknown_fields(
            {**body, "not_a_real_param": body.get("not_a_real_param", True)},
            ["not_a_real_param"],
            ctx,
        )

    # ----------------------------------------------------------------- errors
    def invalid_json(self, ctx: Ctx) -> ErrorResponse:
        return self.bad_request("We could not parse the JSON body of your request.", ctx)

    def bad_request(self, message: str, ctx: Ctx, status: int = 400) -> ErrorResponse:
        raise NotImplementedError

    def not_found(self, path: str, ctx: Ctx) -> ErrorResponse:
        return self.bad_request(f"Invalid URL (POST {path})", ctx, status=404)

    def method_not_allowed(self, method: str, path: str, ctx: Ctx) -> ErrorResponse:
        return self.bad_request(f"Invalid method for URL ({method} {path})", ctx, status=405)

    def context_error(self, n: int, ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    def rate_limited(self, retry_after: int, ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    @staticmethod
    def retry_headers(retry_after: int) -> tuple[tuple[str, str], ...]:
        """The ``retry-after`` header of a 429, in seconds."""
        return (("retry-after", str(retry_after)),)

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    def unavailable(self, ctx: Ctx) -> ErrorResponse:
        """503 for the ``unavailable_then_ok`` fault."""
        ov = self.overloaded(ctx)
        return ErrorResponse(503, ov.body, ov.headers)

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    # -------------------------------------------------------------- rendering
    def stream(self, script: ReplyScript, ctx: Ctx) -> list[Frame]:
        raise NotImplementedError

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        raise NotImplementedError

    def completion(self, script: ReplyScript, ctx: Ctx) -> JSON:
        raise NotImplementedError


class PlainChunks(Dialect):
    """Chunks with the keys every OpenAI-style stream has and nothing more
    (Mistral, and the Claude proxy); the other dialects shape theirs."""

    def _chunk(self, ctx: Ctx, delta: JSON, finish: str | None = None, usage: JSON = None) -> JSON:
        obj: dict[str, JSON] = {
            **self.head(ctx, "chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            obj["usage"] = usage
        return obj
