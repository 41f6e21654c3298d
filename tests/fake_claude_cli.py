"""A stand-in for the ``claude`` executable (Claude Code) that claude-max-api-proxy spawns.

What the proxy runs (``dist/subprocess/manager.js`` of claude-max-api-proxy 1.0.0)::

    claude --version                                   # once, when the proxy starts
    claude --print --output-format stream-json --verbose --include-partial-messages \\
           --model <opus|sonnet|haiku> --no-session-persistence <PROMPT> [--session-id <user>]

``PROMPT`` is the whole conversation flattened into one argument
(``dist/adapter/openai-to-cli.js``: ``<system>\\n…\\n</system>\\n`` for system
messages, user text as is, ``<previous_response>\\n…\\n</previous_response>\\n``
for assistant turns, joined with ``\\n`` and trimmed; other roles dropped).

What it writes: Claude Code's ``--output-format stream-json`` format, one JSON
object per line on stdout (as documented for Claude Code's headless mode and
typed in the proxy's ``dist/types/claude-cli.d.ts``):

* ``{"type": "system", "subtype": "init", "model": …, "session_id": …, …}``
* with ``--include-partial-messages``, the Anthropic Messages stream events
  wrapped as ``{"type": "stream_event", "event": {…}}``: ``message_start``,
  ``content_block_start``, ``content_block_delta`` (``text_delta``),
  ``content_block_stop``, ``message_delta`` (stop reason, output tokens),
  ``message_stop``;
* ``{"type": "assistant", "message": {"model": …, "content": [{"type": "text", …}], …}}``
  — the whole message once its block is complete;
* ``{"type": "result", "subtype": "success", "is_error": …, "result": <the answer text>,
  "usage": {…}, "modelUsage": {<model>: {…}}, …}`` last, then exit 0.

The proxy streams only ``content_block_delta`` texts, takes the model name from
``assistant`` and ends the stream on ``result``; a whole reply is ``result``.

The usage limit: Claude Code answers without calling the model; its result text
is ``Claude AI usage limit reached|<unix time of the reset>`` (from an
``assistant`` message of model ``<synthetic>``; no stream events).

Behaviour is chosen by directives inside the prompt (so one proxy serves every
test):

* ``[cli:crash]`` — init and three text deltas, then exit 1 without a result;
* ``[cli:crash-early]`` — exit 1 before writing anything;
* ``[cli:usage-limit=<unix time>]`` — the usage-limit answer, as Claude Code sends it;
* ``[cli:usage-limit-streamed=<unix time>]`` — the same sentence, also streamed as
  text deltas;
* ``[cli:slow=<seconds>]`` — sleep that long before each text delta;
* ``[cli:echo]`` — answer with the prompt itself (to see how it was flattened);
* otherwise a fixed greeting naming the model.

Each run appends one JSON line (argv, model, prompt size in bytes) to the file
named by ``FAKE_CLAUDE_LOG``, so tests can count CLI runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from typing import Any

VERSION = "2.0.0 (Claude Code)"
# What each alias of ``--model`` runs as (Claude Code resolves aliases to a snapshot).
MODELS = {
    "opus": "claude-opus-4-1-20250805",
    "sonnet": "claude-sonnet-4-5-20250929",
    "haiku": "claude-haiku-4-5-20251001",
}
_DIRECTIVE = re.compile(r"\[cli:([a-z-]+)(?:=([0-9.]+))?\]")


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _option(argv: list[str], name: str) -> str | None:
    if name in argv:
        i = argv.index(name)
        if i + 1 < len(argv):
            return argv[i + 1]
    return None


def _prompt(argv: list[str]) -> str:
    """The one positional argument: what follows ``--no-session-persistence``."""
    flags_with_value = {"--output-format", "--model", "--session-id"}
    i = 0
    while i < len(argv):
        if argv[i] in flags_with_value:
            i += 2
            continue
        if not argv[i].startswith("--"):
            return argv[i]
        i += 1
    return ""


def _pieces(text: str) -> list[str]:
    """The answer as the model streams it: a few characters at a time."""
    return [text[i : i + 7] for i in range(0, len(text), 7)] or [""]


def _log(record: dict[str, Any]) -> None:
    path = os.environ.get("FAKE_CLAUDE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print(VERSION)
        return 0
    alias = _option(argv, "--model") or "opus"
    model = MODELS.get(alias, alias)
    prompt = _prompt(argv)
    _log(
        {
            "argv": argv[:-1] if argv and argv[-1] == prompt else argv,
            "model": alias,
            "prompt_bytes": len(prompt.encode("utf-8")),
            "pid": os.getpid(),
        }
    )
    directives = {m.group(1): m.group(2) for m in _DIRECTIVE.finditer(prompt)}
    if "crash-early" in directives:
        sys.stderr.write("fatal: stand-in crash before any output\n")
        return 1
    session = str(uuid.uuid4())
    common = {"session_id": session, "parent_tool_use_id": None}
    _emit(
        {
            "type": "system",
            "subtype": "init",
            "cwd": os.getcwd(),
            "tools": ["Bash", "Read"],
            "mcp_servers": [],
            "model": model,
            "permissionMode": "default",
            "slash_commands": [],
            "apiKeySource": "none",
            "uuid": str(uuid.uuid4()),
            **common,
        }
    )
    limit = directives.get("usage-limit") or directives.get("usage-limit-streamed")
    if limit is not None:
        text = f"Claude AI usage limit reached|{limit}"
        if "usage-limit-streamed" in directives:
            _stream_text(text, model, common, 0.0)
        _emit(_assistant("<synthetic>", text, common))
        _emit(_result(text, model, common, 0, 0, is_error=True))
        return 0
    slow = float(directives.get("slow") or 0)
    if "echo" in directives:
        text = prompt
    else:
        text = f"Hello from the stand-in Claude CLI, running {model}."
    if "crash" in directives:
        _stream_text(text[:21], model, common, slow, finish=False)  # three deltas
        sys.stderr.write("fatal: stand-in crash mid-reply\n")
        return 1
    input_tokens = max(1, len(prompt) // 4)
    output_tokens = max(1, len(text) // 4)
    _stream_text(text, model, common, slow, output_tokens=output_tokens)
    _emit(_result(text, model, common, input_tokens, output_tokens))
    return 0


def _stream_text(
    text: str,
    model: str,
    common: dict[str, Any],
    slow: float,
    *,
    finish: bool = True,
    output_tokens: int = 1,
) -> None:
    message_id = "msg_01" + uuid.uuid4().hex[:22]
    usage = {"input_tokens": 3, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "model": model,
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    for event in events:
        _emit({"type": "stream_event", "event": event, **common})
    for piece in _pieces(text):
        if slow:
            time.sleep(slow)
        delta = {"type": "text_delta", "text": piece}
        _emit(
            {
                "type": "stream_event",
                "event": {"type": "content_block_delta", "index": 0, "delta": delta},
                **common,
            }
        )
    if not finish:
        return
    _emit(_assistant(model, text, common, message_id))
    for event in (
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ):
        _emit({"type": "stream_event", "event": event, **common})


def _assistant(
    model: str, text: str, common: dict[str, Any], message_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "assistant",
        "message": {
            "model": model,
            "id": message_id or "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
        "uuid": str(uuid.uuid4()),
        **common,
    }


def _result(
    text: str,
    model: str,
    common: dict[str, Any],
    input_tokens: int,
    output_tokens: int,
    *,
    is_error: bool = False,
) -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": "success",
        "is_error": is_error,
        "duration_ms": 12,
        "duration_api_ms": 10,
        "num_turns": 1,
        "result": text,
        "session_id": common["session_id"],
        "total_cost_usd": 0.0,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 5,
            "output_tokens": output_tokens,
        },
        "modelUsage": {
            model: {"inputTokens": input_tokens, "outputTokens": output_tokens, "costUSD": 0.0}
        },
        "permission_denials": [],
        "uuid": str(uuid.uuid4()),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
