"""Per-provider wire formats: auth, validation, errors, stream chunks, completions.

Each :class:`Dialect` renders a neutral :class:`~._script.Script` the way that
provider puts it on the wire, quirks included (checked against real traffic:
``cassettes/real/`` and the reply contracts). All output is deterministic for a given request.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from provider_impl.dialects import BUILTIN, ProviderDialect
from provider_impl.schemas import refuses_unknown_fields, top_level_fields

from ._http import Request
from ._script import Script, ToolCallSpec, estimate_tokens, split_fixed

JSON = Any
Headers = list[tuple[str, str]]

#: Fixed ``created`` timestamp of every response (2026-01-01T00:00:00Z).
CREATED = 1767225600

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def prefix_for(record: ProviderDialect) -> str:
    """Where the emulator serves a provider: ``/<name>`` + its base URL's path."""
    return f"/{record.name}" + urlsplit(record.base_url).path.rstrip("/")


#: The built-in providers' prefixes (a dialect file's provider gets one the same way).
PROVIDER_PREFIXES: dict[str, str] = {d.name: prefix_for(d) for d in BUILTIN}


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
    ensure_ascii: bool = False

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
            ensure_ascii=bool(ctx and ctx.ensure_ascii),
            separators=(",", ":"),
            sort_keys=self.sort_keys,
        )

    def data(self, obj: JSON, ctx: Ctx) -> Frame:
        return Frame("data", b"data: " + self.dumps(obj, ctx).encode("utf-8") + b"\n\n")

    def arguments(self, call: ToolCallSpec) -> str:
        if self.compact_arguments:
            return json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))
        return json.dumps(call.arguments, ensure_ascii=False)

    def all_arguments(self, script: Script) -> str:
        return "".join(self.arguments(c) for c in script.tool_calls)

    def tool_call_id(self, ctx: Ctx, i: int) -> str:
        return ""  # Gemini's style; the others have their own id shapes

    def message_tool_calls(self, script: Script, ctx: Ctx) -> list[JSON]:
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

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    def unavailable(self, ctx: Ctx) -> ErrorResponse:
        """503 for the ``unavailable_then_ok`` fault."""
        ov = self.overloaded(ctx)
        return ErrorResponse(503, ov.body, ov.headers)

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        raise NotImplementedError

    # -------------------------------------------------------------- rendering
    def stream(self, script: Script, ctx: Ctx) -> list[Frame]:
        raise NotImplementedError

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        raise NotImplementedError

    def completion(self, script: Script, ctx: Ctx) -> JSON:
        raise NotImplementedError


def _retry_headers(retry_after: int) -> tuple[tuple[str, str], ...]:
    return (("retry-after", str(retry_after)),)


# =============================================================================
# OpenAI
# =============================================================================


def _openai_error(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> JSON:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


#: Model prefixes whose real replies say ``system_fingerprint: null`` (gpt-5*,
#: o4-mini, gpt-4.5-preview, gpt-4-1106-preview in cassettes/real/openai).
_OPENAI_NO_FINGERPRINT = ("gpt-5", "o4-", "gpt-4.5", "gpt-4-")


def mask_key(key: str) -> str:
    """OpenAI-style masked key: never more than a prefix and the last 4 characters."""
    if len(key) < 12:
        return "*" * len(key)
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}...{key[-4:]}"


