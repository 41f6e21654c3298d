"""Seed inputs for the fuzzers: well-formed bodies of every wire style and error
bodies of every shape.

Stream bodies are rendered offline by the emulator's dialects (the same code
that serves them over sockets) from the requests the payload builder makes
for each conformance scenario, so every provider's quirks are in the corpus:
Gemini's index-less tool calls and usage on every chunk, Mistral's thinking
parts, GLM's ``reasoning_content``, OpenAI's ``choices: []`` usage chunk, the
Claude proxy's mid-stream error frame, comments, CRLF-free compact JSON,
raw U+2028/U+2029/U+0085. Error bodies come from the same dialects plus
hand-written shapes (Mistral ``detail``, Anthropic ``type: error``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from provider_impl import OpenAiCompatibleProvider
from provider_impl.dialects import DIALECTS
from provider_impl.emulator._dialects import Ctx, IdGen, renderer_for
from provider_impl.scenarios import SCENARIOS

PROVIDERS: tuple[str, ...] = tuple(sorted(DIALECTS))


@dataclass(frozen=True)
class StreamSeed:
    provider: str
    scenario: str
    frames: tuple[bytes, ...]  # each one complete SSE event, blank line included

    @property
    def body(self) -> bytes:
        return b"".join(self.frames)


@dataclass(frozen=True)
class ErrorSeed:
    provider: str
    kind: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: Any  # parsed JSON


def _ctx(provider: str, scenario: str, body: dict[str, Any]) -> Ctx:
    seed = hashlib.sha256(f"{provider}/{scenario}".encode()).digest()
    ctx = Ctx(provider=provider, ids=IdGen(seed), body=body, scenario=scenario)
    model = body.get("model")
    ctx.model = model if isinstance(model, str) else ""
    return ctx


@functools.lru_cache(maxsize=1)
def stream_seeds() -> tuple[StreamSeed, ...]:
    out: list[StreamSeed] = []
    for provider in PROVIDERS:
        client = OpenAiCompatibleProvider(DIALECTS[provider], api_key="sk-fuzz")
        wire = renderer_for(DIALECTS[provider])
        for name, scenario in SCENARIOS.items():
            if not scenario.applies_to(provider) or not scenario.stream:
                continue
            if scenario.reply is None:  # an error reply, not a stream
                continue
            body = client.build_request(scenario.request_for(provider), stream=True)
            ctx = _ctx(provider, name, body)
            frames = [f.raw for f in wire.stream(scenario.script_for(body), ctx)]
            cut = scenario.in_band_error_after
            if cut is not None:  # as the emulator sends it: some frames, then the error
                data = [f for f in frames if not f.startswith(b":")]
                frames = data[:cut] + [f.raw for f in wire.in_band_error(ctx)]
            out.append(StreamSeed(provider, name, tuple(frames)))
    return tuple(out)


_HANDWRITTEN_ERRORS: tuple[tuple[str, str, int, Any], ...] = (
    (
        "openai",
        "context",
        400,
        {
            "error": {
                "message": "This model's maximum context length is "
                "128000 tokens. However, your messages resulted in 130000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    ),
    (
        "openai",
        "not_found",
        404,
        {
            "error": {
                "message": "The model `x` does not exist",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    ),
    (
        "gemini",
        "rate",
        429,
        [
            {
                "error": {
                    "code": 429,
                    "message": "Resource exhausted",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}
                    ],
                }
            }
        ],
    ),
    (
        "mistral",
        "validation",
        422,
        {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "max_completion_tokens"],
                    "msg": "Extra inputs are not permitted",
                    "input": 5,
                }
            ]
        },
    ),
    ("mistral", "detail_str", 400, {"detail": "Bad request"}),
    ("glm", "arrears", 429, {"error": {"code": "1113", "message": "Insufficient balance"}}),
    ("glm", "sensitive", 400, {"error": {"code": "1301", "message": "unsafe content"}}),
    ("glm", "auth", 401, {"error": {"code": 1001, "message": "token expired"}}),
    (
        "claude_subscription",
        "anthropic",
        529,
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_011",
        },
    ),
    (
        "claude_subscription",
        "anthropic_ctx",
        400,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "prompt is too long: 210000 tokens > 200000 maximum",
            },
        },
    ),
)


@functools.lru_cache(maxsize=1)
def error_seeds() -> tuple[ErrorSeed, ...]:
    out: list[ErrorSeed] = []
    for provider in PROVIDERS:
        wire = renderer_for(DIALECTS[provider])
        ctx = _ctx(
            provider, "error", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        )
        makers: dict[str, Any] = {
            "auth": lambda w=wire, c=ctx: w.auth_error("sk-wrong", c),
            "rate_limited": lambda w=wire, c=ctx: w.rate_limited(1, c),
            "context": lambda w=wire, c=ctx: w.context_error(200_000, c),
            "invalid_param": lambda w=wire, c=ctx: w.invalid_param_error({"model": "m"}, c),
            "overloaded": lambda w=wire, c=ctx: w.overloaded(c),
            "unavailable": lambda w=wire, c=ctx: w.unavailable(c),
            "server_error": lambda w=wire, c=ctx: w.server_error(c),
            "invalid_json": lambda w=wire, c=ctx: w.invalid_json(c),
            "not_found": lambda w=wire, c=ctx: w.not_found("/v1/nope", c),
        }
        for kind, make in makers.items():
            err = make()
            out.append(ErrorSeed(provider, kind, err.status, tuple(err.headers), err.body))
        for frame in wire.in_band_error(ctx):
            text = frame.raw.decode("utf-8")
            if text.startswith(("data: {", "data: [")) and not text.startswith("data: [DONE]"):
                out.append(ErrorSeed(provider, "in_band", 200, (), json.loads(text[6:])))
    for provider, kind, status, body in _HANDWRITTEN_ERRORS:
        out.append(ErrorSeed(provider, kind, status, (), body))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def chunk_seeds() -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Each stream seed as its parsed JSON chunks (``[DONE]`` and comments left out)."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    for seed in stream_seeds():
        chunks: list[Any] = []
        for frame in seed.frames:
            if frame.startswith(b"data: ") and not frame.startswith(b"data: [DONE]"):
                chunks.append(json.loads(frame[6:].decode("utf-8")))
        out.append((seed.provider, tuple(chunks)))
    return tuple(out)
