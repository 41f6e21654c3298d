"""Shared test set-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provider_impl.dialects import _REGISTRY


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    """A test that registers a dialect (directly or through a dialect file) leaves
    the process's provider registry as it found it."""
    saved = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(saved)
