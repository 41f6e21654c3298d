"""Retry and deadlines, sans-I/O: one policy for the sync and the async client.

``CallPolicy`` holds the settings; ``CallPolicy.start()`` gives a ``CallState``
for one call, which the provider's I/O loop asks, before each step, how long
that step may take (``deadline()``), and, after a failure, whether and when to
try again (``retry_delay()``). It never touches a socket or sleeps: the clock
and the jitter are injected, so every decision can be tested without I/O.

Three limits bound a call (``docs/RELIABILITY.md``):

* the **read timeout** (httpx's, per socket read) — unchanged, enforced by httpx;
* the **idle limit** (``idle_timeout``; default: the read timeout): the longest
  the server may go without producing *content*. Only events with content move
  it on; SSE comments, pings, empty frames, header bytes and the bytes of a
  body still being read do not, so a server that trickles bytes or sends
  keep-alives cannot stretch a call for ever. Its clock starts when an attempt
  starts and is paused while the caller holds an event;
* the **total deadline** (``total_timeout``; default: none): wall-clock time
  from the call's start, across retries and backoff.

Both raise ``RequestTimeout``. A retry whose wait would end past the total
deadline is not made: the caller gets the error that asked for it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from provider_impl.errors import (
    ConnectionFailed,
    LlmError,
    Overloaded,
    RateLimited,
    RequestTimeout,
    UsageError,
)

__all__ = ["CallPolicy", "CallState", "is_retryable"]

# 408 Request Timeout and 409 Conflict: the server asks for the request again.
_RETRY_STATUSES = frozenset({408, 409})


def is_retryable(err: LlmError, server_errors: bool = True) -> bool:
    """Whether ``err`` (before any event was delivered) is worth another attempt."""
    status = err.status_code
    if not server_errors and status is not None and status >= 500:
        return False  # the dialect says a 5xx is the server's own failure (one run a call)
    if isinstance(err, (RateLimited, Overloaded, ConnectionFailed)):
        return True
    if isinstance(err.__cause__, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return True  # a connection never made: the request was not sent
    return status is not None and (status in _RETRY_STATUSES or status >= 500)


def _check_limit(label: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UsageError(f"{label} must be a positive number of seconds or None, got {value!r}")
    return None if math.isinf(value) else float(value)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How one provider retries and how long a call may take.

    ``idle_timeout`` and ``total_timeout`` are seconds, or ``None`` (no limit;
    ``math.inf`` means the same).
    """

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_wait: float = 60.0
    retry_server_errors: bool = True
    idle_timeout: float | None = 60.0
    total_timeout: float | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.max_retries, int)
            or isinstance(self.max_retries, bool)
            or self.max_retries < 0
        ):
            raise UsageError(
                f"max_retries must be a non-negative integer, got {self.max_retries!r}"
            )
        for label in ("backoff_base", "backoff_max", "max_retry_wait"):
            value = getattr(self, label)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise UsageError(f"{label} must be a non-negative number, got {value!r}")
        object.__setattr__(self, "idle_timeout", _check_limit("idle_timeout", self.idle_timeout))
        object.__setattr__(self, "total_timeout", _check_limit("total_timeout", self.total_timeout))

    def start(
        self,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> CallState:
        """The state of one call, starting now."""
        return CallState(self, clock, jitter)


class CallState:
    """One call's attempts and deadlines. Not shared between calls or threads."""

    __slots__ = ("_clock", "_idle_deadline", "_jitter", "_total_deadline", "attempt", "policy")

    def __init__(
        self,
        policy: CallPolicy,
        clock: Callable[[], float],
        jitter: Callable[[float, float], float],
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._jitter = jitter
        now = clock()
        total = policy.total_timeout
        self._total_deadline = None if total is None else now + total
        self._idle_deadline: float | None = None
        self.attempt = 0  # retries made so far
        self.progress()

    def progress(self) -> None:
        """Content arrived (or an attempt begins): the idle clock starts again."""
        idle = self.policy.idle_timeout
        self._idle_deadline = None if idle is None else self._clock() + idle

    def extend(self, seconds: float) -> None:
        """The caller held an event for ``seconds``: that was not the server's idle time."""
        if self._idle_deadline is not None and seconds > 0:
            self._idle_deadline += seconds

    def deadline(self) -> float | None:
        """The clock time by which the next step must be done, or None."""
        idle, total = self._idle_deadline, self._total_deadline
        if idle is None:
            return total
        return idle if total is None else min(idle, total)

    def passed(self) -> bool:
        """Whether the nearer limit has passed (the cheap check; ``expired`` says which)."""
        deadline = self.deadline()
        return deadline is not None and self._clock() >= deadline

    def expired(self) -> str | None:
        """Which limit has passed (``"total_timeout"`` or ``"idle_timeout"``), if any."""
        now = self._clock()
        if self._total_deadline is not None and now >= self._total_deadline:
            return "total_timeout"
        if self._idle_deadline is not None and now >= self._idle_deadline:
            return "idle_timeout"
        return None

    def timeout_error(self, provider: str) -> RequestTimeout | None:
        """The ``RequestTimeout`` for a passed limit, or None while both hold."""
        which = self.expired()
        if which is None:
            return None
        if which == "total_timeout":
            what = f"the call took longer than total_timeout={self.policy.total_timeout:g} s"
        else:
            what = (
                f"no content from {provider} for idle_timeout={self.policy.idle_timeout:g} s "
                "(keep-alives, pings and partial bytes do not count)"
            )
        return RequestTimeout(f"timed out: {what}", provider=provider, code=which)

    def retry_delay(self, err: LlmError) -> float | None:
        """Seconds to wait before the next attempt after ``err``, or None to give up.

        Counts the attempt when it says yes; the caller sleeps, then calls
        ``progress()`` as the new attempt begins.
        """
        p = self.policy
        if self.attempt >= p.max_retries or not is_retryable(err, p.retry_server_errors):
            return None
        backoff = min(p.backoff_max, p.backoff_base * (2.0**self.attempt))
        delay = backoff * self._jitter(0.5, 1.0)
        retry_after = err.retry_after if isinstance(err, (RateLimited, Overloaded)) else None
        if retry_after is not None:
            if retry_after > p.max_retry_wait:
                return None
            delay = max(delay, retry_after)
        if self._total_deadline is not None and self._clock() + delay >= self._total_deadline:
            return None  # the next attempt could not finish in time
        self.attempt += 1
        return delay
