"""The cost table (issue 2, item 11) and estimate_cost arithmetic."""

from __future__ import annotations

import sys
from datetime import date

import pytest

from provider_impl import OpenAiCompatibleProvider, Usage
from provider_impl.costs import COST_TABLE, CostEstimate, ModelCost, estimate_cost, lookup_cost
from provider_impl.dialects import DIALECTS

REQUIRED = {
    "anthropic:claude-sonnet-4-20250514": (3.0, 15.0),
    "anthropic:claude-opus-4-20250514": (15.0, 75.0),
    "openai:gpt-4o": (2.5, 10.0),
    "openai:o3-mini": (1.1, 4.4),
    "gemini:gemini-2.5-pro": (1.25, 10.0),
    "mistral:mistral-large-latest": (2.0, 6.0),
    # Z.ai lists GLM-4.7 at $0.6 / $2.2 (the seed table had 0.5 / 2.0).
    "glm:glm-4.7": (0.6, 2.2),
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
    usage = Usage(input_tokens=1_000, output_tokens=500)
    cost = estimate_cost(usage, "openai", "gpt-4o", prices="table")
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
    assert estimate_cost(usage, "openai", "gpt-4o", prices="table") == pytest.approx(expected)
    # cached tokens make it cheaper, never dearer
    uncached = estimate_cost(Usage(10_000, 2_000), "openai", "gpt-4o", prices="table")
    assert uncached is not None
    assert estimate_cost(usage, "openai", "gpt-4o", prices="table") < uncached


def test_cached_tokens_without_a_cache_price_are_billed_as_input() -> None:
    key = next(k for k, v in COST_TABLE.items() if v.cache_read_per_mtok is None)
    provider, _, model = key.partition(":")
    with_cache = estimate_cost(Usage(5_000, 100, 3_000), provider, model, prices="table")
    without = estimate_cost(Usage(5_000, 100), provider, model, prices="table")
    assert with_cache == pytest.approx(without)


def test_cached_tokens_are_capped_at_the_input() -> None:
    entry = COST_TABLE["anthropic:claude-sonnet-4-20250514"]
    assert entry.cache_read_per_mtok is not None
    odd = estimate_cost(
        Usage(100, 0, 10_000), "anthropic", "claude-sonnet-4-20250514", prices="table"
    )
    assert odd == pytest.approx(100 * entry.cache_read_per_mtok / 1e6)


def test_missing_counts_are_zero() -> None:
    assert estimate_cost(Usage(), "openai", "gpt-4o") == 0
    assert estimate_cost(Usage(output_tokens=1_000_000), "glm", "glm-4.7") == pytest.approx(2.2)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-nonexistent"),
        ("nosuch", "gpt-4o"),
        ("gemini", "gpt-4o"),
        ("claude_subscription", "gpt-4o"),
    ],
)
def test_unknown_model_is_none(provider: str, model: str) -> None:
    assert estimate_cost(Usage(1000, 1000), provider, model) is None


# -- issue 12: two price sources, dated names, cache writes, checked arguments --------


def _has_package() -> bool:
    try:
        import genai_prices  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def no_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """genai-prices as if it were not installed (an import of it fails)."""
    monkeypatch.setitem(sys.modules, "genai_prices", None)


def test_every_fallback_entry_is_dated() -> None:
    for key, entry in COST_TABLE.items():
        assert entry.as_of is not None and date.fromisoformat(entry.as_of), key


def test_a_dated_name_is_priced_by_the_table_without_the_package(no_package: None) -> None:
    usage = Usage(input_tokens=1_000, output_tokens=500)
    cost = estimate_cost(usage, "openai", "gpt-4o-2024-08-06")
    assert isinstance(cost, CostEstimate) and cost.source.startswith("table ")
    assert cost == estimate_cost(usage, "openai", "gpt-4o")  # priced as its family
    # A snapshot with its own price keeps it.
    older = estimate_cost(usage, "openai", "gpt-4o-2024-05-13")
    assert older is not None and older == pytest.approx((1_000 * 5.0 + 500 * 15.0) / 1e6)
    assert estimate_cost(usage, "openai", "gpt-4o-2024-08-06", prices="genai-prices") is None


@pytest.mark.skipif(not _has_package(), reason="genai-prices (the prices extra) not installed")
def test_a_dated_name_is_priced_by_genai_prices_when_installed() -> None:
    import genai_prices

    usage = Usage(input_tokens=1_000, output_tokens=500, cache_read_input_tokens=200)
    cost = estimate_cost(usage, "openai", "gpt-4o-2024-08-06")
    assert isinstance(cost, CostEstimate) and cost.source.startswith("genai-prices")
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1_000, output_tokens=500, cache_read_tokens=200),
        "gpt-4o-2024-08-06",
        provider_id="openai",
    ).total_price
    assert cost == pytest.approx(float(expected))
    # The table, asked directly, prices the same reply the same way.
    table = estimate_cost(usage, "openai", "gpt-4o-2024-08-06", prices="table")
    assert table is not None and table.source.startswith("table ")
    assert table == pytest.approx(cost)


