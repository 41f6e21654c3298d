"""``FallbackProvider``: a chain of providers behind one provider interface.

What it does (docs/FALLBACK.md):

* it moves to the next provider only on an error another provider can cure
  (``RateLimited``, ``Overloaded``, ``ConnectionFailed``, ``RequestTimeout``,
  that provider's ``AuthenticationFailed``, ``ContextLengthExceeded`` when the
  next one has a larger window), and never once a stream has delivered content;
* a circuit breaker per provider skips one that keeps failing, and one that
  said when to come back (``retry_after``) until then;
* before each switch it estimates the request's cost on the next provider
  (token estimate and ``max_tokens`` at the cost table's prices); above
  ``max_cost_ratio`` times the primary's it warns (a ``ProviderSwitched`` event
  with the ratio, a ``logging`` warning), and over ``budget`` it refuses the
  switch (``FallbackBudgetExceeded``);
* every history goes through ``hand_off`` for the provider it is sent to.

Everything that decides lives in ``FallbackPolicy`` and its ``Plan``, which do
no I/O; ``FallbackProvider``'s sync and async methods only move the calls.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from provider_impl.costs import estimate_cost
from provider_impl.dialects import ProviderCapabilities
from provider_impl.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ContextLengthExceeded,
    InvalidRequest,
    LlmError,
    Overloaded,
    RateLimited,
    RequestTimeout,
    UsageError,
)
from provider_impl.events import Connected, MessageStart, StreamEvent
from provider_impl.handoff import hand_off_request
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.types import CompletionRequest, CompletionResponse, Usage

__all__ = [
    "Attempt",
    "CircuitBreaker",
    "FallbackBudgetExceeded",
    "FallbackEvent",
    "FallbackPolicy",
    "FallbackProvider",
    "GiveUp",
    "NoProviderAvailable",
    "Plan",
    "ProviderSwitched",
    "Quote",
]

logger = logging.getLogger("provider_impl.fallback")


# -- what the caller sees ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderSwitched:
    """The fallback moved from one provider to another (yielded before the new
    provider's first event). ``cost_ratio`` is the new provider's estimated cost
    for the request over the primary's (None when either price is unknown);
    ``over_cost_ratio`` is set when it exceeds ``max_cost_ratio``."""

    from_provider: str
    to_provider: str
    reason: str
    detail: str
    cost_ratio: float | None
    estimated_cost: float | None
    primary_cost: float | None
    over_cost_ratio: bool
    type: ClassVar[str] = "provider_switched"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "from_provider": self.from_provider,
            "to_provider": self.to_provider,
            "reason": self.reason,
            "detail": self.detail,
            "cost_ratio": self.cost_ratio,
            "estimated_cost": self.estimated_cost,
            "primary_cost": self.primary_cost,
            "over_cost_ratio": self.over_cost_ratio,
        }


#: What ``FallbackProvider.stream()`` yields: a provider's events, and a
#: ``ProviderSwitched`` before the events of each provider it moved to.
FallbackEvent = StreamEvent | ProviderSwitched


class FallbackBudgetExceeded(LlmError):
    """A switch was refused: the next provider's estimated cost for the request
    is over ``budget`` (or it has no price, so it cannot be shown to fit).
    ``__cause__`` is the error that called for the switch."""

    def __init__(
        self,
        message: str,
        *,
        from_provider: str,
        to_provider: str,
        estimated_cost: float | None,
        budget: float,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.from_provider = from_provider
        self.to_provider = to_provider
        self.estimated_cost = estimated_cost
        self.budget = budget


class NoProviderAvailable(LlmError):
    """Every provider's circuit is open (or it asked to wait); nothing was sent.
    ``retry_after``: seconds until the first one may be tried again."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


# -- the circuit breaker ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Settings of the per-provider breaker.

    Closed: requests go through; ``failure_threshold`` consecutive failures open
    it. Open: the provider is skipped for ``cool_down`` seconds, or for the
    failure's ``retry_after`` when that is longer. Half-open (after that): one
    request may try it; success closes it, failure opens it again. A failure
    with ``retry_after`` keeps the provider out until then even below the
    threshold. ``InvalidRequest`` and ``ContextLengthExceeded`` say nothing of
    the provider's health and are not counted.
    """

    failure_threshold: int = 3
    cool_down: float = 30.0

    def __post_init__(self) -> None:
        n = self.failure_threshold
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UsageError(f"failure_threshold must be a positive integer, got {n!r}")
        c = self.cool_down
        if not isinstance(c, (int, float)) or isinstance(c, bool) or not c >= 0:
            raise UsageError(f"cool_down must be a non-negative number of seconds, got {c!r}")


CircuitState = Literal["closed", "open", "half_open"]


@dataclass
class _Circuit:
    failures: int = 0
    opened: bool = False
    until: float = 0.0  # skipped before this (open, or a retry_after hold)
    probing: bool = False

    def state(self, now: float) -> CircuitState:
        if not self.opened:
            return "closed"
        return "open" if now < self.until else "half_open"

    def available(self, now: float) -> bool:
        if now < self.until:
            return False
        return not (self.opened and self.probing)


def _retry_after(err: LlmError) -> float | None:
    value = getattr(err, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _counts(err: LlmError) -> bool:
    """Whether ``err`` says something about the provider's health."""
    return not isinstance(err, (InvalidRequest, ContextLengthExceeded))


def _reason(err: LlmError) -> str:
    for cls, name in (
        (RateLimited, "rate_limited"),
        (Overloaded, "overloaded"),
        (ConnectionFailed, "connection_failed"),
        (RequestTimeout, "timeout"),
        (AuthenticationFailed, "auth"),
        (ContextLengthExceeded, "context_length"),
        (NoProviderAvailable, "circuit_open"),
    ):
        if isinstance(err, cls):
            return name
    return type(err).__name__


# -- the policy ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """What the policy knows of one provider for one request, worked out without
    I/O: its context window and the request's estimated cost there (None: no
    price), or why the request cannot go to it (``refused``)."""

    name: str
    context_window: int
    estimated_cost: float | None
    refused: LlmError | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """Send the request to provider ``index``; ``switched`` is set when this moves
    away from the provider before it (or from a skipped primary)."""

    index: int
    switched: ProviderSwitched | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop and raise ``error``."""

    error: LlmError


