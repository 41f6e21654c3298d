"""Parametrizes the suite over provider × scenario and reports a matrix.

Options: ``--cassette-dir`` (default: the project's ``cassettes/``),
``--provider``/``--scenario`` (repeatable filters), ``--matrix-json FILE``
(used by ``provider-impl conformance``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provider_impl.scenarios import SCENARIOS, Scenario, providers

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    provider: str
    scenario: Scenario
    cassette: Path

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.scenario.name}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--cassette-dir", default=str(ROOT / "cassettes"))
    group.addoption("--provider", action="append", default=[])
    group.addoption("--scenario", action="append", default=[])
    group.addoption("--matrix-json", default=None)
    group.addoption(
        "--dialect-file",
        action="append",
        default=[],
        help="add a provider from a dialect record (TOML; repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from provider_impl.dialect_file import load_dialect_file

    for path in config.getoption("--dialect-file"):
        load_dialect_file(path)


def _cases(config: pytest.Config) -> list[Case]:
    cassette_dir = Path(config.getoption("--cassette-dir"))
    chosen = config.getoption("--provider") or list(providers())
    scenarios = config.getoption("--scenario") or list(SCENARIOS)
    return [
        Case(p, SCENARIOS[s], cassette_dir / p / f"{s}.yaml") for s in scenarios for p in chosen
    ]


@dataclass(frozen=True)
class RealCase:
    """One real exchange (``<cassette-dir>/real/<provider>/<name>.yaml``)."""

    provider: str
    cassette: Path

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.cassette.stem}"

    @property
    def key(self) -> str:
        return f"real:{self.provider}/{self.cassette.stem}"


def _real_cases(config: pytest.Config) -> list[RealCase]:
    real = Path(config.getoption("--cassette-dir")) / "real"
    chosen = config.getoption("--provider")
    if config.getoption("--scenario") and not chosen:
        return []  # a scenario filter selects emulator cassettes only
    return [
        RealCase(path.parent.name, path)
        for path in sorted(real.glob("*/*.yaml"))
        if not chosen or path.parent.name in chosen
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = _cases(metafunc.config)
        metafunc.parametrize("case", cases, ids=[c.id for c in cases])
    if "real_case" in metafunc.fixturenames:
        real = _real_cases(metafunc.config)
        metafunc.parametrize("real_case", real, ids=[c.id for c in real])


@pytest.fixture
def applicable_case(case: Case) -> Case:
    if not case.scenario.applies_to(case.provider):
        pytest.skip(f"not applicable: {case.scenario.name} for {case.provider}")
    if not case.cassette.is_file():
        pytest.fail(f"missing cassette {case.cassette}; record it with provider-impl record")
    return case


# -- the provider × scenario matrix ------------------------------------------

_cells: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    key = getattr(report, "_case_key", None)
    if key is None:
        return
    cell = _cells.setdefault(key, {"status": "pass", "failures": []})
    if report.failed:
        cell["status"] = "fail"
        cell["failures"].append(report.nodeid)
    elif report.skipped and cell["status"] == "pass" and "not applicable" in str(report.longrepr):
        cell["status"] = "n/a"
    # (A real exchange's cell stays "pass" when one property does not apply to it.)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "case" in callspec.params:
        case = callspec.params["case"]
        report._case_key = f"{case.provider}/{case.scenario.name}"
    elif callspec is not None and "real_case" in callspec.params:
        report._case_key = callspec.params["real_case"].key


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--matrix-json")
    if path:
        Path(path).write_text(json.dumps({"cells": _cells}, indent=2))
