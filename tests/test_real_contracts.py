"""The request contracts against real traffic (cassettes/real, see docs/PROVENANCE.md).

A request a real provider answered with 2xx is one it accepts, so its
contract must accept it too. A 4xx whose answer says the request's *shape*
was wrong (an unknown field) must be refused by the contract as well; other
4xx (unknown model, a modality one model lacks) say nothing about shape and
are not checked here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("jsonschema")

from provider_impl.harness import RecordedExchange, load_exchange
from provider_impl.schemas import schema_errors

REAL = Path(__file__).resolve().parent.parent / "cassettes" / "real"
# Providers with a contract; the real folders also hold gateway traffic (openrouter).
CONTRACTED = ("openai", "gemini", "mistral", "glm")
# What each provider says when it refuses a field it does not know.
SHAPE_REFUSALS = (
    b"Unrecognized request argument",  # OpenAI
    b"extra_forbidden",  # Mistral (422)
    b"Cannot find field",  # Gemini
)
CASSETTES = [(p, path) for p in CONTRACTED for path in sorted((REAL / p).glob("*.yaml"))]


def _ids(case: tuple[str, Path]) -> str:
    return f"{case[0]}/{case[1].stem}"


def _shape_refusal(exchange: RecordedExchange) -> bool:
    return 400 <= exchange.status < 500 and any(s in exchange.body for s in SHAPE_REFUSALS)


def test_the_real_cassettes_cover_every_contracted_provider() -> None:
    for provider in CONTRACTED:
        accepted = [
            path
            for p, path in CASSETTES
            if p == provider and 200 <= load_exchange(path).status < 300
        ]
        assert len(accepted) >= 3, provider


@pytest.mark.parametrize("case", CASSETTES, ids=_ids)
def test_real_request_meets_its_providers_contract(case: tuple[str, Path]) -> None:
    provider, path = case
    exchange = load_exchange(path)
    errors = schema_errors(provider, exchange.request_body)
    if 200 <= exchange.status < 300:
        assert errors == [], f"{provider} accepted this request (HTTP {exchange.status})"
    elif _shape_refusal(exchange):
        assert errors, f"{provider} refused this request's shape: {exchange.body[:300]!r}"
    else:
        pytest.skip(f"HTTP {exchange.status} is not about the request's shape")


@pytest.mark.parametrize(
    ("status", "body", "shape"),
    [
        (400, b'{"error":{"message":"Unrecognized request argument supplied: foo"}}', True),
        (422, b'{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"]}]}', True),
        (400, b'{"error":{"message":"Unknown name \\"store\\": Cannot find field."}}', True),
        (404, b'{"error":{"code":"model_not_found"}}', False),
        (200, b'{"note":"extra_forbidden"}', False),
    ],
)
def test_shape_refusals_are_told_from_other_4xx(status: int, body: bytes, shape: bool) -> None:
    exchange = RecordedExchange(request_body={}, uri="", status=status, headers={}, body=body)
    assert _shape_refusal(exchange) is shape
