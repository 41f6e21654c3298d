"""The emulated wire format of Gemini's OpenAI compatibility layer."""

from __future__ import annotations

import base64
import hashlib

from provider_impl.reply_script import ReplyScript, estimate_tokens

from .._http import Request
from .._wire import CREATED, DONE, JSON, Ctx, Dialect, ErrorResponse, Frame, Headers


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


#: Google's 401 words and ErrorInfo reason for a missing key and for a wrong one.
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
    "CREDENTIALS_MISSING",
)
_BAD_KEY = ("API key not valid. Please pass a valid API key.", "API_KEY_INVALID")


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
        msg, reason = _NO_KEY if key is None else _BAD_KEY
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
            429,
            _google_error(429, "RESOURCE_EXHAUSTED", msg, details),
            self.retry_headers(retry_after),
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

    def _usage(self, script: ReplyScript, completion: int) -> JSON:
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

    def _tool_calls(self, script: ReplyScript, ctx: Ctx) -> list[JSON]:
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

    def stream(self, script: ReplyScript, ctx: Ctx) -> list[Frame]:
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

    def completion(self, script: ReplyScript, ctx: Ctx) -> JSON:
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
