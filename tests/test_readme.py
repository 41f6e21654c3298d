"""The README's quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_quick_start_runs(capsys: pytest.CaptureFixture[str]) -> None:
    quick_start = _python_blocks()[0]
    exec(compile(quick_start, str(README), "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(
        [
            "connected",
            "message_start",
            "content_block_start",
            "text_delta",
            "content_block_stop",
            "message_delta",
            "usage",
            "done",
        ]
    )
    assert out[1] == "Hi"


def test_readme_names_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "provider-impl conformance" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    # CI runs the README's test command verbatim.
    test_command = re.search(r"```sh\n(python -m pip install -e '\.\[dev\]'.*?)\n```", text, re.S)
    assert test_command is not None
    assert test_command.group(1) in ci
