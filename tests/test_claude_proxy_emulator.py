"""The emulator's claude_proxy wire format against the real claude-max-api-proxy.

One battery of raw requests goes to both: the real proxy (with the stand-in
CLI told what to do by a directive in the prompt) and the emulator (told by
the scenario header). The replies must agree on status, body shape, the
values that are not free text (finish reason, model, error bodies) and the
events the client decodes from them. The text itself differs (the stand-in
greets, the emulator echoes), so text chunks are compared by shape and
counted as one run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from claude_proxy import ClaudeProxy

from provider_impl import LlmError, decode_response, decode_stream
from provider_impl.emulator import Emulator
from provider_impl.emulator._dialects import USAGE_LIMIT_RESET
from provider_impl.events import TextDelta
from provider_impl.scenarios import SCENARIO_HEADER

PROVIDER = "claude_subscription"


@dataclass(frozen=True)
class Case:
    name: str
    body: dict[str, Any]
    directive: str  # for the stand-in CLI, appended to the last user message
    scenario: str  # for the emulator
    path: str = "/chat/completions"
    extra: dict[str, Any] = field(default_factory=dict)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

BATTERY = [
    Case("text streamed", {"model": "claude-sonnet-4", "stream": True}, "", "text"),
    Case("text whole", {"model": "claude-sonnet-4", "stream": False}, "", "text_nonstream"),
    Case("haiku streamed", {"model": "haiku", "stream": True}, "", "text"),
    # A name the proxy does not know runs (and reports) as opus.
    Case("unknown model", {"model": "claude-sonnet-4-20250514", "stream": False}, "", "text"),
    Case(
        "system and turns",
        {
            "model": "claude-sonnet-4",
            "stream": True,
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "My name is Ada."},
                {"role": "assistant", "content": "Hello Ada."},
                {"role": "user", "content": "What is my name?"},
            ],
        },
        "",
        "system_multi_turn",
    ),
    # Everything but model, messages, stream and user is ignored, tools included.
    Case(
        "ignored parameters",
        {
            "model": "claude-sonnet-4",
            "stream": True,
            "tools": TOOLS,
            "tool_choice": "auto",
            "max_tokens": 5,
            "stop": ["o"],
            "stream_options": {"include_usage": True},
        },
        "",
        "text",
    ),
    Case("crash streamed", {"model": "opus", "stream": True}, "[cli:crash]", "error_in_stream"),
    Case("crash whole", {"model": "opus", "stream": False}, "[cli:crash]", "error_overloaded"),
    Case(
        "usage limit whole",
        {"model": "claude-sonnet-4", "stream": False},
        f"[cli:usage-limit={USAGE_LIMIT_RESET}]",
        "error_usage_limit",
    ),
    Case("no messages", {"model": "opus", "messages": []}, "", "text"),
    Case("unknown path", {"model": "opus"}, "", "text", path="/nothing/here"),
]


def _send(base_url: str, case: Case, prompt: str, headers: dict[str, str]) -> httpx.Response:
    body = {"messages": _user(prompt), **case.body}
    if case.directive:
        last = dict(body["messages"][-1])
        last["content"] = f"{last['content']} {case.directive}"
        body["messages"] = [*body["messages"][:-1], last]
    with httpx.Client(timeout=20) as http:
        return http.post(base_url + case.path, json=body, headers=headers)


def _skeleton(value: Any) -> Any:
    """Keys and types, keeping the values that carry meaning (not ids, times or text)."""
    if isinstance(value, dict):
        out = {}
        for k, v in sorted(value.items()):
            keep = k in ("object", "role", "finish_reason", "model", "type", "code")
            out[k] = v if keep or k == "error" else _skeleton(v)
        return out
    if isinstance(value, list):
        return [_skeleton(v) for v in value]
    return type(value).__name__


def _frames(body: bytes) -> list[Any]:
    """SSE frames as skeletons; a run of text chunks of one shape counts once."""
    out: list[Any] = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        if block.startswith(":"):
            item: Any = ("comment", block)
        elif block == "data: [DONE]":
            item = "[DONE]"
        else:
            item = _skeleton(json.loads(block.removeprefix("data: ")))
        if not out or out[-1] != item:
            out.append(item)
    return out


def _events(response: httpx.Response) -> list[Any]:
    """What the client decodes: event types (text runs merged), models, stop, usage, error."""
    out: list[Any] = []
    try:
        if response.headers["content-type"].startswith("text/event-stream"):
            for ev in decode_stream(response.content, PROVIDER):
                item = ev.to_dict()
                if isinstance(ev, TextDelta):
                    item = {"type": "text_delta"}
                item.pop("id", None)
                if not out or out[-1] != item:
                    out.append(item)
        else:
            resp = decode_response(response.content, PROVIDER).to_dict()
            out.append({k: v for k, v in resp.items() if k not in ("id", "text", "usage")})
            out.append({k: v is None for k, v in resp["usage"].items()})
    except LlmError as err:
        out.append((type(err).__name__, err.code, err.message))
    return out


def _shape(response: httpx.Response) -> dict[str, Any]:
    kind = response.headers.get("content-type", "").split(";")[0]
    shape: dict[str, Any] = {"status": response.status_code, "content-type": kind}
    if kind == "text/event-stream":
        shape["frames"] = _frames(response.content)
    else:
        shape["body"] = _skeleton(response.json())
    if response.status_code < 400:
        shape["events"] = _events(response)
    return shape


@pytest.mark.parametrize("case", BATTERY, ids=[c.name for c in BATTERY])
def test_the_emulator_answers_as_the_real_proxy_does(
    claude_proxy: ClaudeProxy, emulator: Emulator, case: Case
) -> None:
    prompt = "Say hello."
    real = _send(claude_proxy.base_url, case, prompt, {})
    emulated = _send(emulator.base_url(PROVIDER), case, prompt, {SCENARIO_HEADER: case.scenario})
    assert _shape(emulated) == _shape(real)
    if case.scenario == "error_usage_limit":  # the sentence itself is the signal
        assert emulated.json()["choices"] == real.json()["choices"]
