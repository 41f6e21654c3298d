"""JSON Schemas (draft 2020-12) of each provider's chat-completions request body.

The schemas ship as package data (``<provider>.json`` next to this file) and
are each provider's *contract*: what its real endpoint accepts and refuses,
taken from the provider's API reference and from recorded real exchanges (a
body a provider answered with 2xx must pass its contract). They hold its
known top-level fields and their types, message and tool shapes, and the
refusals that differ between providers (Mistral forbids ``stream_options``
and ``max_completion_tokens``; OpenAI never takes ``max_tokens`` together
with ``max_completion_tokens``; the Claude subscription proxy ignores unknown
fields).

What this project's builder must send on top of a contract (usage on every
stream, the dialect's output-cap name) is not a provider fact; it lives in
:mod:`provider_impl.schemas.rules` (``rule_errors``), derived from the dialect
records.

Validation needs the optional ``jsonschema`` dependency (the ``conformance``
extra). It is imported only when a validation function runs, so the core
library imports without it; ``top_level_fields`` and
``refuses_unknown_fields`` read the schema files alone.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from provider_impl.dialects import BUILTIN, DIALECTS
from provider_impl.schemas.rules import rule_errors

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = [
    "CONTRACTS",
    "contract_of",
    "load_schema",
    "refuses_unknown_fields",
    "rule_errors",
    "schema_errors",
    "top_level_fields",
    "validate_request",
]

#: The contracts shipped: one per built-in dialect record (``contract_name``);
#: ``tests/test_record_facts.py`` checks each has its files.
CONTRACTS: tuple[str, ...] = tuple(dict.fromkeys(d.contract_name for d in BUILTIN))

# A schema node may carry this (non-validating) keyword to replace the
# validator's generic message for the single check that node makes.
_MESSAGE_KEYWORD = "errorMessage"


def contract_of(provider: str) -> str:
    """The contract ``provider`` follows: its dialect record's ``contract_name``
    (a contract's own name stands for itself). ``ValueError`` names the known
    ones when there is none."""
    dialect = DIALECTS.get(provider)
    contract = dialect.contract_name if dialect is not None else provider
    if contract not in CONTRACTS:
        known = ", ".join(CONTRACTS)
        raise ValueError(f"no contract for provider {provider!r}; known providers: {known}")
    return contract


@cache
def _cached_schema(provider: str) -> dict[str, Any]:
    text = resources.files(__name__).joinpath(f"{provider}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_schema(provider: str) -> dict[str, Any]:
    """The request-body schema for ``provider`` (a fresh copy; the parsed file is cached).

    Raises ``ValueError`` naming the known providers for an unknown one.
    """
    return copy.deepcopy(_cached_schema(contract_of(provider)))


def _refused(node: object) -> bool:
    """A property schema that no value passes (``false`` or ``{"not": {}}``)."""
    return node is False or (isinstance(node, Mapping) and node.get("not") == {})


def refuses_unknown_fields(provider: str) -> bool:
    """Whether ``provider``'s endpoint refuses top-level fields its contract does not list."""
    return _cached_schema(contract_of(provider)).get("additionalProperties", True) is False


def top_level_fields(provider: str) -> frozenset[str]:
    """The top-level fields ``provider``'s contract accepts (those it names to refuse left out).

    Reads the schema file only, so it works without ``jsonschema``.
    """
    schema = _cached_schema(contract_of(provider))
    properties: Mapping[str, object] = schema.get("properties", {})
    return frozenset(name for name, node in properties.items() if not _refused(node))


@cache
def _validator(provider: str) -> Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_cached_schema(provider))


def _as_json_types(value: Any) -> Any:
    """Mappings to dicts and tuples to lists, so jsonschema sees JSON types."""
    if isinstance(value, Mapping):
        return {key: _as_json_types(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return [_as_json_types(item) for item in value]
    return value


def _describe(error: ValidationError) -> str:
    schema = error.schema
    if isinstance(schema, Mapping) and isinstance(schema.get(_MESSAGE_KEYWORD), str):
        message: str = schema[_MESSAGE_KEYWORD]
    else:
        message = error.message
    return f"{error.json_path}: {message}"


def schema_errors(provider: str, body: Mapping[str, Any]) -> list[str]:
    """Every way ``body`` breaks ``provider``'s contract, as sorted ``"<json path>: <message>"``.

    An empty list means the provider accepts the body's shape. The project's
    own rules are checked apart, by ``rule_errors``. Raises ``ValueError`` for an
    unknown provider.
    """
    validator = _validator(contract_of(provider))
    return sorted({_describe(error) for error in validator.iter_errors(_as_json_types(body))})


def validate_request(provider: str, body: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` listing every schema violation when ``body`` is invalid."""
    errors = schema_errors(provider, body)
    if errors:
        listing = "\n".join(f"  - {error}" for error in errors)
        raise ValueError(f"request body is not valid for {provider}:\n{listing}")
