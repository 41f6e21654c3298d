"""The conformance suite is not vacuous: damaged cassettes make it fail.

In-process, every content-bearing ``data:`` line of every shipped cassette is
deleted in turn and the decoded outcome must differ from the reviewed
snapshot. End to end, ``provider-impl conformance`` is run over a copy of the
cassettes with three hand edits (a deleted line, ``max_completion_tokens``
added to a recorded Mistral request, a changed tool-call argument) and must
fail exactly those cells.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from syrupy.data import SnapshotCollection
from syrupy.extensions.amber.serializer import AmberDataSerializer

from provider_impl.harness import RecordedExchange, decode_recorded, load_exchange, rechunk_splits
from provider_impl.schemas import schema_errors

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
SNAPSHOTS = CASSETTES / "__snapshots__" / "test_conformance.ambr"


@functools.cache
def _reviewed() -> SnapshotCollection:
    return AmberDataSerializer.read_file(SNAPSHOTS)


def _snapshot(provider: str, scenario: str) -> str:
    """The reviewed outcome, as the amber text syrupy stores."""
    found = _reviewed().get(f"test_events_match_snapshot[{provider}-{scenario}]")
    assert found is not None, f"no reviewed snapshot for {provider}-{scenario}"
    return str(found.data)


def _outcome(exchange: RecordedExchange, provider: str) -> str:
    return str(AmberDataSerializer.serialize(decode_recorded(exchange, provider).to_dict()))


def _content_bearing(frame: bytes) -> bool:
    """A frame whose loss must show: it carries text, thinking, a tool call,
    a finish reason, usage or an error (not a bare role or an empty piece)."""
    if not frame.startswith(b"data: {") and not frame.startswith(b"data: [{"):
        return False
    chunk = json.loads(frame[6:])
    if isinstance(chunk, list) or chunk.get("error"):
        return True
    if chunk.get("usage"):
        return True
    for choice in chunk.get("choices") or []:
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta") or {}
        for key in ("content", "reasoning_content", "reasoning", "refusal", "tool_calls"):
            if delta.get(key):
                return True
    return False


def _finish_only(frame: bytes) -> str | None:
    """The finish reason of a frame that carries nothing else (no usage, error or content)."""
    if not frame.startswith(b"data: {"):
        return None
    chunk = json.loads(frame[6:])
    if chunk.get("usage") or chunk.get("error"):
        return None
    choices = chunk.get("choices") or []
    finish = choices[0].get("finish_reason") if len(choices) == 1 else None
    delta = (choices[0].get("delta") or {}) if choices else {}
    if not finish or any(delta.get(k) for k in ("content", "reasoning", "tool_calls")):
        return None
    return str(finish)


def _repeated_finish(frames: list[bytes], i: int) -> bool:
    """OpenRouter sends its finish chunk twice, the second time with usage: losing
    the first changes nothing (cassettes/real/openrouter/fantasy__*streaming*)."""
    finish = _finish_only(frames[i])
    later = [f for f in frames[i + 1 :] if f.startswith(b"data: {")]
    if finish is None or not later:
        return False
    nxt = json.loads(later[0][6:])
    return any(c.get("finish_reason") == finish for c in nxt.get("choices") or [])


def _sse_cassettes() -> list[Path]:
    found = []
    for path in sorted(CASSETTES.glob("*/*.yaml")):
        if load_exchange(path).is_sse:
            found.append(path)
    return found


def test_the_shipped_cassettes_are_there() -> None:
    assert len(list(CASSETTES.glob("*/*.yaml"))) >= 70


@pytest.mark.parametrize("cassette", _sse_cassettes(), ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_deleting_any_content_line_changes_the_outcome(cassette: Path) -> None:
    provider, scenario = cassette.parent.name, cassette.stem
    exchange = load_exchange(cassette)
    expected = _snapshot(provider, scenario)
    assert _outcome(exchange, provider) == expected  # the control
    frames = exchange.body.split(b"\n\n")
    checked = 0
    for i, frame in enumerate(frames):
        if _repeated_finish(frames, i):
            continue
        lines = frame.split(b"\n")
        data = [j for j, line in enumerate(lines) if _content_bearing(line)]
        for j in data:
            damaged = b"\n\n".join(
                [*frames[:i], b"\n".join(lines[:j] + lines[j + 1 :]), *frames[i + 1 :]]
            )
            got = _outcome(dataclasses.replace(exchange, body=damaged), provider)
            assert got != expected, f"deleting frame {i} of {cassette} went unnoticed"
            checked += 1
    assert checked >= 1


def test_max_completion_tokens_in_a_mistral_request_breaks_its_schema() -> None:
    body = dict(load_exchange(CASSETTES / "mistral" / "text.yaml").request_body)
    assert schema_errors("mistral", body) == []
    body["max_completion_tokens"] = 256
    assert any("max_completion_tokens" in e for e in schema_errors("mistral", body))


def _edit(path: Path, old: str, new: str, *, after: str = "") -> None:
    text = path.read_text(encoding="utf-8")
    start = text.index(after) if after else 0
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")


def test_the_conformance_command_fails_exactly_the_damaged_cells(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    shutil.copytree(CASSETTES / "mistral", cassettes / "mistral")
    shutil.copytree(CASSETTES / "__snapshots__", cassettes / "__snapshots__")  # the reviewed ones
    # 1. A content line deleted from a streamed body.
    text = cassettes / "mistral" / "text.yaml"
    body = text.read_text(encoding="utf-8")
    line = next(ln for ln in body.splitlines() if '"content":" hello' in ln)
    text.write_text(body.replace(line + "\n", "", 1), encoding="utf-8")
    # 2. max_completion_tokens added to a recorded Mistral request.
    _edit(
        cassettes / "mistral" / "system_multi_turn.yaml",
        "      stream: true\n",
        "      stream: true\n      max_completion_tokens: 128\n",
    )
    # 3. A recorded tool call's arguments changed.
    _edit(cassettes / "mistral" / "tool_call.yaml", "Paris", "Lyon", after="  response:")

    report = tmp_path / "matrix.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "provider_impl.cli", "conformance",
            "--provider", "mistral",
            "--scenario", "text", "--scenario", "system_multi_turn",
            "--scenario", "tool_call", "--scenario", "parallel_tool_calls",
            "--cassette-dir", str(cassettes),
            "--json", str(report),
            "--junit", str(tmp_path / "junit.xml"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cells = json.loads(report.read_text())["cells"]
    status = {key: cell["status"] for key, cell in cells.items()}
    assert status == {
        "mistral/text": "fail",
        "mistral/system_multi_turn": "fail",
        "mistral/tool_call": "fail",
        "mistral/parallel_tool_calls": "pass",  # untouched: still passes
    }, proc.stdout
    failures = " ".join(cells["mistral/system_multi_turn"]["failures"])
    assert "test_recorded_request_is_what_the_builder_sends" in failures
    junit = (tmp_path / "junit.xml").read_text()
    assert "<failure" in junit and "mistral-tool_call" in junit
    assert "FAIL" in proc.stdout  # the printed matrix marks the damaged cells


# -- the harness's re-chunking -----------------------------------------------------------


def test_rechunk_splits_of_tiny_bodies() -> None:
    assert rechunk_splits(b"") == [[b""]]
    assert rechunk_splits(b"x") == [[b"x"]]
    for pieces in rechunk_splits(b"data: x\n\n", seed=3):
        assert b"".join(pieces) == b"data: x\n\n"
