"""What the three sans-I/O objects (``SSEDecoder``, ``StreamAdapter``,
``StreamParser``) share: their one way out.

Decoded events wait in ``_pending`` until ``next_events()`` takes them; an
error that broke the input waits in ``_error`` behind them, so a caller sees
every event decoded before the break, then the break, whatever the split.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from provider_impl.errors import LlmError

__all__ = ["Outbox"]

_E = TypeVar("_E")


class Outbox(Generic[_E]):
    __slots__ = ("_error", "_pending")

    def __init__(self) -> None:
        self._pending: list[_E] = []  # decoded, not yet taken
        self._error: LlmError | None = None  # what broke the input, raised after them

    def next_events(self) -> list[_E]:
        """The events decoded and not yet taken; ``[]`` when more input is needed.
        Once they are taken, the error that broke the input (if any) is raised, on
        this call and every later one."""
        out = self._pending
        if out:
            self._pending = []
            return out
        if self._error is not None:
            raise self._error
        return []
