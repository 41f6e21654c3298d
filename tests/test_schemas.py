"""The per-provider request contracts (schemas), the project's own rules, and their helpers."""

from __future__ import annotations

import copy
import subprocess
import sys
from importlib import resources
from types import MappingProxyType
from typing import Any

import pytest

pytest.importorskip("jsonschema")

from jsonschema import Draft202012Validator

from provider_impl.dialects import get_dialect
from provider_impl.schemas import (
    CONTRACTS,
    load_schema,
    rule_errors,
    schema_errors,
    validate_request,
)

STRICT = ("openai", "gemini", "mistral", "glm")

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Look up weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def builder_body(provider: str, *, stream: bool = True) -> dict[str, Any]:
    """A body in the shape the project's request builder emits for ``provider``."""
    dialect = get_dialect(provider)
    body: dict[str, Any] = {
        "model": "some-model",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        dialect.max_tokens_param: 256,
        "stream": stream,
    }
    if stream and dialect.stream_usage_option:
        body["stream_options"] = {"include_usage": True}
    body["tools"] = [copy.deepcopy(WEATHER_TOOL)]
    body["tool_choice"] = "auto"
    body["temperature"] = 0.2
    return body


def tool_round_trip(provider: str) -> dict[str, Any]:
    """A follow-up request carrying an assistant tool call and its result."""
    body = builder_body(provider, stream=False)
    body["messages"] += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "assistant", "content": "18C in Paris."},
        {"role": "user", "content": "Thanks"},
    ]
    body["top_p"] = 0.9
    body["stop"] = ["END"]
    return body


def errors_mentioning(provider: str, body: dict[str, Any], word: str) -> list[str]:
    errors = schema_errors(provider, body)
    assert errors, f"{provider} accepted a body it should reject"
    return [e for e in errors if word in e]


# --------------------------------------------------------------- the schemas themselves


@pytest.mark.parametrize("provider", CONTRACTS)
def test_schema_is_a_valid_draft_2020_12_schema(provider: str) -> None:
    schema = load_schema(provider)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$id" not in schema
    assert schema["title"] and schema["description"]
    assert set(schema["required"]) == {"model", "messages"}
    assert schema["properties"]["messages"]["minItems"] == 1


@pytest.mark.parametrize("provider", CONTRACTS)
def test_unknown_field_policy(provider: str) -> None:
    schema = load_schema(provider)
    # Open exactly where the provider ignores what it does not know (the Claude
    # proxy, OpenRouter); closed where it refuses unknown fields.
    assert schema["additionalProperties"] is get_dialect(provider).ignores_unknown_params


def test_package_ships_one_schema_per_provider_and_matches_the_dialects() -> None:
    shipped = {
        entry.name.removesuffix(".json")
        for entry in resources.files("provider_impl.schemas").iterdir()
        if entry.name.endswith(".json")
    }
    assert shipped == set(CONTRACTS)
    from provider_impl.dialects import DIALECTS

    assert set(DIALECTS) == set(CONTRACTS)


def test_unknown_provider_is_a_value_error_naming_the_known_ones() -> None:
    for call in (
        lambda: load_schema("anthropic"),
        lambda: schema_errors("anthropic", {}),
        lambda: validate_request("anthropic", {}),
    ):
        with pytest.raises(ValueError) as info:
            call()
        for name in CONTRACTS:
            assert name in str(info.value)


def test_load_schema_hands_out_copies() -> None:
    first = load_schema("openai")
    first["properties"].clear()
    assert load_schema("openai")["properties"]
    assert schema_errors("openai", builder_body("openai")) == []