Step = Attempt | GiveUp


class FallbackPolicy:
    """The decisions of a fallback chain, shared by sync and async pumps; no I/O.

    It holds one circuit per provider (by position) across requests, and is safe
    to share between threads. ``clock`` (monotonic seconds) is injectable.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        max_cost_ratio: float = 3.0,
        budget: float | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not names:
            raise UsageError("a fallback chain needs at least one provider")
        r = max_cost_ratio
        if not isinstance(r, (int, float)) or isinstance(r, bool) or not r > 0:
            raise UsageError(f"max_cost_ratio must be a positive number, got {r!r}")
        b = budget
        if b is not None and (not isinstance(b, (int, float)) or isinstance(b, bool) or not b >= 0):
            raise UsageError(f"budget must be a non-negative number of USD or None, got {b!r}")
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise TypeError(f"breaker must be a CircuitBreaker, got {type(breaker).__name__}")
        self.names = tuple(names)
        self.max_cost_ratio = float(r)
        self.budget = None if b is None else float(b)
        self.breaker = breaker or CircuitBreaker()
        self._clock = clock
        self._circuits = [_Circuit() for _ in self.names]
        self._lock = threading.Lock()

    def state(self, index: int) -> CircuitState:
        """The breaker state of provider ``index`` now."""
        with self._lock:
            return self._circuits[index].state(self._clock())

    def available(self, index: int) -> bool:
        """Whether provider ``index`` may be tried now."""
        with self._lock:
            return self._circuits[index].available(self._clock())

    def plan(self, quote: Callable[[int], Quote]) -> Plan:
        """The decisions for one request; ``quote(i)`` is asked lazily, at most once each."""
        return Plan(self, quote)

    # -- circuit bookkeeping (under the lock) --

    def _acquire(self, index: int, now: float) -> bool:
        circuit = self._circuits[index]
        if not circuit.available(now):
            return False
        if circuit.opened:
            circuit.probing = True  # the half-open trial
        return True

    def _success(self, index: int) -> None:
        with self._lock:
            self._circuits[index] = _Circuit()

    def _release(self, index: int) -> None:
        with self._lock:
            self._circuits[index].probing = False

    def _failure(self, index: int, err: LlmError) -> None:
        if not _counts(err):
            self._release(index)
            return
        with self._lock:
            now = self._clock()
            circuit = self._circuits[index]
            circuit.failures += 1
            circuit.probing = False
            wait = _retry_after(err)
            if circuit.opened or circuit.failures >= self.breaker.failure_threshold:
                if not circuit.opened:
                    logger.warning(
                        "fallback: circuit for %s opened after %d failures",
                        self.names[index],
                        circuit.failures,
                    )
                circuit.opened = True
                circuit.until = now + max(self.breaker.cool_down, wait or 0.0)
            elif wait is not None:
                circuit.until = max(circuit.until, now + wait)

    def _wait_hint(self, now: float) -> float | None:
        waits = [c.until - now for c in self._circuits if c.until > now]
        return min(waits) if waits else None


class Plan:
    """One request's way through the chain: ``first()``, then ``failed()`` after
    each error (giving the next step), ``succeeded()`` or ``abandoned()``."""

    def __init__(self, policy: FallbackPolicy, quote: Callable[[int], Quote]) -> None:
        self._policy = policy
        self._quote_fn = quote
        self._quotes: dict[int, Quote] = {}
        #: The switches made so far, in order.
        self.switches: list[ProviderSwitched] = []

    def quote(self, index: int) -> Quote:
        if index not in self._quotes:
            self._quotes[index] = self._quote_fn(index)
        return self._quotes[index]

    def first(self) -> Step:
        primary = self.quote(0)
        if primary.refused is not None:
            return GiveUp(primary.refused)  # the caller's request is bad: no fallback cures it
        with self._policy._lock:
            now = self._policy._clock()
            if self._policy._acquire(0, now):
                return Attempt(0)
            hint = self._policy._wait_hint(now)
        skipped = NoProviderAvailable(
            f"the circuit for {primary.name} is open", retry_after=hint, provider=primary.name
        )
        step = self._next(0, skipped, start=1)
        if isinstance(step, GiveUp) and step.error is skipped:
            names = ", ".join(self._policy.names)
            return GiveUp(
                NoProviderAvailable(
                    f"no provider available: every circuit is open or waiting ({names})",
                    retry_after=hint,
                )
            )
        return step

    def failed(self, index: int, err: LlmError, *, content_started: bool) -> Step:
        """Provider ``index`` failed with ``err``; where to go next."""
        self._policy._failure(index, err)
        if content_started or not self._cures(index, err):
            return GiveUp(err)
        return self._next(index, err, start=index + 1)

    def succeeded(self, index: int) -> None:
        self._policy._success(index)

    def abandoned(self, index: int, *, content_started: bool) -> None:
        """The caller stopped early: content received counts as a success."""
        if content_started:
            self._policy._success(index)
        else:
            self._policy._release(index)

    # -- decisions --

    def _cures(self, index: int, err: LlmError) -> bool:
        if isinstance(err, (RateLimited, Overloaded, ConnectionFailed, RequestTimeout)):
            return True
        if isinstance(err, AuthenticationFailed):
            return err.provider in (None, self._policy.names[index])
        return isinstance(err, ContextLengthExceeded)  # if a larger window follows: _fits

    def _fits(self, failed: int, err: LlmError, candidate: Quote) -> bool:
        if not isinstance(err, ContextLengthExceeded):
            return True
        limit = err.max_tokens or self.quote(failed).context_window
        if candidate.context_window <= limit:
            return False
        return err.requested_tokens is None or candidate.context_window >= err.requested_tokens

    def _next(self, failed: int, err: LlmError, *, start: int) -> Step:
        policy = self._policy
        refused_for_budget: FallbackBudgetExceeded | None = None
        for j in range(start, len(policy.names)):
            if not policy.available(j):
                continue
            q = self.quote(j)
            if q.refused is not None:
                logger.info("fallback: %s skipped: %s", q.name, q.refused)
                continue
            if not self._fits(failed, err, q):
                continue
            if policy.budget is not None and (
                q.estimated_cost is None or q.estimated_cost > policy.budget
            ):
                cost = "no price" if q.estimated_cost is None else f"${q.estimated_cost:.4f}"
                refused = FallbackBudgetExceeded(
                    f"switch from {policy.names[failed]} to {q.name} refused: estimated cost "
                    f"{cost} against a budget of ${policy.budget:.4f}",
                    from_provider=policy.names[failed],
                    to_provider=q.name,
                    estimated_cost=q.estimated_cost,
                    budget=policy.budget,
                    provider=q.name,
                )
                refused.__cause__ = err
                logger.warning("fallback: %s", refused.message)
                refused_for_budget = refused_for_budget or refused
                continue
            with policy._lock:
                if not policy._acquire(j, policy._clock()):
                    continue
            switched = self._switch(failed, j, err)
            self.switches.append(switched)
            return Attempt(j, switched)
        return GiveUp(refused_for_budget or err)

    def _switch(self, failed: int, to: int, err: LlmError) -> ProviderSwitched:
        policy = self._policy
        primary = self.quote(0).estimated_cost
        cost = self.quote(to).estimated_cost
        ratio = cost / primary if cost is not None and primary else None
        if cost == 0 and primary == 0:
            ratio = 1.0
        over = ratio is not None and ratio > policy.max_cost_ratio
        event = ProviderSwitched(
            from_provider=policy.names[failed],
            to_provider=policy.names[to],
            reason=_reason(err),
            detail=str(err),
            cost_ratio=ratio,
            estimated_cost=cost,
            primary_cost=primary,
            over_cost_ratio=over,
        )
        if over or ratio is None:
            logger.warning(
                "fallback: %s -> %s after %s; estimated cost %s is %s the primary's %s",
                event.from_provider,
                event.to_provider,
                event.reason,
                "unknown" if cost is None else f"${cost:.4f}",
                "not comparable with" if ratio is None else f"{ratio:.1f}x",
                "(no price)" if primary is None else f"${primary:.4f}",
            )
        else:
            logger.info(
                "fallback: %s -> %s after %s (cost ratio %.2f)",
                event.from_provider,
                event.to_provider,
                event.reason,
                ratio,
            )
        return event


# -- the provider ------------------------------------------------------------------


def _intersection(caps: Sequence[ProviderCapabilities]) -> ProviderCapabilities:
    return ProviderCapabilities(
        streaming=all(c.streaming for c in caps),
        tool_calling=all(c.tool_calling for c in caps),
        vision=all(c.vision for c in caps),
        extended_thinking=all(c.extended_thinking for c in caps),
        max_context_tokens=min(c.max_context_tokens for c in caps),
        max_output_tokens=min(c.max_output_tokens for c in caps),
    )


class _ContentGate:
    """Holds an attempt's ``Connected``/``MessageStart`` until its first content
    event, then lets the switches so far, the held events and the content through:
    a failed attempt leaves nothing in the stream. Shared by both stream pumps."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._sent = 0  # switch events already let through
        self._held: list[FallbackEvent] = []
        self.started = False

    def attempt(self) -> None:
        """A new provider's attempt begins."""
        self._held = []
        self.started = False

    def receive(self, event: FallbackEvent) -> list[FallbackEvent]:
        """What to yield now for ``event``."""
        if self.started:
            return [event]
        if isinstance(event, (Connected, MessageStart)):
            self._held.append(event)
            return []
        self.started = True
        return [*self.flush(), event]

    def flush(self) -> list[FallbackEvent]:
        """The switches not yet let through and the held events (a stream that
        ended without content delivers what it had)."""
        out = [*self._plan.switches[self._sent :], *self._held]
        self._sent = len(self._plan.switches)
        self._held = []
        return out


