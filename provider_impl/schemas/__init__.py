"""JSON Schemas (draft 2020-12) of each provider's chat-completions request body.

The schemas ship as package data (``<provider>.json`` next to this file) and
record what each provider's endpoint accepts: its known top-level fields and
their types, message and tool shapes, and the dialect rules that differ
between providers (Mistral forbids ``stream_options`` and
``max_completion_tokens``; OpenAI never takes ``max_tokens`` together with
``max_completion_tokens`` and, by this project's rule, a streaming request
must ask for usage; the Claude subscription proxy ignores unknown fields).

Validation needs the optional ``jsonschema`` dependency (the ``conformance``
extra). It is imported only when a validation function runs, so the core
library imports without it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["PROVIDERS", "load_schema", "schema_errors", "validate_request"]

#: Providers with a request-body schema, in the order DESIGN.md §4 lists them.
PROVIDERS: tuple[str, ...] = (
    "openai",
    "gemini",
    "mistral",
    "glm",
    "claude_subscription",
    "openrouter",
)

# A schema node may carry this (non-validating) keyword to replace the
# validator's generic message for the single check that node makes.
_MESSAGE_KEYWORD = "errorMessage"


def _check_provider(provider: str) -> str:
    """The contract ``provider`` follows: its dialect record's ``contract_name``."""
    from provider_impl.dialects import DIALECTS

    dialect = DIALECTS.get(provider)
    contract = dialect.contract_name if dialect is not None else provider
    if contract not in PROVIDERS:
        known = ", ".join(PROVIDERS)
        raise ValueError(f"no request schema for provider {provider!r}; known providers: {known}")
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
    return copy.deepcopy(_cached_schema(_check_provider(provider)))


@cache
def _validator(provider: str) -> Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_cached_schema(provider))


def _plain(value: Any) -> Any:
    """Mappings to dicts and tuples to lists, so jsonschema sees JSON types."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return [_plain(item) for item in value]
    return value


def _describe(error: ValidationError) -> str:
    schema = error.schema
    if isinstance(schema, Mapping) and isinstance(schema.get(_MESSAGE_KEYWORD), str):
        message: str = schema[_MESSAGE_KEYWORD]
    else:
        message = error.message
    return f"{error.json_path}: {message}"


def schema_errors(provider: str, body: Mapping[str, Any]) -> list[str]:
    """Every way ``body`` breaks ``provider``'s schema, as sorted ``"<json path>: <message>"``.

    An empty list means the body is valid. Raises ``ValueError`` for an
    unknown provider.
    """
    validator = _validator(_check_provider(provider))
    return sorted({_describe(error) for error in validator.iter_errors(_plain(body))})


def validate_request(provider: str, body: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` listing every schema violation when ``body`` is invalid."""
    errors = schema_errors(provider, body)
    if errors:
        listing = "\n".join(f"  - {error}" for error in errors)
        raise ValueError(f"request body is not valid for {provider}:\n{listing}")