class OpenAiDialect(Dialect):
    wire = "openai"
    context_window = 128_000

    def fingerprint(self, ctx: Ctx) -> str | None:
        # Real replies of these model families carry system_fingerprint: null.
        if ctx.model.startswith(_OPENAI_NO_FINGERPRINT):
            return None
        return "fp_" + ctx.ids.hex("fingerprint", 10)

    def response_headers(self, ctx: Ctx) -> Headers:
        return [
            ("x-request-id", self.request_id(ctx)),
            ("openai-version", "2020-10-01"),
            ("openai-processing-ms", str(ctx.ids.number("ms", 80, 900))),
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-limit-tokens", "30000000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-remaining-tokens", "29999990"),
            ("x-ratelimit-reset-requests", "6ms"),
            ("x-ratelimit-reset-tokens", "0s"),
        ]

    def auth_error(self, key: str | None, ctx: Ctx) -> ErrorResponse:
        if key is None:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:
            msg = (
                f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
        return ErrorResponse(
            401, _openai_error(msg, "invalid_request_error", None, "invalid_api_key")
        )

    def validate(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse | None:
        if "messages" not in body:
            return ErrorResponse(
                400,
                _openai_error(
                    "Missing required parameter: 'messages'.",
                    "invalid_request_error",
                    "messages",
                    "missing_required_parameter",
                ),
            )
        err = super().validate(body, ctx)
        if err is not None:
            return err
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.bad_request("you must provide a model parameter", ctx)
        if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
            return ErrorResponse(
                400,
                _openai_error(
                    "max_tokens is not supported with max_completion_tokens. "
                    "Use only max_completion_tokens.",
                    "invalid_request_error",
                    "max_tokens",
                    "unsupported_parameter",
                ),
            )
        if "stream_options" in body and body.get("stream") is not True:
            return ErrorResponse(
                400,
                _openai_error(
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    "invalid_request_error",
                    "stream_options",
                    None,
                ),
            )
        return None

    def unknown_fields(self, body: dict[str, JSON], extra: list[str], ctx: Ctx) -> ErrorResponse:
        if len(extra) == 1:
            msg = f"Unrecognized request argument supplied: {extra[0]}"
        else:
            msg = f"Unrecognized request arguments supplied: {', '.join(extra)}"
        return ErrorResponse(400, _openai_error(msg, "invalid_request_error"))

    def bad_request(self, message: str, ctx: Ctx, status: int = 400) -> ErrorResponse:
        return ErrorResponse(status, _openai_error(message, "invalid_request_error"))

    def context_error(self, n: int, ctx: Ctx) -> ErrorResponse:
        msg = (
            f"This model's maximum context length is {self.context_window} tokens. However, "
            f"your messages resulted in {n} tokens. Please reduce the length of the messages."
        )
        return ErrorResponse(
            400, _openai_error(msg, "invalid_request_error", "messages", "context_length_exceeded")
        )

    def rate_limited(self, retry_after: int, ctx: Ctx) -> ErrorResponse:
        msg = (
            f"Rate limit reached for {ctx.model or 'gpt-4o-mini'} in organization org-emulator "
            "on requests per min (RPM): Limit 3, Used 3, Requested 1. "
            f"Please try again in {retry_after}s."
        )
        return ErrorResponse(
            429,
            _openai_error(msg, "requests", None, "rate_limit_exceeded"),
            (
                ("retry-after", str(retry_after)),
                ("retry-after-ms", str(retry_after * 1000)),
                ("x-ratelimit-limit-requests", "3"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", f"{retry_after}s"),
            ),
        )

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            503, _openai_error("The server is overloaded or not ready yet.", "server_error")
        )

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            500,
            _openai_error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
            ),
        )

    # --------------------------------------------------------------- chunks
    def _usage(self, script: Script, ctx: Ctx) -> JSON:
        reasoning = script.thinking_tokens + script.hidden_reasoning_tokens
        ct = script.completion_tokens(self.all_arguments(script))
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": ct,
            "total_tokens": script.prompt_tokens + ct,
            "prompt_tokens_details": {"cached_tokens": script.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _chunk(self, ctx: Ctx, n: int, choices: list[JSON], usage: JSON = None) -> JSON:
        obj: dict[str, JSON] = {
            "id": self.completion_id(ctx),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": ctx.model,
            "service_tier": "default",
            "system_fingerprint": self.fingerprint(ctx),
            "choices": choices,
        }
        if ctx.include_usage:
            obj["usage"] = usage
        if ctx.include_obfuscation:
            obj["obfuscation"] = ctx.ids.alnum(f"obf{n}", ctx.ids.number(f"obfl{n}", 2, 15))
        return obj

    @staticmethod
    def _choice(delta: JSON, finish: str | None = None) -> JSON:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def tool_call_id(self, ctx: Ctx, i: int) -> str:
        return "call_" + ctx.ids.alnum(f"call{i}", 24)

    def stream(self, script: Script, ctx: Ctx) -> list[Frame]:
        deltas: list[JSON] = []
        if script.tool_calls:
            headers: list[JSON] = []
            for i, call in enumerate(script.tool_calls):
                headers.append(
                    {
                        "index": i,
                        "id": self.tool_call_id(ctx, i),
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                )
            if len(script.tool_calls) == 1:
                deltas.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": headers[:1],
                        "refusal": None,
                    }
                )
            else:
                deltas.append({"role": "assistant", "content": None})
            for i, call in enumerate(script.tool_calls):
                if i > 0 or len(script.tool_calls) > 1:
                    deltas.append({"tool_calls": [headers[i]]})
                for frag in split_fixed(self.arguments(call)):
                    deltas.append({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})
        else:
            deltas.append({"role": "assistant", "content": "", "refusal": None})
            deltas.extend({"content": piece} for piece in script.text if piece)
        frames = [
            self.data(self._chunk(ctx, n, [self._choice(d)]), ctx) for n, d in enumerate(deltas)
        ]
        n = len(deltas)
        frames.append(
            self.data(self._chunk(ctx, n, [self._choice({}, self.finish(script.finish))]), ctx)
        )
        if ctx.include_usage:
            frames.append(self.data(self._chunk(ctx, n + 1, [], self._usage(script, ctx)), ctx))
        frames.append(DONE)
        return frames

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        return [self.data(self.server_error(ctx).body, ctx)]

    def completion(self, script: Script, ctx: Ctx) -> JSON:
        message: dict[str, JSON] = {
            "role": "assistant",
            "content": None if script.tool_calls else script.full_text,
            "refusal": None,
            "annotations": [],
        }
        if script.tool_calls:
            message["tool_calls"] = self.message_tool_calls(script, ctx)
        return {
            "id": self.completion_id(ctx),
            "object": "chat.completion",
            "created": CREATED,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish(script.finish),
                }
            ],
            "usage": self._usage(script, ctx),
            "service_tier": "default",
            "system_fingerprint": self.fingerprint(ctx),
        }


# =============================================================================
# Gemini (OpenAI compatibility layer)
# =============================================================================


def _google_error(code: int, status: str, message: str, details: list[JSON] | None = None) -> JSON:
    err: dict[str, JSON] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return [{"error": err}]


# Google's words for a Gemini 3 follow-up whose function call lost its signature
# (400 INVALID_ARGUMENT, as users report it from the OpenAI layer).
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required "
    "for tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}` , position {position}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


def signs_tool_calls(model: JSON) -> bool:
    """Gemini 3 models sign their tool calls and check the signatures come back."""
    return isinstance(model, str) and model.removeprefix("models/").startswith("gemini-3")


def thought_signature(name: str, arguments: str) -> str:
    """A deterministic stand-in for Google's opaque, base64 signature."""
    digest = hashlib.sha256(f"emulator-thought-signature\x00{name}\x00{arguments}".encode())
    return base64.b64encode(digest.digest() * 3).decode()


def _signature_of(call: JSON) -> JSON:
    extra = call.get("extra_content") if isinstance(call, dict) else None
    google = extra.get("google") if isinstance(extra, dict) else None
    return google.get("thought_signature") if isinstance(google, dict) else None


def unsigned_call(messages: list[JSON]) -> tuple[str, int] | None:
    """The first unsigned step of the current turn: (function name, 1-based position in
    Gemini's contents), or None. The current turn starts after the last user message;
    each of its steps (an assistant message with calls) needs a signature on its first
    call. Gemini folds system messages out of contents and consecutive tool results
    into one content."""
    msgs = [m for m in messages if isinstance(m, dict) and m.get("role") not in ("system",)]
    last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
    position = 0
    for i, m in enumerate(msgs):
        if not (m.get("role") == "tool" and i > 0 and msgs[i - 1].get("role") == "tool"):
            position += 1
        calls = m.get("tool_calls")
        if (
            i <= last_user
            or m.get("role") != "assistant"
            or not isinstance(calls, list)
            or not calls
        ):
            continue
        sig = _signature_of(calls[0])
        if not isinstance(sig, str) or not sig:
            fn = calls[0].get("function") if isinstance(calls[0], dict) else None
            name = fn.get("name") if isinstance(fn, dict) else None
            return (name if isinstance(name, str) else "", position)
    return None


