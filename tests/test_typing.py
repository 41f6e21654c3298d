"""Issue 12: a user's program type-checks against the public API under mypy --strict.

``StreamEvent`` is a discriminated union, so ``if event.type == "text_delta":``
narrows ``event`` to ``TextDelta``; the content parts, response formats and
cost estimate are typed. One mypy run over two small programs: one that must
pass, and one that must fail exactly where it misuses a narrowed event.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
from provider_impl import (
    CompletionRequest, ImagePart, Message, OpenAiCompatibleProvider, ResponseFormat,
    StreamEvent, TextPart, Usage,
)
from provider_impl.costs import CostEstimate, estimate_cost


def text_of(events: list[StreamEvent]) -> str:
    out: list[str] = []
    for event in events:
        if event.type == "text_delta":
            out.append(event.text)  # narrowed to TextDelta
        elif event.type == "tool_use_complete":
            out.append(event.name + str(event.input))
        elif event.type == "usage":
            out.append(str(event.input_tokens or 0))
    return "".join(out)


def ask(provider: OpenAiCompatibleProvider) -> object:
    request = CompletionRequest(
        messages=[Message.user([TextPart("What is this?"), ImagePart(url="https://x/a.png")])],
        response_format=ResponseFormat.json_schema("Answer", {"type": "object"}),
        seed=7,
    )
    reply = provider.complete(request)
    cost: CostEstimate | None = estimate_cost(reply.usage, provider, "gpt-4o")
    return reply.parsed, cost.source if cost is not None else None, Usage().cache_write_input_tokens


class Mine(OpenAiCompatibleProvider):
    pass


def build() -> Mine:
    # A factory returns the class it is read from, typed (an Any would fail --strict).
    return Mine.mistral(api_key="k", max_retries=1, base_url=None)
"""

BAD = """
from provider_impl import OpenAiCompatibleProvider, StreamEvent


def wrong(event: StreamEvent) -> str:
    if event.type == "thinking_delta":
        return event.text
    return ""


def typo() -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider.openai(max_retrys=1)
"""


def test_a_user_program_type_checks_and_narrowing_catches_a_wrong_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # mypy finds this checkout's provider_impl from here
    good = tmp_path / "good_program.py"
    bad = tmp_path / "bad_program.py"
    good.write_text(textwrap.dedent(GOOD))
    bad.write_text(textwrap.dedent(BAD))
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--python-version",
            "3.10",
            str(good),
            str(bad),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, (out, err)
    assert not [e for e in errors if "good_program" in e], errors
    # Only the misuses fail: ``event`` is a ThinkingDelta there, which has no ``text``;
    # a factory's keyword arguments are checked.
    assert errors and all(
        ("bad_program.py:7:" in e or "bad_program.py:12:" in e) for e in errors
    ), errors
    assert any('"ThinkingDelta" has no attribute "text"' in e for e in errors), errors
    assert any("bad_program.py:12:" in e and '"max_retrys"' in e for e in errors), errors
