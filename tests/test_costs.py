"""The cost table (issue 2, item 11) and estimate_cost arithmetic."""

from __future__ import annotations

import pytest

from provider_impl import COST_TABLE, DIALECTS, ModelCost, Usage, estimate_cost
from provider_impl.costs import lookup_cost

REQUIRED = {
    "anthropic:claude-sonnet-4-20250514": (3.0, 15.0),
    "anthropic:claude-opus-4-20250514": (15.0, 75.0),
    "openai:gpt-4o": (2.5, 10.0),
    "openai:o3-mini": (1.1, 4.4),
    "gemini:gemini-2.5-pro": (1.25, 10.0),
    "mistral:mistral-large-latest": (2.0, 6.0),
    "glm:glm-4.7": (0.5, 2.0),
    "bedrock:claude-sonnet-4-20250514": (3.0, 15.0),
}


@pytest.mark.parametrize("key", sorted(REQUIRED))
def test_required_entries(key: str) -> None:
    entry = COST_TABLE[key]
    assert (entry.input_per_mtok, entry.output_per_mtok) == REQUIRED[key]


def test_every_key_is_provider_colon_model_and_prices_are_sane() -> None:
    for key, entry in COST_TABLE.items():
        provider, sep, model = key.partition(":")
        assert sep and provider and model, key
        assert isinstance(entry, ModelCost)
        assert entry.input_per_mtok >= 0 and entry.output_per_mtok >= 0
        if entry.cache_read_per_mtok is not None:
            assert 0 <= entry.cache_read_per_mtok <= entry.input_per_mtok


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_default_model_is_priced(name: str) -> None:
    dialect = DIALECTS[name]
    assert lookup_cost(name, dialect.default_model) is not None
    cost = estimate_cost(Usage(1_000_000, 0), name, dialect.default_model)
    assert cost is not None and cost > 0


def test_claude_subscription_is_priced_as_anthropic() -> None:
    model = DIALECTS["claude_subscription"].default_model
    usage = Usage(input_tokens=2_000, output_tokens=1_000)
    assert estimate_cost(usage, "claude_subscription", model) == estimate_cost(
        usage, "anthropic", model
    )


def test_arithmetic_without_cache() -> None:
    # gpt-4o: 2.5 in / 10.0 out per million
    cost = estimate_cost(Usage(input_tokens=1_000, output_tokens=500), "openai", "gpt-4o")
    assert cost == pytest.approx(1_000 * 2.5e-6 + 500 * 10.0e-6)
    assert cost == pytest.approx(0.0075)


def test_arithmetic_with_cached_tokens() -> None:
    entry = COST_TABLE["openai:gpt-4o"]
    assert entry.cache_read_per_mtok is not None
    usage = Usage(input_tokens=10_000, output_tokens=2_000, cache_read_input_tokens=4_000)
    expected = (
        6_000 * entry.input_per_mtok
        + 4_000 * entry.cache_read_per_mtok
        + 2_000 * entry.output_per_mtok
    ) / 1e6
    assert estimate_cost(usage, "openai", "gpt-4o") == pytest.approx(expected)
    # cached tokens make it cheaper, never dearer
    uncached = estimate_cost(Usage(10_000, 2_000), "openai", "gpt-4o")
    assert uncached is not None
    assert estimate_cost(usage, "openai", "gpt-4o") < uncached


def test_cached_tokens_without_a_cache_price_are_billed_as_input() -> None:
    key = next(k for k, v in COST_TABLE.items() if v.cache_read_per_mtok is None)
    provider, _, model = key.partition(":")
    with_cache = estimate_cost(Usage(5_000, 100, 3_000), provider, model)
    without = estimate_cost(Usage(5_000, 100), provider, model)
    assert with_cache == pytest.approx(without)


def test_cached_tokens_are_capped_at_the_input() -> None:
    entry = COST_TABLE["anthropic:claude-sonnet-4-20250514"]
    assert entry.cache_read_per_mtok is not None
    odd = estimate_cost(Usage(100, 0, 10_000), "anthropic", "claude-sonnet-4-20250514")
    assert odd == pytest.approx(100 * entry.cache_read_per_mtok / 1e6)


def test_missing_counts_are_zero() -> None:
    assert estimate_cost(Usage(), "openai", "gpt-4o") == 0
    assert estimate_cost(Usage(output_tokens=1_000_000), "glm", "glm-4.7") == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-nonexistent"),
        ("nosuch", "gpt-4o"),
        ("openai", ""),
        ("gemini", "gpt-4o"),
        ("claude_subscription", "gpt-4o"),
    ],
)
def test_unknown_model_is_none(provider: str, model: str) -> None:
    assert estimate_cost(Usage(1000, 1000), provider, model) is None
