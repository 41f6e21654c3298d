"""Prices in USD per million tokens, keyed ``"provider:model"``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from provider_impl.types import Usage

__all__ = ["COST_TABLE", "ModelCost", "estimate_cost", "lookup_cost"]


@dataclass(frozen=True, slots=True)
class ModelCost:
    input_per_mtok: float
    output_per_mtok: float
    # Price of prompt tokens served from cache; None: billed as ordinary input.
    cache_read_per_mtok: float | None = None


COST_TABLE: Mapping[str, ModelCost] = MappingProxyType(
    {
        "anthropic:claude-sonnet-4-20250514": ModelCost(3.0, 15.0, 0.3),
        "anthropic:claude-opus-4-20250514": ModelCost(15.0, 75.0, 1.5),
        # The family names the Claude subscription proxy takes and reports.
        "anthropic:claude-sonnet-4": ModelCost(3.0, 15.0, 0.3),
        "anthropic:claude-opus-4": ModelCost(15.0, 75.0, 1.5),
        "anthropic:claude-haiku-4": ModelCost(1.0, 5.0, 0.1),
        "bedrock:claude-sonnet-4-20250514": ModelCost(3.0, 15.0, 0.3),
        "openai:gpt-4o": ModelCost(2.5, 10.0, 1.25),
        "openai:gpt-4o-mini": ModelCost(0.15, 0.6, 0.075),
        "openai:o3-mini": ModelCost(1.1, 4.4, 0.55),
        "gemini:gemini-2.5-pro": ModelCost(1.25, 10.0),
        "gemini:gemini-2.5-flash": ModelCost(0.3, 2.5),
        "mistral:mistral-large-latest": ModelCost(2.0, 6.0),
        "glm:glm-4.7": ModelCost(0.5, 2.0),
        # OpenRouter passes the upstream's price through (its usage.cost says the same).
        "openrouter:anthropic/claude-sonnet-4.6": ModelCost(3.0, 15.0, 0.3),
    }
)


def lookup_cost(provider: object, model: str) -> ModelCost | None:
    """The price entry for ``model`` at ``provider`` (a cost-table prefix such as
    ``"anthropic"``, a dialect name, a ``ProviderDialect`` or a provider);
    a dialect is priced under its ``pricing_key``."""
    from provider_impl.dialects import DIALECTS, ProviderDialect

    dialect = getattr(provider, "dialect", provider)  # a provider carries its dialect
    if isinstance(dialect, str):
        entry = COST_TABLE.get(f"{dialect}:{model}")
        if entry is not None or dialect not in DIALECTS:
            return entry
        dialect = DIALECTS[dialect]
    if not isinstance(dialect, ProviderDialect):
        raise TypeError(
            f"provider must be a name, a ProviderDialect or a provider, not "
            f"{type(provider).__name__}"
        )
    return COST_TABLE.get(f"{dialect.pricing_key}:{model}")


def estimate_cost(usage: Usage, provider: object, model: str) -> float | None:
    """USD for ``usage``; ``None`` for a model the table does not know.

    Cached prompt tokens (counted inside ``input_tokens``) are billed at the
    cache-read price where the table has one.
    """
    entry = lookup_cost(provider, model)
    if entry is None:
        return None
    inp = usage.input_tokens or 0
    out = usage.output_tokens or 0
    cached = min(usage.cache_read_input_tokens or 0, inp)
    cache_price = entry.cache_read_per_mtok
    if cache_price is None:
        cache_price = entry.input_per_mtok
    total = (
        (inp - cached) * entry.input_per_mtok + cached * cache_price + out * entry.output_per_mtok
    )
    return total / 1_000_000
