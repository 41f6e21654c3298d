"""Dialect records as TOML files, and a sixth provider added by one file alone."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provider_impl import OpenAiCompatibleProvider, dialects
from provider_impl.cli import main
from provider_impl.dialect_file import DialectFileError, dialect_from_toml, dialect_to_toml
from provider_impl.dialects import BUILTIN, DIALECTS
from provider_impl.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    """``main([... "--dialect-file", f])`` registers f's provider in this process;
    a bad "openai" record left behind would break every later emulator test."""
    saved = dict(dialects._REGISTRY)
    yield
    dialects._REGISTRY.clear()
    dialects._REGISTRY.update(saved)


@pytest.mark.parametrize("dialect", BUILTIN, ids=lambda d: d.name)
def test_every_builtin_record_round_trips_through_toml(dialect: object) -> None:
    assert dataclasses.is_dataclass(dialect)
    text = dialect_to_toml(dialect)  # type: ignore[arg-type]
    back = dialect_from_toml(text)
    assert back == dataclasses.replace(dialect, contract=dialect.contract_name)  # type: ignore[type-var, attr-defined]


def test_export_prints_the_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "--export", "mistral"]) == 0
    out = capsys.readouterr().out
    assert dialect_from_toml(out).name == "mistral"
    assert 'forbidden_params = ["max_completion_tokens", "stream_options"]' in out
    assert main(["providers", "--export", "nope"]) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err


BASE = dialect_to_toml(DIALECTS["openai"])


def test_a_file_states_only_the_capabilities_that_differ() -> None:
    # OpenAI's capability lines, all but vision and the output cap left out.
    head, _, tail = BASE.partition("[capabilities]\n")
    caps, _, rest = tail.partition("\n\n")
    assert "vision = true" in caps and "max_context_tokens = 128000" in caps
    text = head + "[capabilities]\nvision = true\nmax_output_tokens = 4096\n\n" + rest
    caps_read = dialect_from_toml(text).capabilities
    assert (caps_read.vision, caps_read.max_output_tokens) == (True, 4096)
    # The rest is what custom() assumes of an endpoint it knows nothing of.
    assumed = OpenAiCompatibleProvider.custom(
        name="x", base_url="http://127.0.0.1:1/v1", default_model="m", api_key="k"
    ).capabilities
    assert dataclasses.replace(caps_read, vision=False, max_output_tokens=16_384) == assumed
    assert (assumed.streaming, assumed.tool_calling, assumed.extended_thinking) == (
        True,
        True,
        False,
    )
    assert (assumed.max_context_tokens, assumed.vision) == (128_000, False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "colour = 'blue'\n", "unknown key(s) colour"),
        (lambda t: t.replace('name = "openai"', "name = 3"), "name: expected str, got 3"),
        (lambda t: t.replace('name = "openai"', 'name = "a/b"'), "name: 'a/b' must be"),
        (
            lambda t: t.replace("streaming = true", 'streaming = "yes"'),
            "capabilities.streaming: expected bool",
        ),
        (
            lambda t: t.replace("[error_codes]\n", "[error_codes]\n42 = 'sometimes'\n"),
            "error_codes.42: unknown error kind",
        ),
        (lambda t: t.replace('default_model = "gpt-4o"\n', ""), "default_model: missing"),
        (lambda t: t + "[[", "not valid TOML"),
    ],
)
def test_bad_files_name_what_is_wrong(edit: object, message: str) -> None:
    with pytest.raises(DialectFileError, match=r"x\.toml") as err:
        dialect_from_toml(edit(BASE), source="x.toml")  # type: ignore[operator]
    assert message in str(err.value)


def test_cli_reports_a_bad_or_missing_dialect_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["providers", "--dialect-file", str(tmp_path / "none.toml")]) == 2
    assert "cannot read dialect file" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace('wire = "openai"', 'wire = "smoke-signals"'))
    assert main(["emulator", "--port", "0", "--dialect-file", str(bad)]) == 2
    assert "wire: unknown wire format 'smoke-signals'" in capsys.readouterr().err
    assert DIALECTS["openai"].wire == "openai"  # a refused file replaces nothing


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provider_impl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_sixth_provider_is_one_record_file(tmp_path: Path) -> None:
    """Export openai, rename it, then emulate, record, snapshot and pass conformance
    without touching the package."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACME_API_KEY": "acme-test-key"}
    exported = _run("providers", "--export", "openai", env=env)
    assert exported.returncode == 0, exported.stderr
    record = (
        exported.stdout.replace('name = "openai"', 'name = "acme"')
        .replace("OPENAI_API_KEY", "ACME_API_KEY")
        .replace("https://api.openai.com/v1", "https://api.acme.example/v1")
    )
    dialect_file = tmp_path / "acme.toml"
    dialect_file.write_text(record)
    cassettes = tmp_path / "cassettes"

    emulator = subprocess.Popen(
        [
            *(sys.executable, "-m", "provider_impl.cli", "emulator", "--port", "0"),
            "--dialect-file",
            str(dialect_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert emulator.stdout is not None
        # The URL line, one line per built-in provider, then acme's.
        lines = [emulator.stdout.readline() for _ in range(len(BUILTIN) + 2)]
        served = dict(line.strip().split(": ", 1) for line in lines[1:])
        assert served["acme"].endswith("/acme/v1")
        recorded = _run(
            "record",
            "--dialect-file",
            str(dialect_file),
            "--provider",
            "acme",
            "--base-url",
            served["acme"],
            "--cassette-dir",
            str(cassettes),
            env=env,
        )
    finally:
        emulator.terminate()
        emulator.wait(timeout=15)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    written = sorted(p.stem for p in (cassettes / "acme").glob("*.yaml"))
    n = sum(s.applies_to("openai") for s in SCENARIOS.values())  # acme is a copy of openai
    assert len(written) == n == 19
    text = (cassettes / "acme" / "text.yaml").read_text()
    assert "https://api.acme.example/v1/chat/completions" in text
    assert "acme-test-key" not in text

    common = ["--dialect-file", str(dialect_file), "--cassette-dir", str(cassettes)]
    common += ["--provider", "acme"]
    update = _run("conformance", *common, "--", "--snapshot-update", env=env)
    assert "snapshots generated" in update.stdout, update.stdout
    checked = _run("conformance", *common, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The n/a cells: scenarios the copy's flags rule out (error_usage_limit: its limit is a 429).
    n_a = len(SCENARIOS) - n
    assert (
        f"{n} cells passed, 0 failed, {n_a} n/a ({n + n_a} emulator cells, 0 real exchanges)"
        in checked.stdout
    )
    # The snapshots are kept beside the cassettes they describe.
    from syrupy.extensions.amber.serializer import AmberDataSerializer

    amber = cassettes / "__snapshots__" / "test_conformance.ambr"
    names = [snapshot.name for snapshot in AmberDataSerializer.read_file(amber)]
    assert len([name for name in names if "[acme-" in name]) == n
    assert "acme" not in DIALECTS  # nothing leaked into this process
