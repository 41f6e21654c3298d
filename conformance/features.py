"""Per-provider feature flags: what each provider's real API does, so one set
of conformance properties serves all five without copied tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Features:
    # Reasoning text is streamed (GLM reasoning_content, Mistral thinking parts,
    # Gemini thoughts); OpenAI and the Claude proxy only count it, if at all.
    streams_thinking: bool
    # Usage reports reasoning tokens for a reasoning model.
    reports_reasoning_tokens: bool
    # A 429 says how long to wait (retry-after header or Google's RetryInfo).
    retry_after: bool
    # The context-length error states the limit and the prompt's size.
    context_numbers: bool
    # Chunks carry an id (Gemini's carry none).
    message_id: bool
    # Its 401 body carries an error code (Mistral's is {"message", "request_id"} only).
    auth_error_code: bool = True


FEATURES: dict[str, Features] = {
    "openai": Features(
        streams_thinking=False,
        reports_reasoning_tokens=True,
        retry_after=True,
        context_numbers=True,
        message_id=True,
    ),
    "gemini": Features(
        streams_thinking=True,
        reports_reasoning_tokens=False,
        retry_after=True,
        context_numbers=True,
        message_id=False,
    ),
    "mistral": Features(
        streams_thinking=True,
        reports_reasoning_tokens=False,
        retry_after=True,
        context_numbers=True,
        message_id=True,
        auth_error_code=False,
    ),
    "glm": Features(
        streams_thinking=True,
        reports_reasoning_tokens=True,
        retry_after=False,
        context_numbers=False,
        message_id=True,
    ),
    "claude_subscription": Features(
        streams_thinking=False,
        reports_reasoning_tokens=False,
        retry_after=True,
        context_numbers=True,
        message_id=True,
    ),
}
