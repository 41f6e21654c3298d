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

from provider_impl.dialects import get_dialect
from provider_impl.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    LlmError,
    RateLimited,
    classify_error,
)
from provider_impl.events import StreamEvent
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.response import response_from_json
from provider_impl.scenarios import SCENARIO_HEADER, Scenario
from provider_impl.stream import decode_stream

__all__ = [
    "Outcome",
    "RecordedExchange",
    "decode_recorded",
    "error_to_dict",
    "load_exchange",
    "rechunk_splits",
    "replay_cassette_file",
    "replay_scenario",
    "replay_scenario_async",
]

# Any key: replay never reaches a provider, and the cassette holds none.
REPLAY_KEY = "replay-key"


@dataclass
class Outcome:
    """What one call produced, as JSON-ready data (what snapshots store)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    raw_events: list[StreamEvent] = field(default_factory=list, repr=False)
    exception: LlmError | None = field(default=None, repr=False)

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


def provider_for(provider: str, scenario: Scenario, **kw: Any) -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider(
        get_dialect(provider),
        api_key=scenario.api_key or REPLAY_KEY,
        max_retries=scenario.max_retries,
        headers={SCENARIO_HEADER: scenario.name},
        **kw,
    )


def replay_scenario(provider: str, scenario: Scenario, cassette: Path) -> Outcome:
    """Run the scenario through the sync client against the cassette only."""
    from provider_impl.recording import make_vcr

    out = Outcome()
    client = provider_for(provider, scenario)
    request = scenario.request_for(provider)
    with make_vcr("none").use_cassette(str(cassette)), client:
        try:
            if scenario.stream:
                for ev in client.stream(request):
                    out.raw_events.append(ev)
            else:
                out.response = client.complete(request).to_dict()
        except LlmError as err:
            out.exception = err
    return _finish(out)


def replay_scenario_async(provider: str, scenario: Scenario, cassette: Path) -> Outcome:
    """The same through the async client (its own event loop)."""
    from provider_impl.recording import make_vcr

    async def run() -> Outcome:
        out = Outcome()
        client = provider_for(provider, scenario)
        request = scenario.request_for(provider)
        async with client:
            try:
                if scenario.stream:
                    async for ev in client.astream(request):
                        out.raw_events.append(ev)
                else:
                    out.response = (await client.acomplete(request)).to_dict()
            except LlmError as err:
                out.exception = err
        return out

    with make_vcr("none").use_cassette(str(cassette)):
        return _finish(asyncio.run(run()))


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
    stat = Path(cassette).stat()
    return _load_exchange(str(cassette), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _load_exchange(cassette: str, mtime_ns: int, size: int) -> RecordedExchange:
    """Cached by path and file state: the suite reads each cassette several times."""
    from provider_impl.recording import load_interactions

    interactions = load_interactions(cassette)
    if not interactions:
        raise ValueError(f"{cassette} holds no interactions")
    it = interactions[-1]
    return RecordedExchange(
        request_body=it.request_body,
        uri=it.uri,
        status=it.status,
        headers={k.lower(): v for k, v in it.headers.items()},
        body=it.body,
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
                provider=provider,
                error_codes=dialect.error_codes,
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