def test_core_schemas_module_imports_without_jsonschema() -> None:
    code = (
        "import sys; sys.modules['jsonschema'] = None\n"
        "import provider_impl.schemas as s\n"
        "assert s.load_schema('mistral')['title']\n"
        "try:\n"
        "    s.schema_errors('mistral', {})\n"
        "except ImportError:\n"
        "    print('lazy')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "lazy"


# --------------------------------------------------------------- builder-shaped bodies


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
@pytest.mark.parametrize("provider", CONTRACTS)
def test_builder_shaped_body_is_valid(provider: str, stream: bool) -> None:
    body = builder_body(provider, stream=stream)
    assert schema_errors(provider, body) == []
    assert rule_errors(provider, body) == []


@pytest.mark.parametrize("provider", CONTRACTS)
def test_tool_round_trip_is_valid(provider: str) -> None:
    assert schema_errors(provider, tool_round_trip(provider)) == []


@pytest.mark.parametrize("provider", CONTRACTS)
def test_minimal_body_is_valid(provider: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert schema_errors(provider, body) == []


@pytest.mark.parametrize("provider", CONTRACTS)
def test_stop_may_be_a_string(provider: str) -> None:
    body = builder_body(provider)
    body["stop"] = "END"
    assert schema_errors(provider, body) == []


@pytest.mark.parametrize("provider", [p for p in CONTRACTS if p != "glm"])
def test_named_tool_choice_and_parallel_tool_calls(provider: str) -> None:
    body = builder_body(provider)
    body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    body["parallel_tool_calls"] = False
    assert schema_errors(provider, body) == []


def test_body_may_be_any_mapping() -> None:
    body = builder_body("openai")
    frozen = MappingProxyType({**body, "messages": tuple(body["messages"])})
    assert schema_errors("openai", frozen) == []
    validate_request("openai", frozen)


# --------------------------------------------------------------- rules shared by all


@pytest.mark.parametrize("provider", CONTRACTS)
def test_empty_messages_are_rejected(provider: str) -> None:
    body = builder_body(provider)
    body["messages"] = []
    assert errors_mentioning(provider, body, "$.messages")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_model_is_required(provider: str) -> None:
    body = builder_body(provider)
    del body["model"]
    assert errors_mentioning(provider, body, "'model' is a required property")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_tool_name_with_a_space_is_rejected(provider: str) -> None:
    body = builder_body(provider)
    body["tools"][0]["function"]["name"] = "get weather"
    assert errors_mentioning(provider, body, "$.tools[0].function.name")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_tool_name_longer_than_64_is_rejected(provider: str) -> None:
    body = builder_body(provider)
    body["tools"][0]["function"]["name"] = "x" * 65
    assert errors_mentioning(provider, body, "$.tools[0].function.name")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_tool_message_without_tool_call_id_is_rejected(provider: str) -> None:
    body = tool_round_trip(provider)
    del body["messages"][3]["tool_call_id"]
    assert errors_mentioning(provider, body, "'tool_call_id' is a required property")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_tool_call_arguments_must_be_present(provider: str) -> None:
    body = tool_round_trip(provider)
    del body["messages"][2]["tool_calls"][0]["function"]["arguments"]
    assert errors_mentioning(provider, body, "'arguments' is a required property")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_assistant_message_needs_content_or_tool_calls(provider: str) -> None:
    body = builder_body(provider)
    body["messages"].append({"role": "assistant", "content": None})
    assert errors_mentioning(provider, body, "non-null content or tool_calls")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_unknown_role_is_rejected(provider: str) -> None:
    body = builder_body(provider)
    body["messages"][1]["role"] = "human"
    assert errors_mentioning(provider, body, "$.messages[1].role")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_top_p_above_one_is_rejected(provider: str) -> None:
    body = builder_body(provider)
    body["top_p"] = 1.5
    assert errors_mentioning(provider, body, "$.top_p")


@pytest.mark.parametrize("provider", CONTRACTS)
def test_known_fields_are_typed_even_where_unknown_ones_pass(provider: str) -> None:
    body = builder_body(provider)
    body["temperature"] = "warm"
    body["stream"] = "yes"
    errors = schema_errors(provider, body)
    assert any(e.startswith("$.temperature:") for e in errors)
    assert any(e.startswith("$.stream:") for e in errors)


@pytest.mark.parametrize(
    ("provider", "highest", "too_high"),
    [
        ("openai", 2, 2.1),
        ("gemini", 2, 2.1),
        ("mistral", 1.5, 1.6),
        ("glm", 1, 1.1),
        ("claude_subscription", 2, 2.1),
    ],
)
def test_temperature_range(provider: str, highest: float, too_high: float) -> None:
    body = builder_body(provider)
    body["temperature"] = highest
    assert schema_errors(provider, body) == []
    body["temperature"] = too_high
    assert errors_mentioning(provider, body, "$.temperature")
    body["temperature"] = -0.1
    assert errors_mentioning(provider, body, "$.temperature")


# --------------------------------------------------------------- unknown fields


@pytest.mark.parametrize("provider", STRICT)
def test_unknown_field_is_rejected_by_strict_providers(provider: str) -> None:
    body = builder_body(provider)
    body["frobnicate"] = True
    assert errors_mentioning(provider, body, "'frobnicate' was unexpected")


@pytest.mark.parametrize("provider", [p for p in STRICT if p != "openai"])
def test_unknown_message_field_is_rejected_by_strict_providers(provider: str) -> None:
    body = builder_body(provider)
    body["messages"][1]["frobnicate"] = True
    assert errors_mentioning(provider, body, "$.messages[1]")


def test_openai_ignores_unknown_keys_inside_messages_but_types_known_ones() -> None:
    # OpenAI answered 2xx to assistant turns replayed with SDK-only keys.
    body = tool_round_trip("openai")
    body["messages"][2].update({"parsed": None, "annotations": [], "audio": None})
    call = body["messages"][2]["tool_calls"][0]
    call["index"] = 0
    call["function"]["parsed_arguments"] = {"city": "Paris"}
    body["messages"][1]["frobnicate"] = True
    assert schema_errors("openai", body) == []
    body["messages"][1]["name"] = 7
    assert errors_mentioning("openai", body, "$.messages[1].name")


def test_claude_subscription_ignores_unknown_fields() -> None:
    body = builder_body("claude_subscription")
    body["frobnicate"] = True
    body["messages"][1]["frobnicate"] = True
    body["tools"][0]["function"]["frobnicate"] = True
    assert schema_errors("claude_subscription", body) == []


# --------------------------------------------------------------- OpenAI


def test_openai_stream_without_stream_options_is_a_project_rule_not_a_contract() -> None:
    body = builder_body("openai")
    del body["stream_options"]
    assert schema_errors("openai", body) == []
    assert any("include_usage" in e for e in rule_errors("openai", body))


def test_openai_stream_without_include_usage_breaks_only_the_project_rule() -> None:
    body = builder_body("openai")
    for options in ({"include_obfuscation": False}, {"include_usage": False}):
        body["stream_options"] = options
        assert schema_errors("openai", body) == []
        assert rule_errors("openai", body) == [
            "$.stream_options.include_usage: a streaming request must set it to true "
            "(the openai dialect's stream_usage_option: every stream reports usage)"
        ]


def test_openai_stream_options_need_stream_true() -> None:
    body = builder_body("openai", stream=False)
    body["stream_options"] = {"include_usage": True}
    assert errors_mentioning("openai", body, "only allowed when stream is true")
    del body["stream"]
    assert errors_mentioning("openai", body, "only allowed when stream is true")
    body["stream_options"] = None  # OpenAI takes null for an absent option
    assert schema_errors("openai", body) == []


def test_openai_stream_options_fields() -> None:
    body = builder_body("openai")
    body["stream_options"] = {"include_usage": True, "include_obfuscation": False}
    assert schema_errors("openai", body) == []
    body["stream_options"]["compress"] = True
    assert errors_mentioning("openai", body, "'compress' was unexpected")


def test_openai_rejects_both_output_caps() -> None:
    # OpenAI: "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported."
    body = builder_body("openai")
    body["max_tokens"] = 256
    assert errors_mentioning("openai", body, "max_tokens cannot be sent together")
    body["max_tokens"] = None
    assert schema_errors("openai", body) == []


def test_openai_accepts_legacy_max_tokens_alone() -> None:
    body = builder_body("openai")
    body["max_tokens"] = body.pop("max_completion_tokens")
    assert schema_errors("openai", body) == []


def test_openai_known_extras() -> None:
    body = builder_body("openai")
    body.update(
        {
            "n": 1,
            "seed": 7,
            "user": "u-1",
            "safety_identifier": "hashed",
            "prompt_cache_key": "k",
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
            },
            "presence_penalty": 0.5,
            "frequency_penalty": -0.5,
            "logprobs": True,
            "top_logprobs": 3,
            "logit_bias": {"50256": -100},
            "reasoning_effort": "low",
            "verbosity": "low",
            "metadata": {"run": "1"},
            "store": False,
            "service_tier": "flex",
            "parallel_tool_calls": True,
            "prediction": {"type": "content", "content": "draft"},
            "modalities": ["text"],
            "web_search_options": {},
            "moderation": {"model": "omni-moderation-latest"},
        }
    )
    body["messages"].insert(0, {"role": "developer", "content": "Be brief."})
    body["messages"][2]["content"] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}},
    ]
    assert schema_errors("openai", body) == []


