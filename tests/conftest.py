"""Shared test set-up."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest
from claude_proxy import ClaudeProxy, ProxyUnavailable, install_proxy

from provider_impl.dialects import _REGISTRY
from provider_impl.emulator import Emulator
from provider_impl.provider import ASYNC_TRANSPORT_ENV

# tests/test_pytest_plugin.py runs throwaway projects.
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    """A test that registers a dialect (directly or through a dialect file) leaves
    the process's provider registry as it found it."""
    saved = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(saved)


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``-n``, what a test itself runs (the conformance command, in this process
    or a child; a throwaway pytest project) is not one of xdist's workers. syrupy
    takes ``PYTEST_XDIST_WORKER`` in the environment to mean it is, and then prints
    no snapshot report and leaves unused snapshots to a controller that is not there.
    """
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _async_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test parametrized with ``mode="async"`` runs the provider's own async client
    on aiohttp, with ``mode="async-h11"`` on httpx's h11 (``PROVIDER_IMPL_ASYNC_TRANSPORT``,
    read when a provider is made); any other test gets the default."""
    callspec = getattr(request.node, "callspec", None)
    mode = callspec.params.get("mode") if callspec is not None else None
    if mode == "async-h11":
        monkeypatch.setenv(ASYNC_TRANSPORT_ENV, "httpx")
    elif mode == "async":
        if importlib.util.find_spec("aiohttp") is None:
            pytest.skip("the aiohttp extra is not installed")
        monkeypatch.setenv(ASYNC_TRANSPORT_ENV, "aiohttp")


@pytest.fixture(scope="session")
def claude_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClaudeProxy]:
    """claude-max-api-proxy@1.0.0, really running, with the stand-in ``claude`` CLI.

    Installed once into a cache folder with npm; skipped (with the reason) only
    when node, npm or the package registry is out of reach.
    """
    try:
        entry = install_proxy()
        proxy = ClaudeProxy(entry, tmp_path_factory.mktemp("claude-proxy"))
    except ProxyUnavailable as err:
        if os.environ.get("PROVIDER_IMPL_REQUIRE_CLAUDE_PROXY"):  # CI: never skip silently
            pytest.fail(f"the real Claude proxy is required but unavailable: {err}")
        pytest.skip(f"the real Claude proxy is unavailable: {err}")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """One loopback emulator per test module (its counters and connections stay
    that module's)."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def emulator(emu: Emulator) -> Emulator:
    """``emu`` under the name some modules use."""
    return emu
