"""The emulated wire format of the Claude subscription proxy (claude-max-api-proxy)."""

from __future__ import annotations

import dataclasses

from provider_impl.dialects import ProviderDialect
from provider_impl.reply_script import ReplyScript

from .._wire import DONE, JSON, Ctx, ErrorResponse, Frame, Headers, PlainChunks


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


class ClaudeProxyDialect(PlainChunks):
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
        reply = self.completion(ReplyScript(prompt_tokens=0, text=[text]), ctx)
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

    def _usage(self, script: ReplyScript) -> JSON:
        # cliResultToOpenai writes these three counts and nothing else.
        ct = script.completion_tokens("")
        return {
            "prompt_tokens": script.prompt_tokens,
            "completion_tokens": ct,
            "total_tokens": script.prompt_tokens + ct,
        }

    def stream(self, script: ReplyScript, ctx: Ctx) -> list[Frame]:
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

    def completion(self, script: ReplyScript, ctx: Ctx) -> JSON:
        text = "".join(script.tool_preamble) if script.tool_calls else script.full_text
        return {
            **self.head(ctx, "chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": self._usage(script),
        }