class GeminiDialect(Dialect):
    wire = "gemini"
    context_window = 1_048_576  # the real limit behind the advertised 1M
    gzip = True
    sort_keys = True
    sse_content_type = "text/event-stream"
    json_content_type = "application/json; charset=UTF-8"

    def api_key(self, req: Request) -> str | None:
        key = super().api_key(req)
        if key is None:
            key = req.header("x-goog-api-key").strip() or None
        if key is None:
            values = req.query.get("key")
            if values and values[0]:
                key = values[0]
        return key

    def response_headers(self, ctx: Ctx) -> Headers:
        return [
            ("vary", "Origin, X-Origin, Referer"),
            ("server", "scaffolding on HTTPServer2"),
            ("server-timing", f"gfet4t7; dur={ctx.ids.number('ms', 200, 1500)}"),
            ("x-xss-protection", "0"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-content-type-options", "nosniff"),
        ]

    def auth_error(self, key: str | None, ctx: Ctx) -> ErrorResponse:
        if key is None:
            msg = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API."
            )
            reason = "CREDENTIALS_MISSING"
        else:
            msg = "API key not valid. Please pass a valid API key."
            reason = "API_KEY_INVALID"
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
        return ErrorResponse(401, _google_error(401, "UNAUTHENTICATED", msg, details))

    def validate(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse | None:
        err = super().validate(body, ctx)
        if err is not None:
            return err
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.bad_request("model is not specified", ctx)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self.bad_request(
                "* GenerateContentRequest.contents: contents is not specified\n", ctx
            )
        if signs_tool_calls(body["model"]):
            unsigned = unsigned_call(body["messages"])
            if unsigned is not None:
                name, position = unsigned
                return self.bad_request(MISSING_SIGNATURE.format(name=name, position=position), ctx)
        return None

    def unknown_fields(self, body: dict[str, JSON], extra: list[str], ctx: Ctx) -> ErrorResponse:
        msgs = [
            f'Invalid JSON payload received. Unknown name "{f}": Cannot find field.' for f in extra
        ]
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"description": m} for m in msgs],
            }
        ]
        return ErrorResponse(400, _google_error(400, "INVALID_ARGUMENT", "\n".join(msgs), details))

    def invalid_json(self, ctx: Ctx) -> ErrorResponse:
        msg = "Invalid JSON payload received. Unexpected token."
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"description": msg}],
            }
        ]
        return ErrorResponse(400, _google_error(400, "INVALID_ARGUMENT", msg, details))

    def bad_request(self, message: str, ctx: Ctx, status: int = 400) -> ErrorResponse:
        google_status = {404: "NOT_FOUND", 405: "INVALID_ARGUMENT"}.get(status, "INVALID_ARGUMENT")
        return ErrorResponse(status, _google_error(status, google_status, message))

    def context_error(self, n: int, ctx: Ctx) -> ErrorResponse:
        msg = (
            f"The input token count ({n}) exceeds the maximum number of tokens allowed "
            f"({self.context_window})."
        )
        return ErrorResponse(400, _google_error(400, "INVALID_ARGUMENT", msg))

    def rate_limited(self, retry_after: int, ctx: Ctx) -> ErrorResponse:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/"
                        "generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": ctx.model},
                        "quotaValue": "10",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"},
        ]
        msg = (
            "You exceeded your current quota, please check your plan and billing details. "
            f"Please retry in {retry_after}s."
        )
        return ErrorResponse(
            429, _google_error(429, "RESOURCE_EXHAUSTED", msg, details), _retry_headers(retry_after)
        )

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            503,
            _google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        )

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            500,
            _google_error(500, "INTERNAL", "An internal error has occurred. Please retry."),
        )

    def finish(self, neutral: str) -> str:
        # A stream says "stop" after tool calls too; a whole reply says "tool_calls"
        # (see completion_finish).
        return {"tool_calls": "stop", "model_length": "length"}.get(neutral, neutral)

    def completion_finish(self, neutral: str) -> str:
        return super().finish(neutral)

    def completion_id(self, ctx: Ctx) -> str:
        # Whole replies carry Google's response id (22 base64url characters);
        # streamed chunks carry none.
        return ctx.ids.b64url("completion", 16)

    def _usage(self, script: Script, completion: int) -> JSON:
        return {
            "completion_tokens": completion,
            "prompt_tokens": script.prompt_tokens,
            "total_tokens": script.prompt_tokens + completion,
        }

    def _chunk(self, ctx: Ctx, delta: JSON, finish: str | None, usage: JSON) -> JSON:
        choice: dict[str, JSON] = {"delta": delta, "index": 0}
        if finish is not None:
            choice["finish_reason"] = finish
        return {
            "choices": [choice],
            "created": CREATED,
            "model": ctx.model,
            "object": "chat.completion.chunk",
            "usage": usage,
        }

    def _tool_calls(self, script: Script, ctx: Ctx) -> list[JSON]:
        calls: list[JSON] = [
            {
                "function": {"arguments": self.arguments(c), "name": c.name},
                "id": "",
                "type": "function",
            }
            for c in script.tool_calls
        ]
        if calls and signs_tool_calls(ctx.model):
            # Gemini 3 signs the first call of a set (gemini-api/docs/thought-signatures).
            first = script.tool_calls[0]
            calls[0]["extra_content"] = {
                "google": {
                    "thought_signature": thought_signature(first.name, self.arguments(first))
                }
            }
        return calls

    def stream(self, script: Script, ctx: Ctx) -> list[Frame]:
        total = script.completion_tokens(self.all_arguments(script))
        finish = self.finish(script.finish)
        if script.tool_calls:
            delta = {"role": "assistant", "tool_calls": self._tool_calls(script, ctx)}
            return [
                self.data(self._chunk(ctx, delta, finish, self._usage(script, total)), ctx),
                DONE,
            ]
        deltas: list[JSON] = []
        # Thought summaries as Gemini streams them: flagged pieces, "<thought>" opening
        # the first, "</thought>" heading the first piece of the answer.
        for t in script.thinking:
            deltas.append(
                {"content": t, "extra_content": {"google": {"thought": True}}, "role": "assistant"}
            )
        answer = list(script.text) or ([""] if script.thinking else [])
        deltas.extend({"content": p, "role": "assistant"} for p in answer)
        pieces = [d["content"] for d in deltas]  # usage counts the words, not the tags
        if script.thinking:
            deltas[0]["content"] = "<thought>" + pieces[0]
            deltas[len(script.thinking)]["content"] = "</thought>" + pieces[len(script.thinking)]
        frames: list[Frame] = []
        seen = ""
        for i, delta in enumerate(deltas):
            last = i == len(deltas) - 1
            seen += pieces[i]
            # Usage grows chunk by chunk; the first says 0, the last one is final.
            used = total if last else (0 if i == 0 else min(total, estimate_tokens(seen)))
            frames.append(
                self.data(
                    self._chunk(ctx, delta, finish if last else None, self._usage(script, used)),
                    ctx,
                )
            )
        frames.append(DONE)
        return frames

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        body = self.server_error(ctx).body
        if ctx.variant == "object":
            body = body[0]
        return [self.data(body, ctx)]

    def completion(self, script: Script, ctx: Ctx) -> JSON:
        message: dict[str, JSON] = {"role": "assistant"}
        if script.tool_calls:
            message["tool_calls"] = self._tool_calls(script, ctx)
        else:
            message["content"] = script.full_text
        total = script.completion_tokens(self.all_arguments(script))
        return {
            "choices": [
                {
                    "finish_reason": self.completion_finish(script.finish),
                    "index": 0,
                    "message": message,
                }
            ],
            "created": CREATED,
            "id": self.completion_id(ctx),
            "model": ctx.model,
            "object": "chat.completion",
            "usage": self._usage(script, total),
        }


