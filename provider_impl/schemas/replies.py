"""Reply contracts: JSON Schemas (draft 2020-12) of what each provider sends back.

For every provider there are two schemas, shipped as package data in
``replies/`` next to this file: ``<provider>.chunk.json`` for one streamed
``chat.completion.chunk`` (one SSE ``data:`` object) and
``<provider>.completion.json`` for a whole ``chat.completion`` reply. A third,
provider-independent ``error.chunk.json`` describes an in-band error frame
(``{"error": ...}``, or Gemini's ``[{"error": ...}]``).

The schemas are generated from the real exchanges under ``cassettes/real/``
by ``scripts/gen_reply_contracts.py`` (genson, then curated there): they type
every known field, require the fields every real reply has, and allow
unknown fields, so a provider adding a harmless field does not break them.
``openrouter`` stands for OpenAI-compatible gateways; it is not a client
dialect of this library.

Validation needs the optional ``jsonschema`` dependency (the ``conformance``
extra), imported only when a validation function runs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from provider_impl.schemas import CONTRACTS, contract_of
from provider_impl.sse import parse_sse

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "REPLY_CONTRACTS",
    "REPLY_KINDS",
    "ReplyKind",
    "load_reply_schema",
    "reply_errors",
    "reply_objects",
    "reply_problems",
]

#: Providers with reply contracts: every shipped contract has them.
REPLY_CONTRACTS: tuple[str, ...] = CONTRACTS
ReplyKind = Literal["chunk", "completion", "error"]
REPLY_KINDS: tuple[ReplyKind, ...] = ("chunk", "completion", "error")


def _file_name(provider: str, kind: str) -> str:
    if kind not in REPLY_KINDS:
        known = ", ".join(REPLY_KINDS)
        raise ValueError(f"unknown reply kind {kind!r}; known kinds: {known}")
    # A provider follows its record's contract (a renamed copy keeps its original's).
    provider = contract_of(provider)
    # In-band error frames have one shape family for every provider.
    return "error.chunk.json" if kind == "error" else f"{provider}.{kind}.json"


@cache
def _cached(name: str) -> dict[str, Any]:
    path = resources.files(__package__ or "provider_impl.schemas") / "replies" / name
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def load_reply_schema(provider: str, kind: ReplyKind = "chunk") -> dict[str, Any]:
    """The reply schema of ``provider`` for ``kind`` (a fresh copy of the cached file).

    Raises ``ValueError`` naming the known providers or kinds for an unknown one.
    """
    return copy.deepcopy(_cached(_file_name(provider, kind)))


@cache
def _validator(name: str) -> Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_cached(name))


def reply_errors(provider: str, obj: Any, kind: ReplyKind = "chunk") -> list[str]:
    """Every way ``obj`` breaks ``provider``'s reply contract, as sorted
    ``"<json path>: <message>"`` strings; an empty list means it fits.

    ``kind`` is ``"chunk"`` (one streamed object), ``"completion"`` (a whole
    reply) or ``"error"`` (an in-band error frame).
    """
    validator = _validator(_file_name(provider, kind))
    return sorted({f"{e.json_path}: {e.message}" for e in validator.iter_errors(obj)})


def _is_error_frame(obj: Any) -> bool:
    if isinstance(obj, list):
        return bool(obj) and all(isinstance(item, dict) and "error" in item for item in obj)
    return isinstance(obj, dict) and "error" in obj


def reply_objects(body: bytes, *, sse: bool) -> Iterator[tuple[ReplyKind, Any]]:
    """The JSON objects of one recorded reply body, each with the kind that fits it.

    A stream gives each ``data:`` payload that is JSON as ``"chunk"`` (or
    ``"error"`` for an in-band error frame); ``[DONE]`` is skipped. A non-stream
    body is one ``"completion"``. Raises ``ValueError`` for a payload that is
    not JSON.
    """
    if not sse:
        yield "completion", json.loads(body)
        return
    for event in parse_sse(body):
        data = event.data.strip()
        if not data or data == "[DONE]":
            continue
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise ValueError(f"SSE data is not JSON: {data[:80]!r}") from exc
        yield ("error" if _is_error_frame(obj) else "chunk"), obj


def reply_problems(provider: str, body: bytes, *, sse: bool) -> list[str]:
    """Every way a recorded reply body breaks ``provider``'s reply contracts, each
    as ``"<kind> #<n>: <json path>: <message>"``; an empty list means it fits.
    A body with no JSON object in it is a problem too."""
    objects = list(reply_objects(body, sse=sse))
    if not objects:
        return ["the reply holds no JSON object"]
    return [
        f"{kind} #{i}: {error}"
        for i, (kind, obj) in enumerate(objects)
        for error in reply_errors(provider, obj, kind)
    ]