def test_openai_prompt_cache_fields() -> None:
    body = builder_body("openai")
    body["prompt_cache_key"] = "conversation-1"
    body["prompt_cache_retention"] = "24h"
    body["prompt_cache_options"] = {"mode": "explicit", "ttl": "30m"}
    body["messages"][0]["content"] = [
        {"type": "text", "text": "You are terse.", "prompt_cache_breakpoint": {"mode": "explicit"}}
    ]
    assert schema_errors("openai", body) == []
    body["prompt_cache_options"]["mode"] = "sometimes"
    assert errors_mentioning("openai", body, "$.prompt_cache_options.mode")


def test_openai_optional_parameters_may_be_null() -> None:
    body = builder_body("openai")
    body.update({"seed": None, "temperature": None, "stop": None, "reasoning_effort": None})
    assert schema_errors("openai", body) == []
    body["tools"] = None  # not nullable in OpenAI's reference
    assert errors_mentioning("openai", body, "$.tools")


def test_openai_custom_tools_and_object_tool_choices() -> None:
    body = builder_body("openai")
    body["tools"].append({"type": "custom", "custom": {"name": "sql", "description": "SQL"}})
    del body["tools"][0]["function"]["parameters"]  # optional: a call without arguments
    for choice in (
        {"type": "custom", "custom": {"name": "sql"}},
        {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
        {"type": "function", "function": {"name": "get_weather"}},
    ):
        body["tool_choice"] = choice
        assert schema_errors("openai", body) == [], choice
    body["tool_choice"] = {"type": "hosted", "hosted": {}}
    assert errors_mentioning("openai", body, "$.tool_choice.type")


def test_openai_rejects_mistral_only_tool_choice() -> None:
    body = builder_body("openai")
    body["tool_choice"] = "any"
    assert errors_mentioning("openai", body, "$.tool_choice")


def test_openai_stop_takes_at_most_four() -> None:
    body = builder_body("openai")
    body["stop"] = ["a", "b", "c", "d", "e"]
    assert errors_mentioning("openai", body, "$.stop")


# --------------------------------------------------------------- Mistral


def test_mistral_rejects_stream_options() -> None:
    body = builder_body("mistral")
    body["stream_options"] = {"include_usage": True}
    found = errors_mentioning("mistral", body, "stream_options")
    assert any(e.startswith("$.stream_options:") for e in found)


def test_mistral_rejects_max_completion_tokens() -> None:
    body = builder_body("mistral")
    body["max_completion_tokens"] = body.pop("max_tokens")
    found = errors_mentioning("mistral", body, "max_completion_tokens")
    assert any(e.startswith("$.max_completion_tokens:") for e in found)


def test_mistral_known_extras() -> None:
    body = builder_body("mistral")
    body.update(
        {
            "tool_choice": "any",
            "random_seed": 42,
            "safe_prompt": True,
            "response_format": {"type": "json_object"},
            "presence_penalty": 0.1,
            "frequency_penalty": 0.1,
            "n": 1,
            "prediction": {"type": "content", "content": "draft"},
            "prompt_mode": "reasoning",
            "parallel_tool_calls": False,
        }
    )
    body["messages"].append({"role": "assistant", "content": "It is", "prefix": True})
    assert schema_errors("mistral", body) == []


def test_mistral_accepts_what_its_endpoint_answered_2xx() -> None:
    body = tool_round_trip("mistral")
    del body["tools"][0]["type"]  # type defaults to function
    body.update({"frequency_penalty": None, "presence_penalty": None, "stop": None})
    body["messages"].append({"role": "user", "content": []})
    body["messages"].append({"role": "assistant", "content": "ok", "tool_calls": []})
    assert schema_errors("mistral", body) == []
    assert rule_errors("mistral", body) == []


def test_mistral_still_types_what_may_be_null() -> None:
    body = builder_body("mistral")
    body["frequency_penalty"] = "high"
    body["tools"][0]["type"] = "retrieval"
    errors = schema_errors("mistral", body)
    assert any(e.startswith("$.frequency_penalty:") for e in errors)
    assert any(e.startswith("$.tools[0].type:") for e in errors)


def test_mistral_has_no_openai_seed() -> None:
    body = builder_body("mistral")
    body["seed"] = 1
    assert errors_mentioning("mistral", body, "'seed' was unexpected")


# --------------------------------------------------------------- Gemini


def test_gemini_known_extras() -> None:
    body = builder_body("gemini")
    body.update(
        {
            "max_completion_tokens": 512,
            "reasoning_effort": "low",
            "n": 1,
            "seed": 3,
            "response_format": {"type": "json_object"},
            "extra_body": {"google": {"thinking_config": {"include_thoughts": True}}},
            "parallel_tool_calls": False,
        }
    )
    assert schema_errors("gemini", body) == []


@pytest.mark.parametrize("field", ["store", "metadata", "thinking"])
def test_gemini_rejects_fields_its_layer_lacks(field: str) -> None:
    body = builder_body("gemini")
    body[field] = {} if field != "store" else False
    assert errors_mentioning("gemini", body, f"'{field}' was unexpected")


def test_gemini_accepts_an_empty_tool_call_id_it_may_have_sent() -> None:
    body = tool_round_trip("gemini")
    body["messages"][2]["tool_calls"][0]["id"] = ""
    body["messages"][2]["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": "sig"}}
    body["messages"][3]["tool_call_id"] = ""
    assert schema_errors("gemini", body) == []


