"""The second matrix: real exchanges (``cassettes/real/<provider>/``, docs/PROVENANCE.md).

The emulator matrix shows the client agrees with our beliefs; these show the
beliefs hold against what the providers really sent and accepted. Each real
exchange must decode under the stream rules, read the same as an independent
plain reading, give the same events in any split, match its reviewed
snapshot, and its request must fit the provider's contract when the provider
accepted it, and every chunk and whole reply must fit the reply contract.
"""

from __future__ import annotations

import zlib

import pytest
from syrupy.assertion import SnapshotAssertion

from provider_impl.conformance.cases import RealCase
from provider_impl.conformance.independent import read_reply
from provider_impl.dialects import DIALECTS
from provider_impl.errors import LlmError
from provider_impl.harness import (
    Outcome,
    RecordedExchange,
    decode_recorded,
    load_exchange,
    rechunk_splits,
)
from provider_impl.invariants import check_invariants
from provider_impl.response import decode_response, response_from_events
from provider_impl.schemas import schema_errors
from provider_impl.schemas.replies import reply_problems

# What each provider says when it refuses a field it does not know: a 4xx with
# one of these says the request's *shape* was wrong, so the contract must refuse
# it too. Other 4xx (unknown model, a modality one model lacks) say nothing of shape.
SHAPE_REFUSALS = (
    b"Unrecognized request argument",  # OpenAI
    b"extra_forbidden",  # Mistral (422)
    b"Cannot find field",  # Gemini
)
# Byte-at-a-time re-decoding costs one parser call per byte; above this size the
# random cuts (and every cut of the emulator cassettes) cover the boundaries.
BYTEWISE_LIMIT = 8 * 1024

_DECODED: dict[str, tuple[RecordedExchange, Outcome]] = {}


def _decoded(case: RealCase) -> tuple[RecordedExchange, Outcome]:
    if case.provider not in DIALECTS:
        pytest.fail(
            f"{case.cassette}: no provider named {case.provider!r} (its folder); "
            f"known: {', '.join(DIALECTS)}"
        )
    key = str(case.cassette)
    if key not in _DECODED:
        exchange = load_exchange(case.cassette)
        _DECODED[key] = (exchange, decode_recorded(exchange, case.provider))
    return _DECODED[key]


def _shape_refusal(body: bytes) -> bool:
    return any(s in body for s in SHAPE_REFUSALS)


def _ok(exchange: RecordedExchange) -> bool:
    return 200 <= exchange.status < 300


def test_real_reply_decodes_under_the_stream_rules(real_case: RealCase) -> None:
    exchange, out = _decoded(real_case)
    if not _ok(exchange):
        assert isinstance(out.exception, LlmError), "an HTTP error must become a typed LlmError"
        assert out.exception.status_code == exchange.status
        assert out.raw_events == []
        return
    if exchange.is_sse:
        # An in-band error ends a stream without Done; the events before it still obey.
        check_invariants(out.raw_events, complete=out.exception is None)
    elif out.exception is None:
        assert out.response is not None


def test_real_reply_reads_like_an_independent_reading(real_case: RealCase) -> None:
    exchange, out = _decoded(real_case)
    if not _ok(exchange):
        pytest.skip("an error reply: its typed error is checked above")
    try:
        plain = read_reply(exchange.body, exchange.is_sse)
    except ValueError:  # an error object inside a 2xx reply
        assert isinstance(out.exception, LlmError), "the library must raise on it too"
        return
    assert out.exception is None, out.error
    if exchange.is_sse:
        got = response_from_events(out.raw_events)
    else:
        got = decode_response(exchange.body, real_case.provider)
    assert got.text == plain.text
    assert (got.thinking or "") == plain.thinking
    assert [(c.name, dict(c.arguments)) for c in got.tool_calls] == [
        (name, args) for _, name, args in plain.tool_calls
    ]
    usage = got.usage
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.reasoning_tokens,
    ) == (plain.input_tokens, plain.output_tokens, plain.cache_read_tokens, plain.reasoning_tokens)
    assert got.raw_finish_reason == plain.finish_reason


def test_real_reply_gives_the_same_events_in_any_split(real_case: RealCase) -> None:
    exchange, out = _decoded(real_case)
    if not exchange.is_sse:
        pytest.skip("a whole JSON reply has no stream to split")
    expected = out.to_dict()
    splits = rechunk_splits(exchange.body, seed=zlib.crc32(real_case.id.encode()))
    if len(exchange.body) > BYTEWISE_LIMIT:
        splits = splits[1:]  # the first split is one byte at a time
    for i, pieces in enumerate(splits):
        got = decode_recorded(exchange, real_case.provider, pieces)
        assert got.to_dict() == expected, f"split #{i} ({len(pieces)} pieces) differs"


def test_real_reply_matches_snapshot(
    real_case: RealCase, snapshot_amber: SnapshotAssertion
) -> None:
    """The normalized events (or response, or error) are exactly the reviewed ones.

    All in one snapshot file (syrupy's amber format): one file per exchange would
    make syrupy's end-of-run bookkeeping quadratic in the number of files.
    """
    _, out = _decoded(real_case)
    assert out.to_dict() == snapshot_amber


def test_real_reply_fits_its_reply_contract(real_case: RealCase) -> None:
    exchange, _ = _decoded(real_case)
    if not _ok(exchange):
        pytest.skip("an error reply: the reply contracts describe replies")
    assert reply_problems(real_case.provider, exchange.body, sse=exchange.is_sse) == []


def test_real_request_meets_its_providers_contract(real_case: RealCase) -> None:
    exchange, _ = _decoded(real_case)
    try:
        errors = schema_errors(real_case.provider, exchange.request_body)
    except ValueError:
        pytest.skip(f"{real_case.provider} has no request contract")
    if _ok(exchange):
        assert errors == [], f"{real_case.provider} accepted this request (HTTP {exchange.status})"
    elif _shape_refusal(exchange.body):
        assert errors, f"{real_case.provider} refused this request's shape: {exchange.body[:300]!r}"


@pytest.mark.parametrize(
    ("status", "body", "shape"),
    [
        (400, b'{"error":{"message":"Unrecognized request argument supplied: foo"}}', True),
        (422, b'{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"]}]}', True),
        (400, b'{"error":{"message":"Unknown name \\"store\\": Cannot find field."}}', True),
        (404, b'{"error":{"code":"model_not_found"}}', False),
    ],
)
def test_shape_refusals_are_told_from_other_4xx(status: int, body: bytes, shape: bool) -> None:
    assert _shape_refusal(body) is shape
