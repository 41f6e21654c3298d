"""The provider-impl command's offline subcommands."""

from __future__ import annotations

from pathlib import Path

import pytest

from provider_impl.cli import main
from provider_impl.costs import COST_TABLE
from provider_impl.dialects import DIALECTS


def test_providers_lists_every_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    for d in DIALECTS.values():
        assert d.name in out and d.base_url in out
    assert "1,000,000" in out and "max_completion_tokens" in out


def test_costs_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["costs"]) == 0
    out = capsys.readouterr().out
    for key in COST_TABLE:
        assert key in out


def test_unknown_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--provider", "nope"]) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err
    assert main(["record", "--provider", "nope"]) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err


def test_replay_of_a_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "no/such/cassette.yaml"]) == 2
    assert "no such cassette" in capsys.readouterr().err


def test_scan_secrets_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.yaml").write_text(
        "authorization: [REDACTED]\nid: 7b9ca0036a7148d9b31648d5292abe34\n"
    )
    assert main(["scan-secrets", str(clean)]) == 0
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    key = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zB9dF1hJ"
    (leaky / "b.yaml").write_text(f"headers:\n  authorization: [Bearer {key}]\n")
    assert main(["scan-secrets", str(clean), str(leaky)]) == 1
    out = capsys.readouterr()
    assert "b.yaml" in out.out and key not in out.out + out.err  # reported, masked
    assert main(["scan-secrets", str(tmp_path / "missing")]) == 2


def test_the_shipped_cassettes_scan_clean() -> None:
    assert main(["scan-secrets", str(Path(__file__).resolve().parent.parent / "cassettes")]) == 0
