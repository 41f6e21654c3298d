"""Facts kept outside the dialect records, checked against them.

The record is the one home of what differs between providers. Some facts
cannot be derived from it (the emulator's real context limit, the JSON
contracts, the cost table); each is checked here against its record.
"""

from __future__ import annotations

import dataclasses

import pytest

from provider_impl.costs import COST_TABLE
from provider_impl.dialects import (
    _REGISTRY,
    BUILTIN,
    DIALECTS,
    ProviderDialect,
    get_dialect,
    register_dialect,
)
from provider_impl.emulator._dialects import WIRES, prefix_for, renderer_for
from provider_impl.scenarios import SCENARIOS
from provider_impl.schemas import refuses_unknown_fields, rule_errors, schema_errors
from provider_impl.schemas.replies import load_reply_schema

RECORDS = pytest.mark.parametrize("record", BUILTIN, ids=lambda d: d.name)


@RECORDS
def test_every_record_names_a_wire_format_and_contracts_that_exist(
    record: ProviderDialect,
) -> None:
    assert record.wire in WIRES
    assert prefix_for(record).startswith(f"/{record.name}/")
    assert schema_errors(record.name, {"model": "m", "messages": []}) is not None
    for kind in ("chunk", "completion"):
        assert load_reply_schema(record.name, kind)["properties"]  # type: ignore[arg-type]


@RECORDS
def test_the_emulated_context_window_is_at_least_the_advertised_one(
    record: ProviderDialect,
) -> None:
    window = renderer_for(record).context_window
    assert window >= record.capabilities.max_context_tokens
    # The real limit behind an advertised round number is close to it (1M = 1,048,576).
    assert window <= record.capabilities.max_context_tokens * 1.05


@RECORDS
def test_forbidden_params_are_refused_by_the_contract_and_never_built(
    record: ProviderDialect,
) -> None:
    base = {"model": record.default_model, "messages": [{"role": "user", "content": "hi"}]}
    for param in record.forbidden_params:
        body = {**base, param: {"include_usage": True} if param == "stream_options" else 1}
        if param == "stream_options":
            body["stream"] = True
        assert schema_errors(record.name, body), f"{record.name} refuses {param}"
        assert rule_errors(record, body), f"the builder never sends {param}"


@RECORDS
def test_a_provider_that_ignores_unknown_params_has_an_open_contract(
    record: ProviderDialect,
) -> None:
    assert refuses_unknown_fields(record.name) is not record.ignores_unknown_params


@RECORDS
def test_a_priced_provider_prices_its_default_model(record: ProviderDialect) -> None:
    if not any(k.startswith(f"{record.pricing_key}:") for k in COST_TABLE):
        pytest.skip(f"{record.name} has no prices")
    assert f"{record.pricing_key}:{record.default_model}" in COST_TABLE


# -- scenario applicability from dialect data --------------------------------------------


def test_scenario_applicability_comes_from_dialect_data() -> None:
    applies = {s: {n for n in DIALECTS if SCENARIOS[s].applies_to(n)} for s in SCENARIOS}
    assert applies["error_auth"] == {n for n, d in DIALECTS.items() if d.checks_key}
    assert "claude_subscription" not in applies["error_invalid_param"]
    assert get_dialect("claude_subscription").ignores_unknown_params
    assert applies["content_filter"] == {
        n for n, d in DIALECTS.items() if d.features.content_filter
    }
    # A renamed copy of a record gets the scenarios its flags allow, by data alone.
    copy = dataclasses.replace(get_dialect("mistral"), name="copy_of_mistral")
    register_dialect(copy)
    try:
        got = {s for s in SCENARIOS if SCENARIOS[s].applies_to("copy_of_mistral")}
        assert got == {s for s in SCENARIOS if SCENARIOS[s].applies_to("mistral")}
        reasoning = SCENARIOS["reasoning"]
        assert reasoning.request_for("copy_of_mistral") == reasoning.request_for("mistral")
    finally:
        _REGISTRY.pop("copy_of_mistral")
