"""The suite's parameters: one ``Case`` per provider × scenario cassette, one
``RealCase`` per real exchange, chosen from the pytest options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from provider_impl.conformance import shipped_cassettes
from provider_impl.scenarios import SCENARIOS, Scenario, providers

__all__ = ["Case", "RealCase", "cases", "cassette_dir", "real_cases"]


@dataclass(frozen=True)
class _CassetteCase:
    """One cassette of one provider; ``label`` names it within the provider."""

    provider: str
    cassette: Path
    _KEY_PREFIX: ClassVar[str] = ""

    @property
    def label(self) -> str:
        return self.cassette.stem

    @property
    def id(self) -> str:
        """The pytest id: ``<provider>-<label>``."""
        return f"{self.provider}-{self.label}"

    @property
    def key(self) -> str:
        """The cell's name in the matrix and the snapshots: ``[real:]<provider>/<label>``."""
        return f"{self._KEY_PREFIX}{self.provider}/{self.label}"


@dataclass(frozen=True)
class Case(_CassetteCase):
    """One emulator cassette: ``<cassette-dir>/<provider>/<scenario>.yaml``."""

    scenario: Scenario

    @property
    def label(self) -> str:
        return self.scenario.name


@dataclass(frozen=True)
class RealCase(_CassetteCase):
    """One real exchange (``<cassette-dir>/real/<provider>/<name>.yaml``)."""

    _KEY_PREFIX: ClassVar[str] = "real:"


def cassette_dir(config: pytest.Config) -> Path:
    """``--provider-cassettes`` (the pytest plugin's option), else the shipped cassettes."""
    given = config.getoption("provider_cassettes", None)
    return Path(given) if given else shipped_cassettes()


def chosen_providers(config: pytest.Config) -> list[str]:
    """``--provider`` filters, else every known provider with a folder of cassettes."""
    chosen: list[str] = list(dict.fromkeys(config.getoption("--provider")))
    if chosen:
        return chosen
    folder = cassette_dir(config)
    return [p for p in providers() if (folder / p).is_dir()]


def cases(config: pytest.Config) -> list[Case]:
    folder = cassette_dir(config)
    scenarios = list(dict.fromkeys(config.getoption("--scenario"))) or list(SCENARIOS)
    return [
        Case(p, folder / p / f"{s}.yaml", SCENARIOS[s])
        for s in scenarios
        for p in chosen_providers(config)
    ]


def real_cases(config: pytest.Config) -> list[RealCase]:
    real = cassette_dir(config) / "real"
    chosen = set(config.getoption("--provider"))
    if config.getoption("--scenario") and not chosen:
        return []  # a scenario filter selects emulator cassettes only
    return [
        RealCase(path.parent.name, path)
        for path in sorted(real.glob("*/*.yaml"))
        if not chosen or path.parent.name in chosen
    ]
