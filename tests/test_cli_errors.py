"""The command speaks in one line: every bad invocation issue 11 lists prints at
most two lines, no traceback, and exits non-zero with the documented code; a
closed pipe ends it quietly; --version, help texts, merged filters, counts."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provider_impl import __version__
from provider_impl.cli import EXIT_USAGE, _parser, main

ROOT = Path(__file__).resolve().parent.parent
CASSETTE = ROOT / "cassettes" / "openai" / "text.yaml"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _files(tmp: Path) -> dict[str, str]:
    """Bad inputs on disk: a plain file, an empty and a malformed cassette."""
    (tmp / "a-file").write_text("x")
    (tmp / "openai").mkdir()
    (tmp / "openai" / "empty.yaml").write_text("")
    (tmp / "openai" / "malformed.yaml").write_text("interactions: [1\n")
    (tmp / "openai" / "not-a-cassette.yaml").write_text("- just\n- a list\n")
    return {
        "file": str(tmp / "a-file"),
        "empty": str(tmp / "openai" / "empty.yaml"),
        "malformed": str(tmp / "openai" / "malformed.yaml"),
        "list": str(tmp / "openai" / "not-a-cassette.yaml"),
        "missing_dir": str(tmp / "no" / "such" / "folder"),
    }


# (argv with {placeholders}, the text the one line must contain)
BAD: list[tuple[list[str], str]] = [
    (["emulator", "--port", "{busy}"], "in use"),
    (["emulator", "--port", "70000"], "out of range"),
    (["emulator", "--port", "-1"], "out of range"),
    (["emulator", "--port", "eighty"], "not a port number"),
    (["emulator", "--host", "no-such-host.invalid", "--port", "0"], "cannot serve on"),
    (["emulator", "--host", "192.0.2.1", "--port", "0"], "cannot serve on"),
    (["record", "--provider", "openai", "--cassette-dir", "{file}"], "is a file"),
    (["record", "--provider", "openai", "--cassette-dir", "{file}/sub"], "is a file"),
    (
        ["record", "--provider", "openai", "--base-url", "http://127.0.0.1:{free}/v1"],
        "cannot reach http://127.0.0.1:",
    ),
    (["record", "--provider", "openai", "--base-url", "ftp://x/v1"], "not an http(s) URL"),
    (["record", "--provider", "nope"], "unknown provider 'nope'"),
    (["replay", "{empty}"], "cannot read cassette"),
    (["replay", "{malformed}"], "cannot read cassette"),
    (["replay", "{list}"], "cannot read cassette"),
    (["replay", "no/such/cassette.yaml"], "no such cassette"),
    (["conformance", "--json", "{missing_dir}/m.json"], "no folder"),
    (["conformance", "--junit", "{missing_dir}/j.xml"], "no folder"),
    (["conformance", "--cassette-dir", "/nonexistent"], "no such folder"),
    (["conformance", "--cassette-dir", "{file}"], "a file"),
    (["conformance", "--cassette-dir", "{missing_dir}/.."], "no such folder"),
    (["conformance", "--provider", "nope"], "unknown provider 'nope'"),
    (["conformance", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["conformance", "--suite", "{missing_dir}"], "no conformance suite"),
    (["drift", "--provider", "openai", "--junit", "{missing_dir}/j.xml"], "no folder"),
    (["providers", "--export", "nope"], "unknown provider 'nope'"),
    (["scan-secrets", "{missing_dir}"], "no such path"),
    (["costs", "--bogus"], "unrecognized arguments: --bogus"),
    (["costs", "--", "-k", "x"], "unrecognized arguments"),
    (["bogus"], "invalid choice: 'bogus'"),
    ([], "required: COMMAND"),
    (["record"], "required: --provider"),
    (["providers", "--dialect-file", "{missing_dir}/x.toml"], "x.toml"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_a_bad_invocation_is_one_line_and_exit_2(
    argv: list[str],
    expected: str,
    busy_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    names = {**_files(tmp_path), "busy": str(busy_port), "free": str(_free_port())}
    code = main([a.format(**names) for a in argv])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE, (out, err)
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and expected in err, err
    assert "Traceback" not in out + err
    assert out == ""


def _missing_extra_run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    # What a plain `pip install provider-impl` has: no vcrpy, PyYAML, syrupy...
    code = (
        "import sys\n"
        "for m in ('vcr', 'yaml', 'syrupy', 'jsonschema'): sys.modules[m] = None\n"
        "from provider_impl.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", str(CASSETTE)],
        ["record", "--provider", "openai"],
        ["scan-secrets", "cassettes"],
        ["conformance"],
        ["drift", "--provider", "openai"],
    ],
    ids=lambda a: a[0],
)
def test_a_missing_extra_is_named(argv: list[str]) -> None:
    proc = _missing_extra_run(argv)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "'conformance' extra" in lines[0] and "provider-impl[conformance]" in lines[0]


def test_the_offline_commands_need_no_extra() -> None:
    proc = _missing_extra_run(["providers"])
    assert proc.returncode == 0, proc.stderr
    assert "mistral" in proc.stdout


def _into_closed_pipe(argv: list[str]) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte (`| head` that has had enough)
    try:
        return subprocess.run(
            [sys.executable, "-m", "provider_impl.cli", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv",
    [["providers"], ["replay", str(CASSETTE)], ["costs"]],
    ids=lambda a: a[0],
)
def test_a_closed_pipe_ends_quietly(argv: list[str]) -> None:
    proc = _into_closed_pipe(argv)
    assert proc.stderr == ""
    assert proc.returncode == 141  # 128 + SIGPIPE, as other Unix tools


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"provider-impl {__version__}"


def test_every_subcommand_has_a_description_and_examples() -> None:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands: dict[str, argparse.ArgumentParser] = action.choices
    assert set(commands) >= {"conformance", "record", "drift", "replay", "providers"}
    for name, sub in commands.items():
        text = sub.format_help()
        description = sub.description
        assert description and len(description) > 40, name
        examples = text.split("examples:\n", 1)[1]
        assert re.search(rf"^  provider-impl {name}\b", examples, re.M), name
        assert "exit codes: 0 ok, 1 checks failed, 2 usage" in text, name


def _conformance(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provider_impl.cli", "conformance", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_repeated_filters_are_merged_and_the_counts_say_what_they_count() -> None:
    proc = _conformance(
        *("--provider", "mistral", "--provider", "mistral"),
        *("--scenario", "text", "--scenario", "tool_call", "--scenario", "text"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = next(ln for ln in proc.stdout.splitlines() if ln.startswith("scenario "))
    assert header.split() == ["scenario", "mistral"]  # one column, once
    summary = re.search(
        r"(\d+) cells passed, (\d+) failed, (\d+) n/a \((\d+) emulator cells, (\d+) real "
        r"exchanges\); (\d+) checks \(pytest tests\) behind them: (\d+) passed, (\d+) failed, "
        r"(\d+) skipped",
        proc.stdout,
    )
    assert summary is not None, proc.stdout
    cells, failed, n_a, emulated, real, checks, ok, bad, skipped = map(int, summary.groups())
    assert (emulated, failed, n_a, bad) == (2, 0, 0, 0)
    assert cells == emulated + real and real > 0  # Mistral's real exchanges come along
    assert checks == ok + skipped > cells
    # pytest's own count is the same number of tests.
    assert re.search(rf"\b{ok} passed, {skipped} skipped(, \d+ warnings?)? in ", proc.stdout)


def test_arguments_after_the_separator_go_to_pytest() -> None:
    proc = _conformance("--provider", "glm", "--scenario", "text", "--", "-k", "async", "-rN")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # -k async keeps one test per emulator cell and deselects the rest.
    assert re.search(r"\b1 passed, \d+ deselected", proc.stdout), proc.stdout