# =============================================================================
# Mistral
# =============================================================================


def _mistral_error(message: JSON, type_: str, code: str | None = None) -> JSON:
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


class _PlainChunks(Dialect):
    """Chunks with the keys every OpenAI-style stream has and nothing more
    (Mistral, and the Claude proxy); the other dialects shape theirs."""

    def _chunk(self, ctx: Ctx, delta: JSON, finish: str | None = None, usage: JSON = None) -> JSON:
        obj: dict[str, JSON] = {
            "id": self.completion_id(ctx),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": ctx.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            obj["usage"] = usage
        return obj


class MistralDialect(_PlainChunks):
    wire = "mistral"
    context_window = 131_072  # Mistral counts 128k as 131,072
    compact_arguments = False

    def completion_id(self, ctx: Ctx) -> str:
        return ctx.ids.hex("completion", 32)

    def request_id(self, ctx: Ctx) -> str:
        return ctx.ids.hex("request", 32)

    def response_headers(self, ctx: Ctx) -> Headers:
        h = ctx.ids.hex("correlation", 32)
        return [
            ("mistral-correlation-id", f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"),
            ("x-kong-request-id", self.request_id(ctx)),
            ("x-ratelimitbysize-limit-minute", "500000"),
            ("x-ratelimitbysize-remaining-minute", "499900"),
        ]

    def auth_error(self, key: str | None, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(401, {"message": "Unauthorized", "request_id": self.request_id(ctx)})

    def validate(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse | None:
        details: list[JSON] = []
        for name in ("model", "messages"):
            if name not in body:
                details.append(
                    {
                        "type": "missing",
                        "loc": ["body", name],
                        "msg": "Field required",
                        "input": body,
                    }
                )
        details.extend(
            self._extra_details(body, [k for k in body if k not in (self.known_fields or ())])
        )
        if details:
            return self._422(details)
        bad_id = self.bad_tool_call_id(body)
        if bad_id is not None and self.tool_call_ids is not None:
            # Mistral's words and code for it (reported by users of its API, 2025).
            n = self.tool_call_ids.length
            msg = f"Tool call id was {bad_id} but must be a-z, A-Z, 0-9, with a length of {n}."
            return ErrorResponse(400, _mistral_error(msg, "invalid_function_call", "3280"))
        return None

    @staticmethod
    def _extra_details(body: dict[str, JSON], extra: list[str]) -> list[JSON]:
        return [
            {
                "type": "extra_forbidden",
                "loc": ["body", name],
                "msg": "Extra inputs are not permitted",
                "input": body.get(name),
            }
            for name in extra
        ]

    def _422(self, details: list[JSON]) -> ErrorResponse:
        return ErrorResponse(422, _mistral_error({"detail": details}, "invalid_request_error"))

    def unknown_fields(self, body: dict[str, JSON], extra: list[str], ctx: Ctx) -> ErrorResponse:
        return self._422(self._extra_details(body, extra))

    def invalid_param_error(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse:
        extra = [k for k in body if k not in (self.known_fields or ())]
        if extra:
            return self.unknown_fields(body, extra, ctx)
        return super().invalid_param_error(body, ctx)

    def invalid_json(self, ctx: Ctx) -> ErrorResponse:
        detail = [
            {
                "type": "json_invalid",
                "loc": ["body", 0],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting value"},
            }
        ]
        return ErrorResponse(400, _mistral_error({"detail": detail}, "invalid_request_error"))

    def bad_request(self, message: str, ctx: Ctx, status: int = 400) -> ErrorResponse:
        return ErrorResponse(status, _mistral_error(message, "invalid_request_error"))

    def not_found(self, path: str, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            404,
            {"message": "no Route matched with those values", "request_id": self.request_id(ctx)},
        )

    def context_error(self, n: int, ctx: Ctx) -> ErrorResponse:
        msg = (
            f"Prompt contains {n} tokens and 0 draft tokens, too large for model with "
            f"{self.context_window} maximum context length"
        )
        return ErrorResponse(400, _mistral_error(msg, "invalid_request_message_error", "3051"))

    def rate_limited(self, retry_after: int, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            429,
            _mistral_error("Requests rate limit exceeded", "rate_limited", "1300"),
            (("Retry-After", str(retry_after)),),
        )

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            503, _mistral_error("Service unavailable", "service_unavailable", "3505")
        )

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            500, _mistral_error("Internal server error", "internal_server_error", "3000")
        )

    def finish(self, neutral: str) -> str:
        return neutral

    def tool_call_id(self, ctx: Ctx, i: int) -> str:
        return ctx.ids.alnum(f"call{i}", 9)

    def _usage(self, script: Script) -> JSON:
        ct = script.completion_tokens(self.all_arguments(script))
        # Key order as Mistral sends it.
        return {
            "prompt_tokens": script.prompt_tokens,
            "total_tokens": script.prompt_tokens + ct,
            "completion_tokens": ct,
        }

    def stream(self, script: Script, ctx: Ctx) -> list[Frame]:
        frames = [self.data(self._chunk(ctx, {"role": "assistant", "content": ""}), ctx)]
        finish = self.finish(script.finish)
        if script.tool_calls:
            calls = [
                {
                    "id": self.tool_call_id(ctx, i),
                    "function": {"name": c.name, "arguments": self.arguments(c)},
                }
                for i, c in enumerate(script.tool_calls)
            ]
            frames.append(
                self.data(self._chunk(ctx, {"tool_calls": calls}, finish, self._usage(script)), ctx)
            )
            frames.append(DONE)
            return frames
        for t in script.thinking:
            block = [{"type": "thinking", "thinking": [{"type": "text", "text": t}]}]
            frames.append(self.data(self._chunk(ctx, {"content": block}), ctx))
        for p in script.text:
            frames.append(self.data(self._chunk(ctx, {"content": p}), ctx))
        frames.append(
            self.data(self._chunk(ctx, {"content": ""}, finish, self._usage(script)), ctx)
        )
        frames.append(DONE)
        return frames

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        usage = {"prompt_tokens": 1, "total_tokens": 1, "completion_tokens": 0}
        return [self.data(self._chunk(ctx, {"content": ""}, "error", usage), ctx), DONE]

    def completion(self, script: Script, ctx: Ctx) -> JSON:
        content: JSON = script.full_text
        if script.thinking:
            content = [
                {
                    "type": "thinking",
                    "thinking": [{"type": "text", "text": "".join(script.thinking)}],
                },
                {"type": "text", "text": script.full_text},
            ]
        tool_calls: JSON = None
        if script.tool_calls:
            content = ""
            # Real whole replies list id, function and index, but no type.
            tool_calls = [
                {
                    "id": self.tool_call_id(ctx, i),
                    "function": {"name": c.name, "arguments": self.arguments(c)},
                    "index": i,
                }
                for i, c in enumerate(script.tool_calls)
            ]
        return {
            "id": self.completion_id(ctx),
            "object": "chat.completion",
            "model": ctx.model,
            "usage": self._usage(script),
            "created": CREATED,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "tool_calls": tool_calls,
                        "content": content,
                    },
                    "finish_reason": self.finish(script.finish),
                }
            ],
        }