@pytest.mark.skipif(not _has_package(), reason="genai-prices (the prices extra) not installed")
@pytest.mark.parametrize("key", sorted(COST_TABLE))
def test_the_fallback_table_agrees_with_genai_prices(key: str) -> None:
    """Each table price equals the package's where the package knows the model
    (below 200k prompt tokens, where Gemini 2.5 Pro's higher tier starts)."""
    prefix, _, model = key.partition(":")
    usage = Usage(
        input_tokens=150_000,
        output_tokens=50_000,
        cache_read_input_tokens=50_000,
        cache_write_input_tokens=50_000,
    )
    package = estimate_cost(usage, prefix, model, prices="genai-prices")
    if package is None:
        pytest.skip(f"genai-prices does not know {key}")
    table = estimate_cost(usage, prefix, model, prices="table")
    assert table == pytest.approx(package), (table, package)


@pytest.mark.parametrize("prices", ["table", "auto"])
def test_cache_writes_are_billed_at_the_write_price(prices: str, no_package: None) -> None:
    entry = COST_TABLE["anthropic:claude-sonnet-4-20250514"]
    assert entry.cache_write_per_mtok is not None
    usage = Usage(input_tokens=10_000, output_tokens=0, cache_write_input_tokens=4_000)
    cost = estimate_cost(usage, "anthropic", "claude-sonnet-4-20250514", prices=prices)  # type: ignore[arg-type]
    expected = (6_000 * entry.input_per_mtok + 4_000 * entry.cache_write_per_mtok) / 1e6
    assert cost == pytest.approx(expected)
    plain = estimate_cost(Usage(10_000, 0), "anthropic", "claude-sonnet-4-20250514")
    assert plain is not None and cost is not None and cost > plain


def test_gemini_thinking_outside_output_is_billed_as_output(no_package: None) -> None:
    base = Usage(input_tokens=100, output_tokens=10)
    thought = Usage(input_tokens=100, output_tokens=10, reasoning_tokens=1_000)
    entry = COST_TABLE["gemini:gemini-2.5-flash"]
    extra = estimate_cost(thought, "gemini", "gemini-2.5-flash")
    plain = estimate_cost(base, "gemini", "gemini-2.5-flash")
    assert extra is not None and plain is not None
    assert extra - plain == pytest.approx(1_000 * entry.output_per_mtok / 1e6)
    # OpenAI counts reasoning inside output_tokens: no extra charge.
    assert estimate_cost(thought, "openai", "gpt-4o") == estimate_cost(base, "openai", "gpt-4o")


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (("openai", Usage(1, 1), "gpt-4o"), TypeError, "swapped"),
        ((Usage(1, 1), "gpt-4o", "openai"), ValueError, None),
        (({"input_tokens": 1}, "openai", "gpt-4o"), TypeError, "usage must be a Usage"),
        ((Usage(-5, 1), "openai", "gpt-4o"), ValueError, "usage.input_tokens"),
        ((Usage(1, 10**400), "openai", "gpt-4o"), ValueError, "usage.output_tokens"),
        ((Usage(1, True), "openai", "gpt-4o"), TypeError, "usage.output_tokens"),  # type: ignore[arg-type]
        ((Usage(1, 1), "openai", ""), TypeError, "model"),
        ((Usage(1, 1), 42, "gpt-4o"), TypeError, "provider"),
    ],
)
def test_bad_arguments_raise_typed_errors(
    args: tuple[object, object, object], error: type[Exception], words: str | None
) -> None:
    if error is ValueError and words is None:
        # model and provider swapped: "gpt-4o" is no provider, so nothing prices it.
        assert estimate_cost(*args) is None  # type: ignore[arg-type]
        return
    with pytest.raises(error, match=words):
        estimate_cost(*args)  # type: ignore[arg-type]


def test_estimate_is_a_float_that_names_its_source(no_package: None) -> None:
    cost = estimate_cost(Usage(1_000, 1_000), "mistral", "mistral-large-latest")
    assert isinstance(cost, float) and isinstance(cost, CostEstimate)
    assert cost.source == f"table {COST_TABLE['mistral:mistral-large-latest'].as_of}"
    assert "source=" in repr(cost)


# -- pricing through a dialect or a provider ---------------------------------------------


def test_costs_through_a_dialect_or_a_provider() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    claude = OpenAiCompatibleProvider.claude_subscription()
    by_name = estimate_cost(usage, "anthropic", claude.model)
    assert by_name == pytest.approx(18.0)
    assert estimate_cost(usage, claude, claude.model) == by_name
    assert estimate_cost(usage, claude.dialect, claude.model) == by_name
    assert estimate_cost(usage, "claude_subscription", claude.model) == by_name
    custom = OpenAiCompatibleProvider.custom(
        name="gateway", base_url="http://127.0.0.1:9/v1", default_model="gpt-4o",
        cost_provider="openai", api_key="gateway-key-1234",
    )  # fmt: skip
    assert estimate_cost(usage, custom, "gpt-4o") == pytest.approx(12.5)
    assert estimate_cost(usage, "gateway", "gpt-4o") is None
    with pytest.raises(TypeError):
        estimate_cost(usage, 3.14, "gpt-4o")
