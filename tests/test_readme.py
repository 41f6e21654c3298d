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


def test_the_core_example_gives_the_quick_starts_events() -> None:
    """The sans-I/O example, fed the quick start's captured body in two reads."""
    blocks = _python_blocks()
    scope: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    expected = [e.type for e in scope["events"]][1:]  # type: ignore[attr-defined]  # no Connected
    core = next(b for b in blocks if "StreamParser(" in b)
    printed: list[list[str]] = []
    scope["print"] = printed.append
    exec(compile(core, str(README), "exec"), scope)
    flat = [t for batch in printed for t in batch]
    assert flat == expected
    assert len(printed) >= 2  # more than one batch: the reads were decoded as they came


def test_every_top_level_name_is_documented() -> None:
    import provider_impl

    text = README.read_text(encoding="utf-8")
    assert len(provider_impl.__all__) < 30
    for name in provider_impl.__all__:
        assert f"`{name}`" in text, f"{name} is not in the README"
        obj = getattr(provider_impl, name)
        if isinstance(obj, type) or callable(obj):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
    # The submodules the package docstring points to exist and export what it names.
    for module in ("events", "errors", "classify", "dialects", "response", "fallback", "costs"):
        assert f"provider_impl.{module}" in (provider_impl.__doc__ or "")
