"""The conformance harness's checks, as plain functions.

The pytest suite in ``conformance/`` and the mutation tests call these: replay
a cassette through the live client (vcrpy, network blocked), decode its body
through the sans-I/O path in any split, and describe the outcome as JSON-ready
data for snapshots.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider_impl.classify import classify_error
from provider_impl.dialects import get_dialect
from provider_impl.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    LlmError,
    RateLimited,
)
from provider_impl.events import StreamEvent
from provider_impl.response import response_from_events, response_from_json
from provider_impl.scenarios import Scenario
from provider_impl.stream import decode_stream
from provider_impl.turns import Turns, arun_turns, run_turns, scenario_client
from provider_impl.types import CompletionResponse

__all__ = [
    "Outcome",
    "RecordedExchange",
    "decode_recorded",
    "error_to_dict",
    "load_exchange",
    "load_exchanges",
    "rechunk_splits",
    "replay_cassette_file",
    "replay_scenario",
    "replay_scenario_async",
    "reply_of",
]


@dataclass
class Outcome:
    """What one call produced, as JSON-ready data (what snapshots store)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    raw_events: list[StreamEvent] = field(default_factory=list, repr=False)
    exception: LlmError | None = field(default=None, repr=False)
    # A two-turn scenario's first reply (the outcome above is the second's).
    first_turn: CompletionResponse | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.response is None:
            out["events"] = self.events
        else:
            out["response"] = self.response
        if self.error is not None:
            out["error"] = self.error
        return out


def error_to_dict(err: LlmError) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type": type(err).__name__,
        "status_code": err.status_code,
        "code": err.code,
        "request_id": err.request_id,
        "message": err.message,
    }
    if isinstance(err, RateLimited):
        # A limit with a reset time: the time, not the seconds left (which shrink).
        d["retry_after"] = err.retry_after if err.reset_at is None else None
        if err.reset_at is not None:
            d["reset_at"] = err.reset_at
    if isinstance(err, ContextLengthExceeded):
        d["max_tokens"] = err.max_tokens
        d["requested_tokens"] = err.requested_tokens
    if isinstance(err, InvalidRequest):
        d["field"] = err.field
    return d


def _outcome(turns: Turns) -> Outcome:
    out = Outcome(
        response=turns.response.to_dict() if turns.response is not None else None,
        raw_events=turns.events,
        exception=turns.error,
        first_turn=turns.first,
    )
    return _finish(out)


def replay_scenario(provider: str, scenario: Scenario, cassette: Path) -> Outcome:
    """Run the scenario through the sync client against the cassette only."""
    from provider_impl.recording.config import make_vcr

    client = scenario_client(provider, scenario)
    with make_vcr("none").use_cassette(str(cassette)), client:
        return _outcome(run_turns(client, scenario, provider))


def replay_scenario_async(provider: str, scenario: Scenario, cassette: Path) -> Outcome:
    """The same through the async client (its own event loop)."""
    from provider_impl.recording.config import make_vcr

    async def run() -> Turns:
        client = scenario_client(provider, scenario)
        async with client:
            return await arun_turns(client, scenario, provider)

    with make_vcr("none").use_cassette(str(cassette)):
        return _outcome(asyncio.run(run()))


def _finish(out: Outcome) -> Outcome:
    out.events = [e.to_dict() for e in out.raw_events]
    if out.exception is not None:
        out.error = error_to_dict(out.exception)
    return out


@dataclass(frozen=True)
class RecordedExchange:
    """The one request/response pair of a cassette (shared from a cache: do not mutate)."""

    request_body: dict[str, Any]
    uri: str
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def is_sse(self) -> bool:
        return "text/event-stream" in self.headers.get("content-type", "")


def load_exchange(cassette: Path) -> RecordedExchange:
    """Read a cassette's (last) interaction through the project's serializer."""
    return load_exchanges(cassette)[-1]


def load_exchanges(cassette: Path) -> tuple[RecordedExchange, ...]:
    """Every interaction of a cassette, in order (a two-turn scenario records two)."""
    stat = Path(cassette).stat()
    return _load_exchanges(str(cassette), stat.st_mtime_ns, stat.st_size)


# Room for every shipped cassette (377: 275 real, 102 emulator) and then some: the
# suite walks all of them in turn again and again, and a cache smaller than that
# cycle (it was 256) misses on every read. The cassettes are 4 MB in all.
@functools.lru_cache(maxsize=1024)
def _load_exchanges(cassette: str, mtime_ns: int, size: int) -> tuple[RecordedExchange, ...]:
    """Cached by path and file state: the suite reads each cassette several times."""
    from provider_impl.recording import load_interactions

    interactions = load_interactions(cassette)
    if not interactions:
        raise ValueError(f"{cassette} holds no interactions")
    return tuple(
        RecordedExchange(
            request_body=it.request_body,
            uri=it.uri,
            status=it.status,
            headers={k.lower(): v for k, v in it.headers.items()},
            body=it.body,
        )
        for it in interactions
    )


def decode_recorded(
    exchange: RecordedExchange, provider: str, pieces: Iterable[bytes] | None = None
) -> Outcome:
    """The sans-I/O path over a recorded response, optionally split into ``pieces``."""
    dialect = get_dialect(provider)
    out = Outcome()
    try:
        if exchange.status >= 400:
            raise classify_error(
                exchange.status,
                exchange.headers,
                exchange.body,
                dialect,
            )
        if exchange.is_sse:
            for ev in decode_stream(pieces if pieces is not None else exchange.body, dialect):
                out.raw_events.append(ev)
        else:
            import json

            out.response = response_from_json(json.loads(exchange.body), dialect).to_dict()
    except LlmError as err:
        out.exception = err
    return _finish(out)


def reply_of(exchange: RecordedExchange, provider: str) -> CompletionResponse:
    """The reply a recorded 2xx exchange holds, as ``complete()`` would return it
    (a stream folded into one response)."""
    dialect = get_dialect(provider)
    if exchange.is_sse:
        return response_from_events(decode_stream(exchange.body, dialect))
    import json

    return response_from_json(json.loads(exchange.body), dialect)


def replay_cassette_file(path: Path, provider: str) -> Outcome:
    """Decode one cassette's response readably, without a scenario (``provider-impl replay``)."""
    return decode_recorded(load_exchange(path), provider)


def rechunk_splits(body: bytes, *, seed: int = 0, random_trials: int = 5) -> list[list[bytes]]:
    """Ways to cut ``body``: one byte at a time (every boundary at once), every
    boundary as a single cut for short bodies, and random cut points."""
    if len(body) < 2:
        return [[body]]
    splits: list[list[bytes]] = [[body[i : i + 1] for i in range(len(body))]]
    if len(body) <= 512:
        splits.extend([[body[:i], body[i:]] for i in range(1, len(body))])
    rng = random.Random(seed)
    for _ in range(random_trials):
        cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 40))))
        bounds: Sequence[int] = [0, *cuts, len(body)]
        splits.append([body[a:b] for a, b in itertools.pairwise(bounds)])
    return splits