# =============================================================================
# GLM (Z.ai / BigModel)
# =============================================================================


def _glm_error(code: str, message: str) -> JSON:
    return {"error": {"code": code, "message": message}}


class GlmDialect(Dialect):
    wire = "glm"
    context_window = 200_000
    sse_content_type = "text/event-stream;charset=UTF-8"
    json_content_type = "application/json;charset=UTF-8"

    def completion_id(self, ctx: Ctx) -> str:
        # Beijing-time timestamp of `created`, then 16 hex characters.
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(CREATED + 8 * 3600))
        return stamp + ctx.ids.hex("completion", 16)

    def request_id(self, ctx: Ctx) -> str:
        return self.completion_id(ctx)

    def response_headers(self, ctx: Ctx) -> Headers:
        return [("x-log-id", self.request_id(ctx))]

    def auth_error(self, key: str | None, ctx: Ctx) -> ErrorResponse:
        if key is None:
            return ErrorResponse(
                401,
                _glm_error("1001", "Authorization header is missing; authentication failed."),
            )
        return ErrorResponse(
            401, _glm_error("1000", "Authentication failed: the API key is invalid.")
        )

    def validate(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse | None:
        err = super().validate(body, ctx)
        if err is not None:
            return err
        if not isinstance(body.get("model"), str) or not body["model"]:
            return ErrorResponse(
                400, _glm_error("1211", "Unknown model, please check the model code.")
            )
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return ErrorResponse(400, _glm_error("1214", "Input messages must not be empty."))
        return None

    def unknown_fields(self, body: dict[str, JSON], extra: list[str], ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            400,
            _glm_error(
                "1210",
                "Incorrect API call parameters, please check the documentation. "
                f"Unsupported parameter: {', '.join(extra)}",
            ),
        )

    def invalid_json(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(400, _glm_error("1210", "Request body is not valid JSON."))

    def bad_request(self, message: str, ctx: Ctx, status: int = 400) -> ErrorResponse:
        code = "1210" if status == 400 else str(status)
        return ErrorResponse(status, _glm_error(code, message))

    def context_error(self, n: int, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(400, _glm_error("1261", "Prompt exceeds max length"))

    def rate_limited(self, retry_after: int, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            429,
            _glm_error(
                "1302",
                "High concurrency usage of this API, please reduce concurrency or contact "
                "customer service to increase limits.",
            ),
            _retry_headers(retry_after),
        )

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(500, _glm_error("500", "Internal Error"))

    def unavailable(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            503,
            _glm_error("1305", "The service may be temporarily overloaded, please try again later"),
        )

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(500, _glm_error("500", "Internal Error"))

    def finish(self, neutral: str) -> str:
        return {"content_filter": "sensitive", "model_length": "length"}.get(neutral, neutral)

    def tool_call_id(self, ctx: Ctx, i: int) -> str:
        return "call_" + ctx.ids.hex(f"call{i}", 24)

    def completion_tool_call_id(self, ctx: Ctx, i: int) -> str:
        # Whole replies number calls with a signed 64-bit integer, counting down
        # within one reply (call_-7807255211226955507, then ...506).
        return f"call_{ctx.ids.int64('calls') - i}"

    def _usage(self, script: Script) -> JSON:
        thinking = estimate_tokens("".join(script.tool_thinking)) if script.tool_thinking else 0
        ct = script.completion_tokens(self.all_arguments(script), extra_thinking=thinking)
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": ct,
            "total_tokens": script.prompt_tokens + ct,
            "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": script.thinking_tokens + thinking},
        }

    def _chunk(self, ctx: Ctx, choice: JSON, usage: JSON = None) -> JSON:
        obj: dict[str, JSON] = {
            "id": self.completion_id(ctx),
            "created": CREATED,
            "object": "chat.completion.chunk",
            "model": ctx.model,
            "choices": [choice],
        }
        if usage is not None:
            obj["usage"] = usage
        return obj

    def _delta(self, ctx: Ctx, delta: JSON) -> Frame:
        return self.data(self._chunk(ctx, {"index": 0, "delta": delta}), ctx)

    def _final(self, ctx: Ctx, finish: str, usage: JSON) -> Frame:
        choice = {
            "index": 0,
            "finish_reason": finish,
            "delta": {"role": "assistant", "content": ""},
        }
        return self.data(self._chunk(ctx, choice, usage), ctx)

    def stream(self, script: Script, ctx: Ctx) -> list[Frame]:
        frames: list[Frame] = []
        for t in script.thinking + script.tool_thinking:
            frames.append(self._delta(ctx, {"role": "assistant", "reasoning_content": t}))
        for p in script.text:
            frames.append(self._delta(ctx, {"role": "assistant", "content": p}))
        tool_stream = ctx.body.get("tool_stream") is True
        for i, c in enumerate(script.tool_calls):
            call_id = self.tool_call_id(ctx, i)
            args = self.arguments(c)
            if tool_stream:
                head = {
                    "id": call_id,
                    "index": i,
                    "type": "function",
                    "function": {"name": c.name, "arguments": ""},
                }
                frames.append(self._delta(ctx, {"tool_calls": [head]}))
                for frag in split_fixed(args):
                    frames.append(
                        self._delta(
                            ctx, {"tool_calls": [{"index": i, "function": {"arguments": frag}}]}
                        )
                    )
            else:
                whole = {
                    "id": call_id,
                    "index": i,
                    "type": "function",
                    "function": {"name": c.name, "arguments": args},
                }
                frames.append(self._delta(ctx, {"tool_calls": [whole]}))
        frames.append(self._final(ctx, self.finish(script.finish), self._usage(script)))
        frames.append(DONE)
        return frames

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        usage = {
            "prompt_tokens": 1,
            "completion_tokens": 0,
            "total_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        return [self._final(ctx, "network_error", usage), DONE]

    def completion(self, script: Script, ctx: Ctx) -> JSON:
        message: dict[str, JSON] = {"content": script.full_text}
        thinking = "".join(script.thinking + script.tool_thinking)
        if thinking:
            message["reasoning_content"] = thinking
        message["role"] = "assistant"
        if script.tool_calls:
            message["tool_calls"] = [
                {
                    "function": {"arguments": self.arguments(c), "name": c.name},
                    "id": self.completion_tool_call_id(ctx, i),
                    "index": i,
                    "type": "function",
                }
                for i, c in enumerate(script.tool_calls)
            ]
        return {
            "choices": [
                {"finish_reason": self.finish(script.finish), "index": 0, "message": message}
            ],
            "created": CREATED,
            "id": self.completion_id(ctx),
            "model": ctx.model,
            "object": "chat.completion",
            "request_id": self.request_id(ctx),
            "usage": self._usage(script),
        }


# =============================================================================
# Claude subscription (a local claude-max-api-proxy)
# =============================================================================


def _proxy_error(message: str, type_: str, code: str | None = None) -> JSON:
    return {"error": {"message": message, "type": type_, "code": code}}


#: claude-max-api-proxy 1.0.0's MODEL_MAP (dist/adapter/openai-to-cli.js): the names
#: it knows, as the CLI's --model alias; any other name runs as opus.
_PROXY_MODELS = {
    **{f"claude-{a}-4": a for a in ("opus", "sonnet", "haiku")},
    **{a: a for a in ("opus", "sonnet", "haiku")},
}
#: What the proxy's streamed content chunks say until the CLI's ``assistant`` line
#: (its ``lastModel`` starts as this).
_PROXY_FIRST_MODEL = "claude-sonnet-4"
#: The reset time of the emulated usage limit (2100-01-01T00:00:00Z): always ahead.
USAGE_LIMIT_RESET = 4_102_444_800


def claude_model_name(model: JSON) -> str:
    """The family the proxy reports for a requested name: the alias it runs (an
    unknown name runs as opus), normalised to ``claude-<family>-4``."""
    name = model if isinstance(model, str) else ""
    name = name.removeprefix("claude-code-cli/")
    return f"claude-{_PROXY_MODELS.get(name, 'opus')}-4"


class ClaudeProxyDialect(_PlainChunks):
    """claude-max-api-proxy 1.0.0 (dist/server/routes.js, dist/adapter/cli-to-openai.js),
    checked against the real package in tests/test_claude_proxy_emulator.py: a
    ``:ok`` comment first, text chunks only (no tool calls, no usage, ever),
    ``finish_reason`` always ``stop``, a CLI failure as a 500 (whole) or an
    ``{"error": ...}`` frame then ``[DONE]`` (streamed), and the usage limit as a
    200 reply whose text is the CLI's ``<prefix><reset time>``."""

    wire = "claude_proxy"
    context_window = 200_000
    sse_content_type = "text/event-stream"
    json_content_type = "application/json; charset=utf-8"
    compact_arguments = False

    def __init__(self, record: ProviderDialect) -> None:
        super().__init__(record)
        self.usage_limit_prefix = record.usage_limit_prefix or "Claude AI usage limit reached|"

    def model_name(self, model: JSON) -> str:
        return claude_model_name(model)

    def completion_id(self, ctx: Ctx) -> str:
        return "chatcmpl-" + self.request_id(ctx)

    def request_id(self, ctx: Ctx) -> str:
        return ctx.ids.hex("request", 24)

    def response_headers(self, ctx: Ctx) -> Headers:
        return [("x-powered-by", "Express"), ("x-request-id", self.request_id(ctx))]

    def auth_error(self, key: str | None, ctx: Ctx) -> ErrorResponse:
        # The proxy checks no key; the CLI's own login failing is a failed run.
        return self.server_error(ctx)

    def validate(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse | None:
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return ErrorResponse(
                400,
                _proxy_error(
                    "messages is required and must be a non-empty array",
                    "invalid_request_error",
                    "invalid_messages",
                ),
            )
        return None

    def unknown_fields(self, body: dict[str, JSON], extra: list[str], ctx: Ctx) -> ErrorResponse:
        # Never sent: the proxy ignores what it does not read (known_fields is None).
        return self.bad_request(f"Unrecognized request argument supplied: {', '.join(extra)}", ctx)

    def bad_request(self, message: str, ctx: Ctx, status: int = 400) -> ErrorResponse:
        return ErrorResponse(status, _proxy_error(message, "invalid_request_error"))

    def not_found(self, path: str, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(404, _proxy_error("Not found", "invalid_request_error", "not_found"))

    def context_error(self, n: int, ctx: Ctx) -> ErrorResponse:
        # Never reached through the client (the argument limit comes first); what the
        # CLI would say, as the 500 of a failed run.
        return ErrorResponse(
            500,
            _proxy_error(
                f"prompt is too long: {n} tokens > {self.context_window} maximum", "server_error"
            ),
        )

    def rate_limited(self, retry_after: int, ctx: Ctx) -> ErrorResponse:
        # The CLI's usage-limit answer, which the proxy passes on as a normal reply.
        text = f"{self.usage_limit_prefix}{USAGE_LIMIT_RESET}"
        reply = self.completion(Script(prompt_tokens=0, text=[text]), ctx)
        reply["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return ErrorResponse(200, reply)

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        # An overloaded API makes the CLI fail; the proxy answers every failure so.
        return self.server_error(ctx)

    def unavailable(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(503, _proxy_error("Service unavailable", "server_error"))

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(
            500, _proxy_error("Claude CLI exited with code 1 without response", "server_error")
        )

    def finish(self, neutral: str) -> str:
        return "stop"  # createDoneChunk and cliResultToOpenai say nothing else

    def _usage(self, script: Script) -> JSON:
        # cliResultToOpenai writes these three counts and nothing else.
        ct = script.completion_tokens("")
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": ct,
            "total_tokens": script.prompt_tokens + ct,
        }

    def stream(self, script: Script, ctx: Ctx) -> list[Frame]:
        frames: list[Frame] = [Frame("comment", b":ok\n\n")]
        first_model = dataclasses.replace(ctx, model=_PROXY_FIRST_MODEL)
        texts = script.tool_preamble if script.tool_calls else script.text
        for n, piece in enumerate(p for p in texts if p):
            delta: dict[str, JSON] = {"role": "assistant", "content": piece}
            if n:
                delta = {"content": piece}  # role: undefined, left out by JSON.stringify
            frames.append(self.data(self._chunk(first_model, delta), ctx))
        frames.append(self.data(self._chunk(ctx, {}, "stop"), ctx))
        frames.append(DONE)
        return frames

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        failed = _proxy_error("Process exited with code 1", "server_error")
        return [self.data(failed, ctx), DONE]

    def completion(self, script: Script, ctx: Ctx) -> JSON:
        text = "".join(script.tool_preamble) if script.tool_calls else script.full_text
        return {
            "id": self.completion_id(ctx),
            "object": "chat.completion",
            "created": CREATED,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": self._usage(script),
        }


# =============================================================================
# OpenRouter (a gateway in front of many upstream providers)
# =============================================================================

#: The upstream a model id's family is served by, as the ``provider`` field names it.
_OPENROUTER_UPSTREAMS = {
    "anthropic": "Anthropic",
    "openai": "OpenAI",
    "google": "Google AI Studio",
    "x-ai": "xAI",
    "z-ai": "Z.AI",
    "deepseek": "DeepSeek",
    "mistralai": "Mistral",
    "moonshotai": "Moonshot AI",
}
#: Anthropic's own stop reasons, which OpenRouter passes on as native_finish_reason.
_ANTHROPIC_NATIVE = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}
#: What OpenRouter sends while a non-streamed reply is being generated.
_OPENROUTER_KEEPALIVE = "\n         \n"


def _openrouter_error(message: str, code: int, metadata: JSON = None) -> JSON:
    err: dict[str, JSON] = {"message": message, "code": code}
    if metadata is not None:
        err["metadata"] = metadata
    return {"error": err}


class OpenRouterDialect(OpenAiDialect):
    """OpenRouter's chat completions: OpenAI's chunk shapes plus the gateway's own
    fields (``provider``, ``native_finish_reason``, ``reasoning`` and
    ``reasoning_details``, usage with ``cost``), ``: OPENROUTER PROCESSING``
    comments, in-band ``{"error": ...}`` chunks, errors as ``{"error": {"message",
    "code"}}`` with the HTTP status as code. Shapes as in cassettes/real/openrouter
    and OpenRouter's API reference (streaming, errors, usage accounting)."""

    wire = "openrouter"
    context_window = 200_000
    sse_content_type = "text/event-stream"

    # Input/output USD per million tokens the emulated charge (usage.cost) uses.
    PRICE: ClassVar[tuple[float, float]] = (3.0, 15.0)

    def completion_id(self, ctx: Ctx) -> str:
        return f"gen-{CREATED}-" + ctx.ids.alnum("completion", 20)

    def request_id(self, ctx: Ctx) -> str:
        return self.completion_id(ctx)

    def response_headers(self, ctx: Ctx) -> Headers:
        return [("x-generation-id", self.completion_id(ctx))]

    def upstream(self, ctx: Ctx) -> str:
        family = ctx.model.split("/", 1)[0]
        return _OPENROUTER_UPSTREAMS.get(family, "Together")

    def reasoning_format(self, ctx: Ctx) -> str:
        """``reasoning_details[].format``: the upstream's reasoning flavour."""
        return "anthropic-claude-v1" if ctx.model.startswith("anthropic/") else "unknown"

    def native_finish(self, ctx: Ctx, finish: str) -> str:
        if ctx.model.startswith("anthropic/"):
            return _ANTHROPIC_NATIVE.get(finish, finish)
        return finish

    # ----------------------------------------------------------------- errors
    def auth_error(self, key: str | None, ctx: Ctx) -> ErrorResponse:
        msg = "No auth credentials found" if key is None else "User not found."
        return ErrorResponse(401, _openrouter_error(msg, 401))

    def validate(self, body: dict[str, JSON], ctx: Ctx) -> ErrorResponse | None:
        # No field check (OpenAI's known_fields go unused): unknown and unsupported
        # parameters are ignored, not refused (docs: parameters).
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return self.bad_request('Input required: specify "prompt" or "messages"', ctx)
        return None

    def unknown_fields(self, body: dict[str, JSON], extra: list[str], ctx: Ctx) -> ErrorResponse:
        return self.bad_request(f"Invalid parameter: {', '.join(extra)}", ctx)

    def bad_request(self, message: str, ctx: Ctx, status: int = 400) -> ErrorResponse:
        return ErrorResponse(status, _openrouter_error(message, status))

    def context_error(self, n: int, ctx: Ctx) -> ErrorResponse:
        msg = (
            f"This endpoint's maximum context length is {self.context_window} tokens. However, "
            f"you requested about {n} tokens ({n} of text input). Please reduce the length of "
            'either one, or use the "middle-out" transform to compress your prompt automatically.'
        )
        return ErrorResponse(400, _openrouter_error(msg, 400))

    def rate_limited(self, retry_after: int, ctx: Ctx) -> ErrorResponse:
        # The upstream's 429, passed on with its raw text (as in the real capture).
        raw = (
            f"{ctx.model or 'the model'} is temporarily rate-limited upstream. Please retry "
            "shortly, or add your own key to accumulate your rate limits: "
            "https://openrouter.ai/settings/integrations"
        )
        body = _openrouter_error(
            "Provider returned error", 429, {"provider_name": self.upstream(ctx), "raw": raw}
        )
        body["user_id"] = "user_" + ctx.ids.alnum("user", 27)
        return ErrorResponse(429, body, _retry_headers(retry_after))

    def overloaded(self, ctx: Ctx) -> ErrorResponse:
        # 502: "Your chosen model is down or we received an invalid response from it".
        raw = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        return ErrorResponse(
            502,
            _openrouter_error(
                "Provider returned error", 502, {"provider_name": self.upstream(ctx), "raw": raw}
            ),
        )

    def unavailable(self, ctx: Ctx) -> ErrorResponse:
        msg = "No allowed providers are available for the selected model."
        return ErrorResponse(503, _openrouter_error(msg, 503))

    def server_error(self, ctx: Ctx) -> ErrorResponse:
        return ErrorResponse(500, _openrouter_error("Internal Server Error", 500))

    # --------------------------------------------------------------- replies
    def dumps(self, obj: JSON, ctx: Ctx | None = None) -> str:
        text = super().dumps(obj, ctx)
        if isinstance(obj, dict) and obj.get("object") == "chat.completion":
            # Whitespace lines keep the connection open while the reply is generated.
            return _OPENROUTER_KEEPALIVE * 2 + text
        return text

    def _or_usage(self, script: Script) -> JSON:
        ct = script.completion_tokens(self.all_arguments(script))
        pin, pout = self.PRICE
        prompt_cost = round(script.prompt_tokens * pin / 1e6, 10)
        completion_cost = round(ct * pout / 1e6, 10)
        cost = round(prompt_cost + completion_cost, 10)
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": ct,
            "total_tokens": script.prompt_tokens + ct,
            "cost": cost,
            "is_byok": False,
            "prompt_tokens_details": {
                "cached_tokens": script.cached_tokens,
                "cache_write_tokens": 0,
                "audio_tokens": 0,
                "video_tokens": 0,
            },
            "cost_details": {
                "upstream_inference_cost": cost,
                "upstream_inference_prompt_cost": prompt_cost,
                "upstream_inference_completions_cost": completion_cost,
            },
            "completion_tokens_details": {
                "reasoning_tokens": script.thinking_tokens,
                "image_tokens": 0,
                "audio_tokens": 0,
            },
        }

    def _or_chunk(
        self, ctx: Ctx, delta: JSON, finish: str | None = None, usage: JSON = None
    ) -> JSON:
        obj: dict[str, JSON] = {
            "id": self.completion_id(ctx),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": ctx.model,
            "provider": self.upstream(ctx),
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": finish,
                    "native_finish_reason": self.native_finish(ctx, finish) if finish else None,
                }
            ],
        }
        if usage is not None:
            obj["usage"] = usage
        return obj

    @staticmethod
    def _reasoning_shown(ctx: Ctx) -> bool:
        """``reasoning: {"exclude": true}`` reasons without sending the reasoning."""
        opts = ctx.body.get("reasoning")
        return not (isinstance(opts, dict) and opts.get("exclude") is True)

    def stream(self, script: Script, ctx: Ctx) -> list[Frame]:
        processing = comment("OPENROUTER PROCESSING")
        deltas: list[JSON] = []
        if self._reasoning_shown(ctx):
            for piece in script.thinking:
                detail = {
                    "type": "reasoning.text",
                    "text": piece,
                    "format": self.reasoning_format(ctx),
                    "index": 0,
                }
                deltas.append(
                    {
                        "content": "",
                        "role": "assistant",
                        "reasoning": piece,
                        "reasoning_details": [detail],
                    }
                )
        if not script.tool_calls:
            deltas.extend({"content": p, "role": "assistant"} for p in script.text if p)
        for i, call in enumerate(script.tool_calls):
            head = {
                "index": i,
                "id": self.tool_call_id(ctx, i),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            deltas.append({"content": None, "role": "assistant", "tool_calls": [head]})
            for frag in split_fixed(self.arguments(call)):
                part = {"index": i, "function": {"arguments": frag}}
                deltas.append({"content": None, "role": "assistant", "tool_calls": [part]})
        frames = [processing, processing]
        for n, delta in enumerate(deltas):
            frames.append(self.data(self._or_chunk(ctx, delta), ctx))
            if n % 4 == 3:
                frames.append(processing)
        finish = self.finish(script.finish)
        last = {"content": "", "role": "assistant", "reasoning": None}
        frames.append(self.data(self._or_chunk(ctx, last, finish), ctx))
        # The finish chunk again, now with usage (always sent: docs, usage accounting).
        closing = {"content": "", "role": "assistant"}
        frames.append(self.data(self._or_chunk(ctx, closing, finish, self._or_usage(script)), ctx))
        frames.append(DONE)
        return frames

    def in_band_error(self, ctx: Ctx) -> list[Frame]:
        # An upstream failure after the 200 went out (docs: streaming, errors).
        chunk = self._or_chunk(ctx, {"content": "", "role": "assistant"}, "error")
        chunk["error"] = {
            "code": 502,
            "message": "Network connection lost.",
            "metadata": {"error_type": "provider_unavailable"},
        }
        return [self.data(chunk, ctx), DONE]

    def completion(self, script: Script, ctx: Ctx) -> JSON:
        thinking = "".join(script.thinking) if self._reasoning_shown(ctx) else ""
        message: dict[str, JSON] = {
            "role": "assistant",
            "content": None if script.tool_calls else script.full_text,
            "refusal": None,
            "reasoning": thinking or None,
        }
        if thinking:
            message["reasoning_details"] = [
                {
                    "type": "reasoning.text",
                    "text": thinking,
                    "format": self.reasoning_format(ctx),
                    "index": 0,
                }
            ]
        if script.tool_calls:
            message["tool_calls"] = [
                {
                    "type": "function",
                    "index": i,
                    "id": self.tool_call_id(ctx, i),
                    "function": {"name": c.name, "arguments": self.arguments(c)},
                }
                for i, c in enumerate(script.tool_calls)
            ]
        finish = self.finish(script.finish)
        return {
            "id": self.completion_id(ctx),
            "object": "chat.completion",
            "created": CREATED,
            "model": ctx.model,
            "provider": self.upstream(ctx),
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": finish,
                    "native_finish_reason": self.native_finish(ctx, finish),
                    "message": message,
                }
            ],
            "usage": self._or_usage(script),
        }


#: Wire format name -> its renderer class.
WIRES: dict[str, type[Dialect]] = {
    cls.wire: cls
    for cls in (
        OpenAiDialect,
        GeminiDialect,
        MistralDialect,
        GlmDialect,
        ClaudeProxyDialect,
        OpenRouterDialect,
    )
}


def renderer_for(record: ProviderDialect) -> Dialect:
    """The emulator's renderer for a provider record (its ``wire`` format)."""
    try:
        cls = WIRES[record.wire]
    except KeyError:
        raise ValueError(
            f"provider {record.name!r}: unknown wire format {record.wire!r}; "
            f"the emulator speaks {', '.join(WIRES)}"
        ) from None
    return cls(record)
