"""The project's own request rules (``rule_errors``), kept apart from the providers' contracts.

The rules come from the dialect record, so every test here states its
expectation from the record's fields (or from a custom dialect), never from a
provider's name. No ``jsonschema`` needed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider, ToolDefinition
from provider_impl.dialects import DIALECTS, ProviderDialect, get_dialect
from provider_impl.schemas import rule_errors
from provider_impl.schemas.rules import OUTPUT_CAP_NAMES

REQUEST = CompletionRequest(
    messages=[Message.user("Weather in Paris?")],
    system="Be terse.",
    max_tokens=128,
    temperature=0.3,
    tools=[
        ToolDefinition(
            name="get_weather",
            description="Current weather.",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    ],
)


def built(dialect: ProviderDialect, *, stream: bool) -> dict[str, Any]:
    provider = OpenAiCompatibleProvider(dialect, api_key="test-key")
    # A dialect that cannot call tools refuses them (test_payload covers that).
    request = (
        REQUEST if dialect.capabilities.tool_calling else dataclasses.replace(REQUEST, tools=None)
    )
    return provider.build_request(request, stream=stream)


ACME = ProviderDialect(
    name="acme",
    base_url="https://llm.acme.test/v1",
    default_model="acme-1",
    capabilities=get_dialect("openai").capabilities,
    api_key_env=None,
    max_tokens_param="max_output_tokens",
    stream_usage_option=False,
    forbidden_params=frozenset({"seed", "parallel_tool_calls"}),
)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
@pytest.mark.parametrize("dialect", [*DIALECTS.values(), ACME], ids=lambda d: d.name)
def test_what_the_builder_sends_keeps_the_rules(dialect: ProviderDialect, stream: bool) -> None:
    body = built(dialect, stream=stream)
    assert rule_errors(dialect, body) == []
    if dialect.name in DIALECTS:
        assert rule_errors(dialect.name, body) == []


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=lambda d: d.name)
def test_stream_usage_follows_the_record(dialect: ProviderDialect) -> None:
    body = built(dialect, stream=True)
    flipped = dataclasses.replace(dialect, stream_usage_option=not dialect.stream_usage_option)
    errors = rule_errors(flipped, body)
    assert len(errors) == 1
    assert errors[0].startswith("$.stream_options")


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=lambda d: d.name)
def test_the_output_cap_goes_under_the_records_name_only(dialect: ProviderDialect) -> None:
    body = built(dialect, stream=False)
    (other,) = OUTPUT_CAP_NAMES - {dialect.max_tokens_param}
    body[other] = body[dialect.max_tokens_param]
    assert f"$.{other}" in {e.split(":", 1)[0] for e in rule_errors(dialect, body)}
    del body[other], body[dialect.max_tokens_param]
    assert any("is missing" in e for e in rule_errors(dialect, body))
    body[dialect.max_tokens_param] = 0
    assert any("positive integer" in e for e in rule_errors(dialect, body))


def test_a_stream_without_usage_is_refused_where_the_record_asks_for_usage() -> None:
    asks = [d for d in DIALECTS.values() if d.stream_usage_option]
    assert asks
    for dialect in asks:
        body = built(dialect, stream=True)
        del body["stream_options"]
        assert rule_errors(dialect, body) == [
            "$.stream_options.include_usage: a streaming request must set it to true "
            f"(the {dialect.name} dialect's stream_usage_option: every stream reports usage)"
        ]
        body["stream_options"] = {"include_usage": True}
        body["stream"] = False
        assert rule_errors(dialect, body) == [
            "$.stream_options: the builder sends stream_options only with stream: true"
        ]


def test_forbidden_params_are_refused_once_each() -> None:
    body = built(ACME, stream=True)
    body.update({"seed": 1, "parallel_tool_calls": True, "stream_options": {}, "max_tokens": 5})
    assert rule_errors(ACME, body) == [
        "$.max_tokens: the acme dialect sends the output cap as max_output_tokens, never as "
        "max_tokens",
        "$.parallel_tool_calls: the acme dialect forbids parallel_tool_calls (in forbidden_params)",
        "$.seed: the acme dialect forbids seed (in forbidden_params)",
        "$.stream_options: the acme dialect never sends stream_options "
        "(stream_usage_option is off)",
    ]


def test_a_forbidden_key_also_covered_by_another_rule_is_reported_once() -> None:
    for dialect in DIALECTS.values():
        body = built(dialect, stream=True)
        for key in dialect.forbidden_params:
            body[key] = 1
        errors = rule_errors(dialect, body)
        paths = [e.split(":", 1)[0] for e in errors]
        assert len(paths) == len(set(paths)), errors
        assert {f"$.{key}" for key in dialect.forbidden_params} <= set(paths)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="anthropic"):
        rule_errors("anthropic", {})
    with pytest.raises(TypeError, match="provider name or a ProviderDialect"):
        rule_errors(3, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping"):
        rule_errors("openai", [])  # type: ignore[arg-type]
