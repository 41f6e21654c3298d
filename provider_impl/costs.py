"""What a reply cost, in USD.

Two sources: the maintained ``genai-prices`` package when it is installed (the
``prices`` extra: ``pip install 'provider-impl[prices]'``), which knows dated
model names, price tiers and cache prices; else the small table below, the
offline fallback, keyed ``"provider:model"`` with the date each price was
checked. :func:`estimate_cost` says which source priced a reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Literal

from provider_impl.errors import UsageError
from provider_impl.types import Usage

__all__ = ["COST_TABLE", "CostEstimate", "ModelCost", "estimate_cost", "lookup_cost"]

#: A token count above this is no count of a real reply (and would overflow a float).
MAX_TOKENS = 10**15

PriceSource = Literal["auto", "genai-prices", "table"]


@dataclass(frozen=True, slots=True)
class ModelCost:
    input_per_mtok: float
    output_per_mtok: float
    # Price of prompt tokens served from cache; None: billed as ordinary input.
    cache_read_per_mtok: float | None = None
    # Price of prompt tokens written to the cache; None: billed as ordinary input.
    cache_write_per_mtok: float | None = None
    # The day the prices were checked (ISO 8601).
    as_of: str | None = None


# Checked on 2026-12-02 against the providers' price pages as genai-prices 0.2.3
# carries them (tests/test_costs.py compares the two whenever the package is installed).
_CHECKED = "2026-12-02"

COST_TABLE: Mapping[str, ModelCost] = MappingProxyType(
    {
        "anthropic:claude-sonnet-4-20250514": ModelCost(3.0, 15.0, 0.3, 3.75, _CHECKED),
        "anthropic:claude-opus-4-20250514": ModelCost(15.0, 75.0, 1.5, 18.75, _CHECKED),
        # The family names the Claude subscription proxy takes and reports.
        "anthropic:claude-sonnet-4": ModelCost(3.0, 15.0, 0.3, 3.75, _CHECKED),
        "anthropic:claude-opus-4": ModelCost(15.0, 75.0, 1.5, 18.75, _CHECKED),
        "anthropic:claude-haiku-4": ModelCost(1.0, 5.0, 0.1, 1.25, _CHECKED),
        "bedrock:claude-sonnet-4-20250514": ModelCost(3.0, 15.0, 0.3, 3.75, _CHECKED),
        "openai:gpt-4o": ModelCost(2.5, 10.0, 1.25, None, _CHECKED),
        # A dated snapshot priced apart from its family name.
        "openai:gpt-4o-2024-05-13": ModelCost(5.0, 15.0, None, None, _CHECKED),
        "openai:gpt-4o-mini": ModelCost(0.15, 0.6, 0.075, None, _CHECKED),
        "openai:gpt-4.1": ModelCost(2.0, 8.0, 0.5, None, _CHECKED),
        "openai:o3-mini": ModelCost(1.1, 4.4, 0.55, None, _CHECKED),
        # Gemini 2.5 Pro costs more above 200k prompt tokens; only genai-prices knows tiers.
        "gemini:gemini-2.5-pro": ModelCost(1.25, 10.0, 0.125, None, _CHECKED),
        "gemini:gemini-2.5-flash": ModelCost(0.3, 2.5, 0.03, None, _CHECKED),
        "mistral:mistral-large-latest": ModelCost(2.0, 6.0, None, None, _CHECKED),
        "glm:glm-4.7": ModelCost(0.6, 2.2, 0.11, None, _CHECKED),
        # OpenRouter passes the upstream's price through (its usage.cost says the same).
        "openrouter:anthropic/claude-sonnet-4.6": ModelCost(3.0, 15.0, 0.3, 3.75, _CHECKED),
    }
)

# A dated snapshot name: gpt-4o-2024-08-06, claude-sonnet-4-20250514.
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


class CostEstimate(float):
    """USD, as a ``float``, that also says which ``source`` priced it
    (``"genai-prices <version>"`` or ``"table <date>"``) and under which ``model``."""

    source: str
    model: str

    def __new__(cls, usd: float, source: str, model: str) -> CostEstimate:
        self = super().__new__(cls, usd)
        self.source = source
        self.model = model
        return self

    def __repr__(self) -> str:
        return f"CostEstimate({float(self)!r}, source={self.source!r}, model={self.model!r})"


def _keys(provider: object) -> tuple[str, str, bool]:
    """(cost-table prefix, genai-prices provider id, reasoning billed outside output)."""
    from provider_impl.dialects import DIALECTS, ProviderDialect

    dialect = getattr(provider, "dialect", provider)  # a provider carries its dialect
    if isinstance(dialect, str):
        if dialect not in DIALECTS:
            return dialect, dialect, False
        dialect = DIALECTS[dialect]
    if not isinstance(dialect, ProviderDialect):
        if isinstance(provider, Usage):
            raise TypeError(
                "provider is a Usage: the arguments are swapped; "
                "call estimate_cost(usage, provider, model)"
            )
        raise TypeError(
            f"provider must be a name, a ProviderDialect or a provider, not "
            f"{type(provider).__name__}"
        )
    return dialect.pricing_key, dialect.prices_key, dialect.reasoning_outside_completion


def lookup_cost(provider: object, model: str) -> ModelCost | None:
    """The fallback table's entry for ``model`` at ``provider`` (a cost-table prefix
    such as ``"anthropic"``, a dialect name, a ``ProviderDialect`` or a provider); a
    dialect is priced under its ``pricing_key``. A dated name (``gpt-4o-2024-08-06``)
    without its own entry is priced as its family (``gpt-4o``)."""
    if isinstance(provider, str) and f"{provider}:{model}" in COST_TABLE:
        return COST_TABLE[f"{provider}:{model}"]  # a bare prefix, as before
    prefix, _, _ = _keys(provider)
    entry = COST_TABLE.get(f"{prefix}:{model}")
    if entry is None and isinstance(model, str):
        entry = COST_TABLE.get(f"{prefix}:{_DATE_SUFFIX.sub('', model)}")
    return entry


def _counts(usage: object) -> dict[str, int]:
    if not isinstance(usage, Usage):
        hint = " (are the arguments swapped?)" if isinstance(usage, str) else ""
        raise TypeError(f"usage must be a Usage, got {type(usage).__name__}{hint}")
    counts: dict[str, int] = {}
    for f in fields(usage):
        value = getattr(usage, f.name)
        if value is None:
            counts[f.name] = 0
        elif isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"usage.{f.name} must be an integer or None, got {value!r}")
        elif not 0 <= value <= MAX_TOKENS:
            raise UsageError(
                f"usage.{f.name} must be a token count from 0 to {MAX_TOKENS:.0e}, got {value}"
            )
        else:
            counts[f.name] = value
    return counts


def _from_package(counts: dict[str, int], provider_id: str, model: str) -> CostEstimate | None:
    try:
        import genai_prices
    except ImportError:
        return None
    usage = genai_prices.Usage(
        input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"],
        cache_read_tokens=counts["cache_read_input_tokens"] or None,
        cache_write_tokens=counts["cache_write_input_tokens"] or None,
    )
    try:
        calc = genai_prices.calc_price(usage, model, provider_id=provider_id)
    except LookupError:  # a model or provider it does not know
        return None
    version = getattr(genai_prices, "__version__", "")
    return CostEstimate(float(calc.total_price), f"genai-prices {version}".strip(), calc.model.id)


def _from_table(counts: dict[str, int], provider: object, model: str) -> CostEstimate | None:
    entry = lookup_cost(provider, model)
    if entry is None:
        return None
    inp, out = counts["input_tokens"], counts["output_tokens"]
    read, written = counts["cache_read_input_tokens"], counts["cache_write_input_tokens"]
    read_price = entry.cache_read_per_mtok
    write_price = entry.cache_write_per_mtok
    # Integer token counts times prices: exact enough, and bounded by MAX_TOKENS.
    total = (
        (inp - read - written) * entry.input_per_mtok
        + read * (entry.input_per_mtok if read_price is None else read_price)
        + written * (entry.input_per_mtok if write_price is None else write_price)
        + out * entry.output_per_mtok
    )
    return CostEstimate(total / 1_000_000, f"table {entry.as_of or 'undated'}", model)


def estimate_cost(
    usage: Usage, provider: object, model: str, *, prices: PriceSource = "auto"
) -> CostEstimate | None:
    """USD for ``usage`` of ``model`` at ``provider``, or ``None`` for a model neither
    source knows. The result is a ``float`` whose ``source`` says what priced it.

    ``prices``: ``"auto"`` (genai-prices when installed, else the table),
    ``"genai-prices"`` or ``"table"`` (that source only). Prompt tokens read from or
    written to a cache (counted inside ``input_tokens``) are billed at their own
    prices where the source has them; reasoning a provider counts outside
    ``output_tokens`` (Gemini) is billed as output. Swapped arguments raise
    ``TypeError``; a negative or absurd token count raises ``ValueError``.
    """
    counts = _counts(usage)
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be a non-empty model name, got {model!r}")
    if prices not in ("auto", "genai-prices", "table"):
        raise UsageError(f"prices must be 'auto', 'genai-prices' or 'table', got {prices!r}")
    _, provider_id, reasoning_outside = _keys(provider)
    if reasoning_outside:  # thinking is billed as output, though not counted in it
        counts["output_tokens"] += counts["reasoning_tokens"]
    # Cache reads and writes are part of the prompt: never more than it.
    counts["cache_read_input_tokens"] = min(
        counts["cache_read_input_tokens"], counts["input_tokens"]
    )
    counts["cache_write_input_tokens"] = min(
        counts["cache_write_input_tokens"],
        counts["input_tokens"] - counts["cache_read_input_tokens"],
    )
    if prices != "table":
        found = _from_package(counts, provider_id, model)
        if found is not None or prices == "genai-prices":
            return found
    return _from_table(counts, provider, model)
