"""The emulator accepts the top-level fields the providers' contracts accept, and no others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from transports import TLS

from provider_impl.dialects import DIALECTS
from provider_impl.emulator import PROVIDER_PREFIXES, Emulator
from provider_impl.emulator._dialects import renderer_for
from provider_impl.harness import load_exchange
from provider_impl.schemas import refuses_unknown_fields, schema_errors, top_level_fields

KEY = {"authorization": "Bearer sk-emulator-test-0000"}


def post(emu: Emulator, provider: str, **fields: Any) -> httpx.Response:
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}], **fields}
    url = emu.base_url(provider) + "/chat/completions"
    return httpx.post(url, json=body, headers=KEY, timeout=10, verify=TLS)


@pytest.mark.parametrize("provider", list(PROVIDER_PREFIXES))
def test_emulator_fields_are_the_contracts_fields(provider: str) -> None:
    expected = top_level_fields(provider) if refuses_unknown_fields(provider) else None
    assert renderer_for(DIALECTS[provider]).known_fields == expected


def test_refused_fields_named_by_a_contract_are_not_accepted() -> None:
    fields = top_level_fields("mistral")
    assert {"model", "messages", "max_tokens"} <= fields
    assert not {"stream_options", "max_completion_tokens"} & fields


@pytest.mark.parametrize(
    ("provider", "fields"),
    [
        ("glm", {"reasoning_effort": "max", "thinking": {"clear_thinking": False}}),
        ("glm", {"tool_choice": "auto", "watermark_enabled": False}),
        ("openai", {"prompt_cache_options": {"mode": "implicit"}, "prompt_cache_key": "k"}),
        ("mistral", {"frequency_penalty": None, "prompt_cache_key": "k"}),
    ],
)
def test_emulator_answers_2xx_to_fields_the_contract_accepts(
    emu: Emulator, provider: str, fields: dict[str, Any]
) -> None:
    r = post(emu, provider, **fields)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("provider", "field", "status"),
    [
        ("mistral", "stream_options", 422),
        ("mistral", "max_completion_tokens", 422),
        ("openai", "thinking", 400),
        ("glm", "parallel_tool_calls", 400),
        ("gemini", "store", 400),
    ],
)
def test_emulator_refuses_fields_the_contract_refuses(
    emu: Emulator, provider: str, field: str, status: int
) -> None:
    assert field not in top_level_fields(provider)
    r = post(emu, provider, **{field: {"include_usage": True} if field == "stream_options" else 1})
    assert r.status_code == status
    assert field in r.text


def test_emulator_reads_the_contracts_without_jsonschema() -> None:
    code = (
        "import sys; sys.modules['jsonschema'] = None\n"
        "from provider_impl.dialects import DIALECTS\n"
        "from provider_impl.emulator._dialects import renderer_for\n"
        "print(sorted(renderer_for(DIALECTS['glm']).known_fields or ()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "reasoning_effort" in result.stdout


REAL_ACCEPTED = [
    path
    for path in sorted(
        (Path(__file__).resolve().parent.parent / "cassettes" / "real").glob("*/*.yaml")
    )
    if load_exchange(path).status < 300
]


def test_emulator_accepts_every_request_a_real_provider_accepted(emu: Emulator) -> None:
    """The emulator is no stricter than the providers: each real 2xx request is
    answered 2xx by the emulated provider of its folder."""
    assert len(REAL_ACCEPTED) >= 260
    refused = []
    with httpx.Client(headers=KEY, timeout=10) as client:
        for path in REAL_ACCEPTED:
            body = load_exchange(path).request_body
            url = emu.base_url(path.parent.name) + "/chat/completions"
            r = client.post(url, json=body)
            if r.status_code >= 300:
                refused.append(f"{path.parent.name}/{path.stem}: {r.status_code} {r.text[:120]}")
    assert refused == []


@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ({"stream_options": None}, True),
        ({"stream_options": {"include_usage": True}}, False),
        ({"stream": True, "stream_options": {"include_usage": True}}, True),
        ({"max_tokens": 5, "max_completion_tokens": 5}, False),
        ({"max_tokens": None, "max_completion_tokens": 5}, True),
    ],
)
def test_emulated_openai_and_its_contract_agree_on_edge_cases(
    emu: Emulator, fields: dict[str, Any], accepted: bool
) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **fields}
    assert (schema_errors("openai", body) == []) is accepted
    assert (post(emu, "openai", **fields).status_code < 300) is accepted
