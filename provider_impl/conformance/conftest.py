"""Parametrizes the suite over provider × scenario and reports a matrix.

Options: ``--provider-cassettes DIR`` and ``--dialect-file FILE`` (from the
pytest plugin, ``provider_impl.pytest_plugin``), ``--provider``/``--scenario``
(repeatable filters), ``--matrix-json FILE`` (used by ``provider-impl
conformance``). Snapshots are read from, and written to, ``DIR/__snapshots__``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation

from provider_impl.conformance import snapshot_dir
from provider_impl.conformance.cases import Case, RealCase, cases, cassette_dir, real_cases

# The options above come from the plugin; registered here too so that the suite
# runs where the plugin's entry point is not installed (a source checkout).
pytest_plugins = ["provider_impl.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--provider", action="append", default=[], help="limit to a provider")
    group.addoption("--scenario", action="append", default=[], help="limit to a scenario")
    group.addoption("--matrix-json", default=None, help="write the matrix to this file")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        chosen = cases(metafunc.config)
        metafunc.parametrize("case", chosen, ids=[c.id for c in chosen])
    if "real_case" in metafunc.fixturenames:
        real = real_cases(metafunc.config)
        metafunc.parametrize("real_case", real, ids=[c.id for c in real])


@pytest.fixture
def applicable_case(case: Case) -> Case:
    if not case.scenario.applies_to(case.provider):
        pytest.skip(f"not applicable: {case.scenario.name} for {case.provider}")
    if not case.cassette.is_file():
        pytest.fail(f"missing cassette {case.cassette}; record it with provider-impl record")
    return case


# -- snapshots beside the cassettes --------------------------------------------


@pytest.fixture(scope="session")
def _snapshot_root(pytestconfig: pytest.Config) -> Path:
    return snapshot_dir(cassette_dir(pytestconfig)).resolve()


class _AmberBesideCassettes(AmberSnapshotExtension):
    """Amber snapshot files under ``root`` (the cassettes' ``__snapshots__``)."""

    root: Path

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(cls.root)


@functools.cache
def _beside(root: Path) -> type[AmberSnapshotExtension]:
    # One class per run, not per test: syrupy keys its bookkeeping by the
    # extension class, and a fresh class per test made its end-of-run pass
    # over every snapshot location quadratic.
    return type("AmberBesideCassettes", (_AmberBesideCassettes,), {"root": root})


@pytest.fixture
def snapshot_amber(snapshot: SnapshotAssertion, _snapshot_root: Path) -> SnapshotAssertion:
    """All of a test file's snapshots in one amber file, ``DIR/__snapshots__/<file>.ambr``
    (one file, not one per snapshot: syrupy's end-of-run pass is quadratic in files)."""
    return snapshot.use_extension(_beside(_snapshot_root))


# -- the provider × scenario matrix ------------------------------------------


class _Matrix:
    """Each cell's status, from the test reports (on the controller under xdist)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.cells: dict[str, dict[str, Any]] = {}
        # Every test once, cell or not: passed, failed or skipped.
        self.checks = {"passed": 0, "failed": 0, "skipped": 0}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.checks[report.outcome] += 1
        elif report.when == "teardown" and report.failed:
            self.checks["failed"] += 1
        key = getattr(report, "_case_key", None)
        if key is None:
            return
        cell = self.cells.setdefault(key, {"status": "pass", "failures": []})
        if report.failed:
            cell["status"] = "fail"
            cell["failures"].append(report.nodeid)
        elif (
            report.skipped and cell["status"] == "pass" and "not applicable" in str(report.longrepr)
        ):
            cell["status"] = "n/a"
        # (A real exchange's cell stays "pass" when one property does not apply to it.)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.path and not hasattr(session.config, "workerinput"):  # xdist's workers: no
            Path(self.path).write_text(
                json.dumps({"cells": self.cells, "checks": self.checks}, indent=2)
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(
        _Matrix(config.getoption("--matrix-json")), "provider-impl-matrix"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return
    case = callspec.params.get("case", callspec.params.get("real_case"))
    if isinstance(case, Case | RealCase):
        report._case_key = case.key