class _Run:
    """One call's way through the chain, shared by the four pumps; no I/O.

    Iterating gives the index of each provider to try, until one succeeds or the
    plan gives up (then ``error`` is what to raise). ``with run.trying(i):`` wraps
    the call to provider ``i``: leaving it normally is a success; an ``LlmError``
    is swallowed and picks the next step; anything else (cancellation, a consumer
    that stopped early) abandons the attempt and propagates.
    """

    def __init__(
        self,
        plan: Plan,
        prepared: dict[int, CompletionRequest],
        on_switch: Callable[[ProviderSwitched], None] | None,
    ) -> None:
        self._plan = plan
        #: The request as each quoted provider is sent it.
        self.prepared = prepared
        self._on_switch = on_switch
        self.gate = _ContentGate(plan)
        self._step: Step | None = None
        self._index = -1
        self._enter(plan.first())

    def _enter(self, step: Step) -> None:
        if isinstance(step, Attempt) and step.switched is not None and self._on_switch:
            self._on_switch(step.switched)
        self._step = step

    def __iter__(self) -> Iterator[int]:
        while isinstance(self._step, Attempt):
            self.gate.attempt()
            yield self._step.index

    @property
    def error(self) -> LlmError:
        if not isinstance(self._step, GiveUp):
            raise RuntimeError("the fallback run has not given up")
        return self._step.error

    def trying(self, index: int) -> _Run:
        self._index = index
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        i, started = self._index, self.gate.started
        if exc is None:
            self._plan.succeeded(i)
            self._step = None
            return False
        if isinstance(exc, LlmError):
            self._enter(self._plan.failed(i, exc, content_started=started))
            return True
        self._plan.abandoned(i, content_started=started)
        return False