# --------------------------------------------------------------- GLM


def test_glm_known_extras() -> None:
    body = builder_body("glm")
    body.update(
        {
            "thinking": {"type": "disabled"},
            "tool_stream": True,
            "do_sample": False,
            "request_id": "req-1",
            "user_id": "user-123",
            "response_format": {"type": "json_object"},
        }
    )
    assert schema_errors("glm", body) == []
    body["thinking"] = {"type": "enabled", "clear_thinking": False}
    assert schema_errors("glm", body) == []


def test_glm_thinking_type_is_checked() -> None:
    body = builder_body("glm")
    body["thinking"] = {"type": "on"}
    assert errors_mentioning("glm", body, "$.thinking.type")


def test_glm_thinking_may_set_only_clear_thinking() -> None:
    body = builder_body("glm")
    body["thinking"] = {"clear_thinking": False}
    assert schema_errors("glm", body) == []
    body["thinking"] = {"clear_thinking": "no"}
    assert errors_mentioning("glm", body, "$.thinking.clear_thinking")


@pytest.mark.parametrize("model", ["glm-4.7-flash", "glm-5.2", "glm-5.3"])
@pytest.mark.parametrize("effort", ["none", "low", "high", "xhigh", "max"])
def test_glm_reasoning_effort(model: str, effort: str) -> None:
    body = builder_body("glm")
    body["model"] = model
    body["reasoning_effort"] = effort
    assert schema_errors("glm", body) == []


