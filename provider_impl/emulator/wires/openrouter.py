"""The emulated wire format of OpenRouter."""

from __future__ import annotations

from typing import ClassVar

from provider_impl.reply_script import ReplyScript, split_fixed

from .._wire import CREATED, DONE, JSON, Ctx, ErrorResponse, Frame, Headers, comment
from .openai import OpenAiDialect

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
        return ErrorResponse(429, body, self.retry_headers(retry_after))

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

    def _or_usage(self, script: ReplyScript) -> JSON:
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
            **self.head(ctx, "chat.completion.chunk"),
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

    def stream(self, script: ReplyScript, ctx: Ctx) -> list[Frame]:
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

    def completion(self, script: ReplyScript, ctx: Ctx) -> JSON:
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
            **self.head(ctx, "chat.completion"),
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
