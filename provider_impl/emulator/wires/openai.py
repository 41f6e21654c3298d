"""The emulated wire format of OpenAI."""

from __future__ import annotations

from provider_impl.reply_script import ReplyScript, split_fixed

from .._wire import DONE, JSON, Ctx, Dialect, ErrorResponse, Frame, Headers


def _openai_error(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> JSON:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


#: Model prefixes whose real replies say ``system_fingerprint: null`` (gpt-5*,
#: o4-mini, gpt-4.5-preview, gpt-4-1106-preview in cassettes/real/openai).
_OPENAI_NO_FINGERPRINT = ("gpt-5", "o4-", "gpt-4.5", "gpt-4-")


#: OpenAI's 401 words for a missing key and for a wrong one.
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_BAD_KEY = (
    "Incorrect API key provided: {masked}. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)


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
        msg = _NO_KEY if key is None else _BAD_KEY.format(masked=mask_key(key))
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
        # A null stream_options is no option at all (the contract accepts it).
        if body.get("stream_options") is not None and body.get("stream") is not True:
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
    def _usage(self, script: ReplyScript, ctx: Ctx) -> JSON:
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
            **self.head(ctx, "chat.completion.chunk"),
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

    def stream(self, script: ReplyScript, ctx: Ctx) -> list[Frame]:
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

    def completion(self, script: ReplyScript, ctx: Ctx) -> JSON:
        message: dict[str, JSON] = {
            "role": "assistant",
            "content": None if script.tool_calls else script.full_text,
            "refusal": None,
            "annotations": [],
        }
        if script.tool_calls:
            message["tool_calls"] = self.message_tool_calls(script, ctx)
        return {
            **self.head(ctx, "chat.completion"),
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