def test_glm_reasoning_effort_value_is_checked() -> None:
    body = builder_body("glm")
    body["reasoning_effort"] = "extreme"
    assert errors_mentioning("glm", body, "$.reasoning_effort")


def test_glm_named_tool_choice_and_builtin_tools() -> None:
    body = builder_body("glm")
    body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    body["tools"].append({"type": "web_search", "web_search": {"enable": True}})
    assert schema_errors("glm", body) == []
    body["tool_choice"] = {"type": "function"}
    assert errors_mentioning("glm", body, "'function' is a required property")


def test_glm_documented_limits() -> None:
    body = builder_body("glm")
    body["tool_choice"] = "any"
    assert errors_mentioning("glm", body, "$.tool_choice")
    body = builder_body("glm")
    body["stop"] = ["a", "b"]
    assert errors_mentioning("glm", body, "$.stop")
    body = builder_body("glm")
    body["user_id"] = "abc"
    assert errors_mentioning("glm", body, "$.user_id")


# --------------------------------------------------------------- Claude subscription


def test_claude_subscription_accepts_either_output_cap() -> None:
    body = builder_body("claude_subscription")
    body["max_completion_tokens"] = body.pop("max_tokens")
    assert schema_errors("claude_subscription", body) == []
    body["max_tokens"] = 100
    assert schema_errors("claude_subscription", body) == []


def test_claude_subscription_still_types_stream_options() -> None:
    body = builder_body("claude_subscription")
    body["stream_options"] = {"include_usage": "yes"}
    assert errors_mentioning("claude_subscription", body, "$.stream_options.include_usage")


# --------------------------------------------------------------- the helpers


def test_schema_errors_are_sorted_json_path_messages() -> None:
    body = builder_body("mistral")
    body["stream_options"] = {"include_usage": True}
    body["max_completion_tokens"] = 5
    body["messages"] = []
    errors = schema_errors("mistral", body)
    assert errors == sorted(errors)
    assert len(errors) == 3
    assert all(e.startswith("$") and ": " in e for e in errors)


def test_validate_request_raises_a_plain_value_error_listing_every_error() -> None:
    validate_request("openai", builder_body("openai"))
    body = builder_body("openai")
    body["max_tokens"] = 5
    body["frobnicate"] = 1
    with pytest.raises(ValueError) as info:
        validate_request("openai", body)
    assert type(info.value) is ValueError
    message = str(info.value)
    assert "openai" in message
    for error in schema_errors("openai", body):
        assert error in message
