"""Every cassette says where it came from (docs/PROVENANCE.md)."""

from __future__ import annotations

import datetime
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest

from provider_impl.emulator import Emulator
from provider_impl.harness import load_exchange
from provider_impl.recording import load_interactions, load_provenance, record_cassettes
from provider_impl.recording.record import recorded_provenance

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = sorted((ROOT / "cassettes").rglob("*.yaml"))
RECORDED_SOURCES = {"emulator", "live", "server"}


def test_there_are_emulator_and_real_cassettes() -> None:
    real = [c for c in CASSETTES if "real" in c.relative_to(ROOT / "cassettes").parts]
    assert len(real) >= 275
    assert len(CASSETTES) - len(real) >= 80
    accepted = Counter(p.parent.name for p in real if load_exchange(p).status < 300)
    for provider in ("openai", "gemini", "mistral", "glm", "openrouter"):
        assert accepted[provider] >= 3, provider


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: str(p.relative_to(ROOT / "cassettes")))
def test_every_cassette_has_a_provenance_block(path: Path) -> None:
    prov = load_provenance(path)
    parts = path.relative_to(ROOT / "cassettes").parts
    if parts[0] == "real":
        assert prov["source"] == "real-traffic"
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", prov["repo"]), prov
        assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"]), prov
        assert prov["path"] and isinstance(prov["interaction"], int)
    else:
        assert prov["source"] in RECORDED_SOURCES, prov
        datetime.date.fromisoformat(prov["recorded"])
        assert prov["tool"].startswith("provider-impl ")


def test_recording_from_the_emulator_writes_an_emulator_provenance(tmp_path: Path) -> None:
    with Emulator() as emu:
        (result,) = record_cassettes(
            "openai",
            ["text"],
            base_url=emu.base_url("openai"),
            cassette_dir=tmp_path,
            api_key="any-key-for-the-emulator",
            progress=lambda line: None,
        )
    prov = load_provenance(result.path)
    assert prov["source"] == "emulator"
    assert prov["recorded"] == datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert len(load_interactions(result.path)) == 1


def test_a_reply_without_the_emulator_header_is_live_or_another_server() -> None:
    cassette = {"interactions": [{"response": {"headers": {"content-type": ["x"]}}}]}
    assert recorded_provenance(cassette, live=True)["source"] == "live"
    assert recorded_provenance(cassette, live=False)["source"] == "server"


def test_the_emulator_identifies_itself_on_every_reply() -> None:
    with Emulator() as emu:
        ok = httpx.post(emu.base_url("openai") + "/chat/completions", json={"model": "m"})
        missing = httpx.get(emu.url + "/nowhere")
    assert ok.headers["x-provider-impl-emulator"] == "1"
    assert missing.headers["x-provider-impl-emulator"] == "1"


def test_every_emulator_cassette_is_for_a_scenario_its_provider_can_run() -> None:
    """No stale cassette: each one's scenario exists and applies to its provider."""
    from provider_impl.dialects import DIALECTS
    from provider_impl.scenarios import SCENARIOS

    stale = []
    for path in CASSETTES:
        provider = path.relative_to(ROOT / "cassettes").parts[0]
        if provider in ("real", "__snapshots__"):
            continue
        scenario = SCENARIOS.get(path.stem)
        if provider not in DIALECTS or scenario is None or not scenario.applies_to(provider):
            stale.append(str(path.relative_to(ROOT)))
    assert stale == []
