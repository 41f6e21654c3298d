"""The emulated wire format of Mistral."""

from __future__ import annotations

from provider_impl.reply_script import ReplyScript

from .._wire import CREATED, DONE, JSON, Ctx, ErrorResponse, Frame, Headers, PlainChunks


def _mistral_error(message: JSON, type_: str, code: str | None = None) -> JSON:
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


class MistralDialect(PlainChunks):
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

    def _usage(self, script: ReplyScript) -> JSON:
        ct = script.completion_tokens(self.all_arguments(script))
        # Key order as Mistral sends it.
        return {
            "prompt_tokens": script.prompt_tokens,
            "total_tokens": script.prompt_tokens + ct,
            "completion_tokens": ct,
        }

    def stream(self, script: ReplyScript, ctx: Ctx) -> list[Frame]:
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

    def completion(self, script: ReplyScript, ctx: Ctx) -> JSON:
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