class FallbackProvider:
    """Providers tried in order, behind the interface of one provider.

    ``complete``/``stream``/``acomplete``/``astream`` as on
    ``OpenAiCompatibleProvider``; ``stream`` also yields ``ProviderSwitched``
    events, and holds back ``Connected``/``MessageStart`` until the first content
    event, so a provider that fails before content leaves no trace in the stream.
    ``build_request`` and ``count_tokens`` are the primary's (``build_request_for``
    gives any provider's body); ``capabilities`` is the intersection of the
    chain's, what every provider can do. ``request.model`` and
    ``request.extra_body`` go to the primary only: the others use their own model.
    The providers' own retries happen first (set their ``max_retries`` low).
    """

    def __init__(
        self,
        providers: Sequence[OpenAiCompatibleProvider],
        *,
        max_cost_ratio: float = 3.0,
        budget: float | None = None,
        breaker: CircuitBreaker | None = None,
        on_switch: Callable[[ProviderSwitched], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        chain = tuple(providers)
        for i, p in enumerate(chain):
            if not isinstance(p, OpenAiCompatibleProvider):
                raise TypeError(
                    f"providers[{i}] must be an OpenAiCompatibleProvider, got {type(p).__name__}"
                )
        self._providers = chain
        self.policy = FallbackPolicy(
            [p.name for p in chain],
            max_cost_ratio=max_cost_ratio,
            budget=budget,
            breaker=breaker,
            clock=clock,
        )
        self._on_switch = on_switch

    @property
    def providers(self) -> tuple[OpenAiCompatibleProvider, ...]:
        return self._providers

    @property
    def name(self) -> str:
        return "fallback(" + ",".join(p.name for p in self._providers) + ")"

    @property
    def model(self) -> str:
        return self._providers[0].model

    @property
    def capabilities(self) -> ProviderCapabilities:
        return _intersection([p.capabilities for p in self._providers])

    def __repr__(self) -> str:
        return f"FallbackProvider({list(self._providers)!r})"

    # -- sans-I/O --

    def request_for(self, request: CompletionRequest, index: int) -> CompletionRequest:
        """``request`` as provider ``index`` is sent it (history handed off; past the
        primary, without the primary's model and extra_body)."""
        if not isinstance(request, CompletionRequest):
            raise TypeError(f"expected a CompletionRequest, got {type(request).__name__}")
        provider = self._providers[index]
        req = hand_off_request(request, provider.dialect)
        if index:
            req = dataclasses.replace(req, model=None, extra_body=None)
        return req

    def build_request(self, request: CompletionRequest, *, stream: bool = False) -> dict[str, Any]:
        """The body the primary is sent."""
        return self.build_request_for(request, 0, stream=stream)

    def build_request_for(
        self, request: CompletionRequest, index: int, *, stream: bool = False
    ) -> dict[str, Any]:
        provider = self._providers[index]
        return provider.build_request(self.request_for(request, index), stream=stream)

    def count_tokens(self, request: CompletionRequest) -> int:
        """The primary's estimate of the prompt's size."""
        return self._providers[0].count_tokens(self.request_for(request, 0))

    def _run(self, request: CompletionRequest) -> _Run:
        prepared: dict[int, CompletionRequest] = {}

        def quote(i: int) -> Quote:
            p = self._providers[i]
            window = p.capabilities.max_context_tokens
            try:
                req = self.request_for(request, i)
                tokens = p.count_tokens(req)
            except InvalidRequest as err:
                return Quote(p.name, window, None, refused=err)
            prepared[i] = req
            usage = Usage(input_tokens=tokens, output_tokens=req.max_tokens)
            return Quote(p.name, window, estimate_cost(usage, p.dialect, req.model or p.model))

        return _Run(self.policy.plan(quote), prepared, self._on_switch)

    # -- sync --

    def complete(self, request: CompletionRequest) -> CompletionResponse:
        run = self._run(request)
        for i in run:
            with run.trying(i):
                return self._providers[i].complete(run.prepared[i])
        raise run.error

    def stream(self, request: CompletionRequest) -> Generator[FallbackEvent, None, None]:
        """Events as they arrive; bad input for the primary raises here, before any I/O."""
        self.build_request(request, stream=True)
        return self._stream(request)

    def _stream(self, request: CompletionRequest) -> Generator[FallbackEvent, None, None]:
        run = self._run(request)
        for i in run:
            with run.trying(i):
                events = self._providers[i].stream(run.prepared[i])
                try:
                    for ev in events:
                        yield from run.gate.receive(ev)
                finally:
                    events.close()
                yield from run.gate.flush()
                return
        raise run.error

    def close(self) -> None:
        for p in self._providers:
            p.close()

    def __enter__(self) -> FallbackProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async --

    async def acomplete(self, request: CompletionRequest) -> CompletionResponse:
        run = self._run(request)
        for i in run:
            with run.trying(i):
                return await self._providers[i].acomplete(run.prepared[i])
        raise run.error

    def astream(self, request: CompletionRequest) -> AsyncGenerator[FallbackEvent, None]:
        """Async events as they arrive; bad input for the primary raises here."""
        self.build_request(request, stream=True)
        return self._astream(request)

    async def _astream(self, request: CompletionRequest) -> AsyncGenerator[FallbackEvent, None]:
        run = self._run(request)
        for i in run:
            with run.trying(i):
                events = self._providers[i].astream(run.prepared[i])
                try:
                    async for ev in events:
                        for out in run.gate.receive(ev):
                            yield out
                finally:
                    await events.aclose()
                for out in run.gate.flush():
                    yield out
                return
        raise run.error

    async def aclose(self) -> None:
        for p in self._providers:
            await p.aclose()

    async def __aenter__(self) -> FallbackProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
