"""``assert_invariants``: the project's one stream checker
(``provider_impl.invariants.check_invariants``), requiring ``Connected``
first unless told otherwise, as the unit tests use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provider_impl.invariants import check_invariants

__all__ = ["assert_invariants"]


def assert_invariants(
    events: Sequence[Any], *, complete: bool = True, connected: bool = True
) -> None:
    check_invariants(events, complete=complete, connected=connected)
