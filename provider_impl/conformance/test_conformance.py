"""The conformance properties, each run for every provider × scenario cassette."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from provider_impl import (
    AuthenticationFailed,
    ContextLengthExceeded,
    RateLimited,
    StreamError,
    Usage,
)
from provider_impl.conformance.cases import Case
from provider_impl.dialects import get_dialect
from provider_impl.events import MessageStart, TextDelta, ThinkingDelta, ToolUseComplete
from provider_impl.harness import (
    Outcome,
    decode_recorded,
    load_exchange,
    load_exchanges,
    rechunk_splits,
    replay_scenario,
    replay_scenario_async,
    reply_of,
)
from provider_impl.invariants import check_invariants
from provider_impl.schemas import rule_errors, schema_errors
from provider_impl.schemas.replies import reply_problems
from provider_impl.turns import scenario_client

pytestmark = pytest.mark.usefixtures("applicable_case")


_REPLAYS: dict[tuple[str, str, str], Outcome] = {}


def _replayed(case: Case) -> Outcome:
    """One sync replay per case, shared by the properties below."""
    key = (case.provider, case.scenario.name, str(case.cassette))
    if key not in _REPLAYS:
        _REPLAYS[key] = replay_scenario(case.provider, case.scenario, case.cassette)
    return _REPLAYS[key]


def test_events_match_snapshot(case: Case, snapshot_amber: SnapshotAssertion) -> None:
    """The normalized events (or response, or error) are exactly the reviewed ones
    (one amber file for the suite: syrupy's end-of-run pass is quadratic in files)."""
    assert _replayed(case).to_dict() == snapshot_amber


def test_expected_outcome(case: Case) -> None:
    """The stream rules and the scenario's expectations, read from its data and the
    provider's feature flags (never from either's name)."""
    out = _replayed(case)
    sc = case.scenario
    features = get_dialect(case.provider).features
    if sc.expect_error is not None:
        assert out.exception is not None, f"expected {sc.expect_error.__name__}, got success"
        assert isinstance(out.exception, sc.expect_error), out.error
        err: dict[str, Any] = out.error or {}
        assert err["message"]
        if issubclass(sc.expect_error, StreamError):
            check_invariants(out.raw_events, complete=False)
            assert any(isinstance(e, TextDelta) for e in out.raw_events), "no text before error"
        elif sc.error_status:
            assert out.raw_events == [], "an HTTP error must come before any event"
            assert err["status_code"] is not None and err["status_code"] >= 400
        else:  # read from a 200 reply (the Claude CLI's usage-limit answer)
            assert out.raw_events == [], "an error reply must come before any event"
            assert err["status_code"] is None
        if not issubclass(sc.expect_error, AuthenticationFailed) or features.auth_error_code:
            assert err["code"], "the provider's raw error code must be kept"
        if issubclass(sc.expect_error, RateLimited) and features.retry_after:
            retry_after = getattr(out.exception, "retry_after", None)
            assert retry_after is not None and retry_after > 0
        if issubclass(sc.expect_error, ContextLengthExceeded) and features.context_numbers:
            assert err["max_tokens"] and err["requested_tokens"]
            assert err["requested_tokens"] > err["max_tokens"]
        return
    assert out.exception is None, f"unexpected error: {out.error}"
    request = sc.request_for(case.provider)
    if sc.tool_results is not None:  # two turns: a tool call, then its result sent back
        first = out.first_turn
        assert first is not None and first.tool_calls, "the first turn must call a tool"
        signed = first.tool_calls[0].thought_signature is not None
        assert signed == get_dialect(case.provider).sends_thought_signatures
    if out.response is not None:  # complete()
        resp = out.response
        if sc.expect_stop_reason is not None:
            assert resp["stop_reason"] == sc.expect_stop_reason.value
        assert resp["text"]
        for needle in sc.expect_text:
            assert needle in resp["text"]
        assert resp["usage"]["input_tokens"] and resp["usage"]["output_tokens"]
        return
    check_invariants(out.raw_events)
    events = out.raw_events
    start = next(e for e in events if isinstance(e, MessageStart))
    assert (start.id is not None) == features.message_id
    stop = next(e for e in events if e.type == "message_delta")
    if sc.expect_stop_reason is not None:
        assert stop.stop_reason is sc.expect_stop_reason
    usage = next(e for e in events if isinstance(e, Usage))
    if features.stream_usage:
        assert usage.input_tokens and usage.output_tokens, "usage must be reported"
    else:
        assert usage.input_tokens is None and usage.output_tokens is None, "usage is not streamed"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    tools = [e for e in events if isinstance(e, ToolUseComplete)]
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert len(tools) == sc.expect_tool_calls
    offered = {t.name: t.parameters for t in request.tools or ()}
    for tool in tools:
        assert tool.name in offered, f"{tool.name} was not offered"
        for key in offered[tool.name].get("required", ()):
            assert key in tool.input, f"{tool.name} lacks its required argument {key}"
    assert len({t.id for t in tools}) == len(tools), "parallel calls need distinct ids"
    if not tools:
        assert text, "a reply without tool calls must produce text"
    for needle in sc.expect_text:
        assert needle in text
    for stop_string in request.stop_sequences or ():
        assert stop_string not in text, "the reply ran past its stop sequence"
    if sc.expect_thinking:
        assert bool(thinking) == features.streams_thinking
        if features.reports_reasoning_tokens:
            assert usage.reasoning_tokens and usage.reasoning_tokens > 0
    elif thinking:
        # GLM reasons before it calls tools; nothing else thinks unasked.
        assert features.streams_thinking and tools, "unexpected thinking"


def test_async_client_gives_the_same(case: Case) -> None:
    """The async client over the same cassette yields the same events."""
    out = replay_scenario_async(case.provider, case.scenario, case.cassette)
    assert out.to_dict() == _replayed(case).to_dict()
    assert out.first_turn == _replayed(case).first_turn


def test_recorded_request_is_what_the_builder_sends(case: Case) -> None:
    """The cassette's request body equals today's payload, fits the provider's contract
    and keeps the project's own rules (derived from the dialect record)."""
    exchanges = load_exchanges(case.cassette)
    client = scenario_client(case.provider, case.scenario)
    sc = case.scenario
    request = sc.request_for(case.provider)
    built = [client.build_request(request, stream=sc.stream)]
    if sc.tool_results is not None and exchanges[0].status < 300:
        # The follow-up is what the builder makes of the first recorded reply.
        reply = reply_of(exchanges[0], case.provider)
        built.append(client.build_request(sc.followup(request, reply), stream=sc.stream))
        sent = built[1]["messages"][len(built[0]["messages"])]["tool_calls"][0]
        signature = reply.tool_calls[0].thought_signature
        if client.dialect.sends_thought_signatures:  # it goes back where it came from
            assert signature and sent["extra_content"]["google"]["thought_signature"] == signature
        else:
            assert "extra_content" not in sent
    assert [e.request_body for e in exchanges] == built
    for body in (*(e.request_body for e in exchanges), *built):
        errors = schema_errors(case.provider, body)
        if case.scenario.schema_valid:
            assert errors == [], errors
            assert rule_errors(client.dialect, body) == []
        else:
            assert errors, "this scenario's request must break the provider's contract"


def test_any_split_gives_the_same_events(case: Case) -> None:
    """The body decoded byte by byte, at single cuts and at random cuts, matches the replay."""
    exchange = load_exchange(case.cassette)
    expected = _replayed(case).to_dict()
    whole = decode_recorded(exchange, case.provider)
    assert whole.to_dict() == expected
    if not exchange.is_sse:
        return
    for i, pieces in enumerate(rechunk_splits(exchange.body, seed=zlib.crc32(case.id.encode()))):
        got = decode_recorded(exchange, case.provider, pieces)
        assert got.to_dict() == expected, f"split #{i} ({len(pieces)} pieces) differs"


def test_reply_fits_its_reply_contract(case: Case) -> None:
    """What the emulator answered has the shape real replies have (the reply
    contracts are derived from real traffic)."""
    exchange = load_exchange(case.cassette)
    if exchange.status >= 300:
        pytest.skip("an error reply: the reply contracts describe replies")
    assert reply_problems(case.provider, exchange.body, sse=exchange.is_sse) == []
