"""The emulated wire format of GLM (Z.ai / BigModel)."""

from __future__ import annotations

import time

from provider_impl.reply_script import ReplyScript, estimate_tokens, split_fixed

from .._wire import CREATED, DONE, JSON, Ctx, Dialect, ErrorResponse, Frame, Headers


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
            self.retry_headers(retry_after),
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

    def _usage(self, script: ReplyScript) -> JSON:
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

    def stream(self, script: ReplyScript, ctx: Ctx) -> list[Frame]:
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

    def completion(self, script: ReplyScript, ctx: Ctx) -> JSON:
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
