"""The client against the real claude-max-api-proxy (1.0.0), its CLI a stand-in.

The proxy is the npm package itself, started by the ``claude_proxy`` fixture
(tests/claude_proxy.py); the ``claude`` it spawns is tests/fake_claude_cli.py,
which writes Claude Code's stream-json lines and logs every run, so each test
counts how many CLI runs a call cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from claude_proxy import ClaudeProxy
from fake_claude_cli import MODELS

from provider_impl import (
    CompletionRequest,
    InvalidRequest,
    LlmError,
    Message,
    OpenAiCompatibleProvider,
    Overloaded,
    RateLimited,
    StreamError,
    ToolCall,
    ToolDefinition,
)
from provider_impl.dialects import get_dialect
from provider_impl.events import Done, TextDelta
from provider_impl.invariants import check_invariants
from provider_impl.response import response_from_events

DIALECT = get_dialect("claude_subscription")


@pytest.fixture
def proxy(claude_proxy: ClaudeProxy) -> Iterator[ClaudeProxy]:
    yield claude_proxy


def client(proxy: ClaudeProxy, **kw: Any) -> OpenAiCompatibleProvider:
    kw.setdefault("backoff_base", 0.01)
    return OpenAiCompatibleProvider.claude_subscription(base_url=proxy.base_url, **kw)


def ask(text: str, **kw: Any) -> CompletionRequest:
    return CompletionRequest(messages=[Message.user(text)], **kw)


class Runs:
    """CLI runs started since it was made."""

    def __init__(self, proxy: ClaudeProxy) -> None:
        self._proxy = proxy
        self._before = len(proxy.runs())

    def __call__(self) -> list[dict[str, Any]]:
        return self._proxy.runs()[self._before :]


def test_a_streamed_reply_arrives_intact(proxy: ClaudeProxy) -> None:
    runs = Runs(proxy)
    text = "h\u00e9llo w\u00f6rld \u4f60\u597d \U0001f469\u200d\U0001f4bb [cli:echo]"
    with client(proxy) as p:
        events = list(p.stream(ask(text)))
    check_invariants(events)
    assert isinstance(events[-1], Done)
    # The stand-in echoes the prompt, streamed seven characters at a time.
    assert response_from_events(events).text == text
    assert len([e for e in events if isinstance(e, TextDelta)]) > 3
    assert len(runs()) == 1


def test_a_whole_reply_arrives_intact_with_usage(proxy: ClaudeProxy) -> None:
    runs = Runs(proxy)
    with client(proxy) as p:
        resp = p.complete(ask("Say hello."))
    assert resp.text == f"Hello from the stand-in Claude CLI, running {MODELS['sonnet']}."
    assert resp.usage.input_tokens and resp.usage.output_tokens
    assert len(runs()) == 1


def test_a_stream_never_carries_usage(proxy: ClaudeProxy) -> None:
    """What the record's feature flag says: the proxy's streams report no usage."""
    assert not DIALECT.features.stream_usage
    with client(proxy) as p:
        resp = response_from_events(p.stream(ask("Say hello.")))
    assert resp.usage.input_tokens is None and resp.usage.output_tokens is None


def test_the_conversation_is_flattened_as_the_record_says(proxy: ClaudeProxy) -> None:
    """The record's prompt templates describe the proxy's flattening exactly: the
    echoed prompt is what the templates build from the messages."""
    req = CompletionRequest(
        system="Be terse.",
        messages=[
            Message.user("My name is Ada."),
            Message.assistant("Hello Ada."),
            Message.user("What is my name? [cli:echo]"),
        ],
    )
    with client(proxy) as p:
        echoed = p.complete(req).text
        body = p.build_request(req)
    t = DIALECT.prompt_arg_templates
    expected = DIALECT.prompt_arg_separator.join(
        t[m["role"]].replace("{content}", m["content"]) for m in body["messages"]
    ).strip()
    assert echoed == expected
    assert echoed.startswith("<system>\nBe terse.\n</system>")


@pytest.mark.parametrize(
    ("model", "alias"),
    [
        (None, "sonnet"),  # the default runs as the model it names
        ("claude-sonnet-4-20250514", "sonnet"),
        ("claude-opus-4-1", "opus"),
        ("claude-3-5-haiku-latest", "haiku"),
        ("haiku", "haiku"),
    ],
)
def test_models_run_as_the_model_they_name(
    proxy: ClaudeProxy, model: str | None, alias: str
) -> None:
    runs = Runs(proxy)
    with client(proxy, model=model) as p:
        resp = p.complete(ask("Which model?"))
    assert [r["model"] for r in runs()] == [alias]
    assert MODELS[alias] in resp.text
    assert resp.model == f"claude-{alias}-4"


def test_an_unknown_model_is_refused_before_any_cli_run(proxy: ClaudeProxy) -> None:
    runs = Runs(proxy)
    with client(proxy) as p, pytest.raises(InvalidRequest) as info:
        p.complete(ask("hi", model="gpt-4o"))
    assert info.value.field == "model"
    assert runs() == []


WEATHER = ToolDefinition("get_weather", "Weather", {"type": "object", "properties": {}})
CALL = ToolCall("call12345", "get_weather", {"city": "Paris"})
TOOL_REQUESTS = {
    "tools": ask("Weather?", tools=[WEATHER]),
    "tool_choice": ask("Weather?", tool_choice="auto"),
    "messages[1].tool_calls": CompletionRequest(
        messages=[
            Message.user("Weather?"),
            Message.assistant(tool_calls=[CALL]),
            Message.tool_result("call12345", "18 degrees"),
        ]
    ),
}


@pytest.mark.parametrize("field", TOOL_REQUESTS)
@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_tools_are_refused_before_any_cli_run(proxy: ClaudeProxy, field: str, mode: str) -> None:
    runs = Runs(proxy)
    with client(proxy) as p, pytest.raises(InvalidRequest) as info:
        if mode == "stream":
            p.stream(TOOL_REQUESTS[field])
        else:
            p.complete(TOOL_REQUESTS[field])
    assert info.value.field == field
    assert runs() == []


def test_a_140000_byte_prompt_is_refused_before_io(proxy: ClaudeProxy) -> None:
    runs = Runs(proxy)
    with client(proxy) as p, pytest.raises(InvalidRequest) as info:
        p.stream(ask("x" * 140_000))
    assert info.value.field == "messages"
    assert runs() == []


def test_the_largest_prompt_the_record_allows_reaches_the_cli(proxy: ClaudeProxy) -> None:
    """The limit is the real one, not a guess on the safe side: a prompt of exactly
    the allowed size is spawned, and one byte more would have failed with E2BIG."""
    limit = DIALECT.prompt_arg_max_bytes
    assert limit is not None
    runs = Runs(proxy)
    text = "[cli:crash-early]".ljust(limit - 1, "x")
    with client(proxy) as p, pytest.raises(Overloaded):
        p.complete(ask(text))
    assert [r["prompt_bytes"] for r in runs()] == [limit - 1]
    # What the proxy itself does with one byte more (sent raw, past the client's check).
    with httpx.Client(timeout=10) as raw:
        over = raw.post(
            proxy.base_url + "/chat/completions",
            json={"model": "sonnet", "messages": [{"role": "user", "content": text + "x"}]},
        )
    assert over.status_code == 500 and "E2BIG" in over.text
    assert len(runs()) == 1


def _reset_in(seconds: int) -> int:
    return int(time.time()) + seconds


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_the_usage_limit_is_rate_limited_with_the_reset_time(
    proxy: ClaudeProxy, streamed: bool
) -> None:
    runs = Runs(proxy)
    reset = _reset_in(3 * 3600)
    req = ask(f"[cli:usage-limit-streamed={reset}]" if streamed else f"[cli:usage-limit={reset}]")
    with client(proxy, max_retries=2) as p, pytest.raises(RateLimited) as info:
        if streamed:
            list(p.stream(req))
        else:
            p.complete(req)
    err = info.value
    assert err.retry_after is not None
    assert 3 * 3600 - 60 < err.retry_after <= 3 * 3600
    assert err.code == "usage_limit"
    assert len(runs()) == 1  # three hours is past the retry cap: no second run


def test_a_reply_that_only_mentions_the_limit_is_text(proxy: ClaudeProxy) -> None:
    text = "Claude AI usage limit reached|soon [cli:echo]"
    with client(proxy) as p:
        assert p.complete(ask(text)).text == text
        assert response_from_events(p.stream(ask(text))).text == text


@pytest.mark.parametrize("directive", ["[cli:crash]", "[cli:crash-early]"])
@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_a_crash_is_a_typed_error_after_one_cli_run(
    proxy: ClaudeProxy, directive: str, mode: str
) -> None:
    runs = Runs(proxy)
    with client(proxy, max_retries=2) as p, pytest.raises(LlmError) as info:
        if mode == "stream":
            list(p.stream(ask(directive)))
        else:
            p.complete(ask(directive))
    # Whole: a 500 (not retried: each retry would be another CLI run); streamed: the
    # error frame the proxy writes inside the 200 stream.
    expected: type[LlmError] = StreamError if mode == "stream" else Overloaded
    assert isinstance(info.value, expected), repr(info.value)
    assert "exited with code 1" in str(info.value)
    assert len(runs()) == 1


def test_a_slow_cli_is_waited_for_within_the_records_timeout(proxy: ClaudeProxy) -> None:
    assert DIALECT.read_timeout >= 300  # the proxy's own CLI timeout
    with client(proxy) as p:
        events = list(p.stream(ask("[cli:slow=0.05]")))
    assert isinstance(events[-1], Done)
    # A read timeout shorter than the CLI's pauses is the client's typed timeout.
    with client(proxy, timeout=0.3, max_retries=0) as p, pytest.raises(LlmError) as info:
        list(p.stream(ask("[cli:slow=1]")))
    assert "timed out" in str(info.value)


def test_the_async_client_gets_the_same(proxy: ClaudeProxy) -> None:
    async def both() -> tuple[str, str]:
        async with client(proxy) as p:
            whole = await p.acomplete(ask("[cli:echo] hi"))
            events = [e async for e in p.astream(ask("[cli:echo] hi"))]
        return whole.text, response_from_events(events).text

    assert asyncio.run(both()) == ("[cli:echo] hi", "[cli:echo] hi")
