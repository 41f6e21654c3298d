"""pytest plugin: the conformance battery for other projects (entry point ``pytest11``).

Installed with ``provider-impl[conformance]``; loaded by pytest on its own.
Options:

* ``--provider-cassettes DIR`` — the cassettes (``DIR/<provider>/<scenario>.yaml``)
  and their snapshots (``DIR/__snapshots__``); default ``<rootdir>/cassettes``
  for the fixtures, the shipped cassettes for ``pytest --pyargs provider_impl.conformance``;
* ``--dialect-file FILE`` — add a provider from a dialect record (repeatable);
* ``--record-mode {none,once,new_episodes,all}`` — ``none`` (default) only
  replays; ``once`` records a missing cassette; ``new_episodes`` also re-records
  one whose request is no longer what the client sends; ``all`` records afresh;
* ``--record-base-url URL`` — record from there (default: the bundled emulator);
* ``--block-network[=yes|no]`` — refuse connections to anything but loopback.
  Without the option the network is blocked while a fixture replays.

Fixtures: ``provider_cassettes`` (the folder), ``provider_scenario(provider,
scenario)`` (record as the mode says, then replay through the live client with
the network blocked; returns a :class:`provider_impl.harness.Outcome`) and
``assert_valid_event_stream(events)`` (the stream rules of
:mod:`provider_impl.invariants`). Module-level imports are pytest's and the
standard library's only: the plugin loads in every pytest run of an
environment that has the package.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from provider_impl.emulator import Emulator
    from provider_impl.events import StreamEvent
    from provider_impl.harness import Outcome
    from provider_impl.scenarios import Scenario

__all__ = ["RECORD_MODES", "NetworkBlocked", "block_network"]

# The names vcrpy, pytest-recording and ``provider-impl record`` use.
RECORD_MODES = ("none", "once", "new_episodes", "all")
# The emulator accepts any key; recording from it must not need a real one.
_EMULATOR_KEY = "emulator-key"


class NetworkBlocked(ConnectionRefusedError):
    """A connection to a non-loopback address while the network is blocked."""


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket path: not the network
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: it would go out to resolve and connect


@contextlib.contextmanager
def block_network() -> Iterator[None]:
    """Refuse every socket connection except to loopback (the emulator) for the block."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(address: Any) -> None:
        raise NetworkBlocked(
            f"network blocked by provider-impl: connection to {address!r} refused "
            "(replay must not leave the machine; pass --block-network=no to allow it)"
        )

    def connect(self: socket.socket, address: Any) -> None:
        if not _loopback(address):
            refuse(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _loopback(address):
            refuse(address)
        return real_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


# -- options --------------------------------------------------------------------


def _taken(parser: pytest.Parser, name: str) -> bool:
    """Whether another plugin (pytest-recording) already defines ``name``."""
    groups = [*getattr(parser, "_groups", ()), getattr(parser, "_anonymous", None)]
    return any(
        name in opt.names() for group in groups if group is not None for opt in group.options
    )


@pytest.hookimpl(trylast=True)
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("provider-impl", "provider-impl conformance cassettes")
    group.addoption(
        "--provider-cassettes",
        metavar="DIR",
        default=None,
        help="the cassettes (DIR/<provider>/<scenario>.yaml) and their snapshots",
    )
    group.addoption(
        "--dialect-file",
        action="append",
        default=[],
        metavar="FILE",
        help="add or override a provider from a dialect record (TOML; repeatable)",
    )
    # pytest-recording defines the next two with the same meaning: share its.
    if not _taken(parser, "--record-mode"):
        group.addoption(
            "--record-mode",
            choices=RECORD_MODES,
            default="none",
            help="none: replay only (default); once: record missing cassettes; "
            "new_episodes: also re-record stale ones; all: record everything afresh",
        )
    if not _taken(parser, "--block-network"):
        group.addoption(
            "--block-network",
            nargs="?",
            const="yes",
            default="auto",
            choices=("yes", "no", "auto"),
            help="refuse non-loopback connections in every test (yes), never (no), "
            "or while a provider-impl fixture replays (default)",
        )
    group.addoption(
        "--record-base-url",
        metavar="URL",
        default=None,
        help="record from this base URL (default: the bundled emulator)",
    )


def pytest_configure(config: pytest.Config) -> None:
    files: Sequence[str] = config.getoption("dialect_file", None) or ()
    if files:
        from provider_impl.dialect_file import load_dialect_file

        for path in files:
            load_dialect_file(path)


def _block_mode(config: pytest.Config) -> str:
    value = config.getoption("block_network", "auto")
    if value is True:  # pytest-recording's flag
        return "yes"
    if value is False:
        return "auto"
    return str(value)


def _record_mode(config: pytest.Config) -> str:
    mode = config.getoption("record_mode", "none") or "none"
    return "all" if mode == "rewrite" else str(mode)  # pytest-recording's "rewrite"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if _block_mode(item.config) == "yes":
        with block_network():
            yield
    else:
        yield


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """pytest-recording: make ``serializer="provider-impl"`` available to its cassettes."""
    from provider_impl.recording import serializer

    serializer.register(vcr)


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def provider_cassettes(pytestconfig: pytest.Config) -> Path:
    """``--provider-cassettes``, else ``<rootdir>/cassettes``."""
    given = pytestconfig.getoption("provider_cassettes")
    return Path(given) if given else pytestconfig.rootpath / "cassettes"


@pytest.fixture(scope="session")
def _provider_emulator() -> Iterator[Callable[[], Emulator]]:
    """The bundled emulator, started on first use (one per xdist worker)."""
    started: list[Emulator] = []

    def get() -> Emulator:
        if not started:
            from provider_impl.emulator import Emulator

            started.append(Emulator().start())
        return started[0]

    yield get
    for emulator in started:
        emulator.stop()


def _stale(provider: str, scenario: Scenario, cassette: Path) -> bool:
    """Whether the cassette's first request is no longer what the client would send."""
    from provider_impl.harness import load_exchanges
    from provider_impl.turns import scenario_client

    try:
        recorded = load_exchanges(cassette)[0].request_body
    except (OSError, ValueError):
        return True
    built = scenario_client(provider, scenario).build_request(
        scenario.request_for(provider), stream=scenario.stream
    )
    return bool(recorded != built)


@pytest.fixture
def provider_scenario(
    pytestconfig: pytest.Config,
    provider_cassettes: Path,
    _provider_emulator: Callable[[], Emulator],
) -> Callable[[str, str], Outcome]:
    """``provider_scenario(provider, scenario)``: the scenario's outcome replayed
    from ``<provider_cassettes>/<provider>/<scenario>.yaml``, recorded first when
    ``--record-mode`` asks for it."""
    from provider_impl.dialects import DIALECTS
    from provider_impl.harness import replay_scenario
    from provider_impl.recording import cassette_path, record_cassettes
    from provider_impl.scenarios import SCENARIOS

    mode = _record_mode(pytestconfig)
    block = _block_mode(pytestconfig) != "no"

    def run(provider: str, scenario: str) -> Outcome:
        if provider not in DIALECTS:
            raise pytest.UsageError(f"unknown provider {provider!r}; known: {', '.join(DIALECTS)}")
        if scenario not in SCENARIOS:
            raise pytest.UsageError(f"unknown scenario {scenario!r}")
        sc = SCENARIOS[scenario]
        if not sc.applies_to(provider):
            pytest.skip(f"not applicable: {scenario} for {provider}")
        path = cassette_path(provider_cassettes, provider, scenario)
        needed = {
            "none": False,
            "once": not path.is_file(),
            "new_episodes": not path.is_file() or _stale(provider, sc, path),
            "all": True,
        }[mode]
        if needed:
            base_url = pytestconfig.getoption("record_base_url")
            key = None
            if base_url is None:
                base_url, key = _provider_emulator().base_url(provider), _EMULATOR_KEY
            results = record_cassettes(
                provider,
                [scenario],
                base_url=base_url,
                cassette_dir=provider_cassettes,
                api_key=key,
                progress=lambda _line: None,
                record_mode="all",  # this fixture has decided that it must record
            )
            if not results or not results[0].ok:
                outcome = results[0].outcome if results else "nothing recorded"
                pytest.fail(f"recording {provider} × {scenario} failed: {outcome}")
        elif not path.is_file():
            pytest.fail(
                f"missing cassette {path}; record it with --record-mode=once "
                "(from the bundled emulator, or --record-base-url URL)"
            )
        with block_network() if block else contextlib.nullcontext():
            return replay_scenario(provider, sc, path)

    return run


@pytest.fixture
def assert_valid_event_stream() -> Callable[..., None]:
    """``assert_valid_event_stream(events, complete=True)``: the events obey the
    stream rules (blocks in order, one ``Usage`` after ``MessageDelta``, ``Done``
    last; with ``complete=False`` a stream cut short by an error)."""
    from provider_impl.invariants import check_invariants

    def check(events: Sequence[StreamEvent], complete: bool = True) -> None:
        check_invariants(list(events), complete=complete)  # AssertionError naming the event

    return check
