"""Generated SSE bodies, deterministic, shaped like the real captures.

Four kinds, each ``n`` JSON chunks followed by ``data: [DONE]``:

* ``text``: OpenAI chat-completion chunks (``id``, ``object``, ``created``,
  ``model``, ``system_fingerprint``, ``choices[{index, delta:{content},
  logprobs, finish_reason}]``): a role chunk, ``n - 3`` content chunks, a
  finish chunk and a ``choices: []`` usage chunk.
* ``tools``: OpenAI parallel tool calls: four calls, each a header chunk
  (``id``, ``type``, ``name``, ``arguments: ""``) then argument fragments by
  ``index``; then a ``tool_calls`` finish chunk and a usage chunk.
* ``reasoning``: GLM chunks: ``reasoning_content`` for three quarters of the
  stream, then ``content``; usage with cached and reasoning details on the
  last choice chunk.
* ``gemini``: Gemini's OpenAI-compatible chunks: no ``id``, ``usage`` on every
  chunk, ``finish_reason: "stop"`` on the last one.

Frames are produced lazily (``iter_frames``), so a 200,000-chunk stream can be
fed without ever holding the whole body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

__all__ = ["DIALECT", "KINDS", "body", "iter_frames", "iter_pieces", "pieces"]

KINDS = ("text", "tools", "reasoning", "gemini")
#: The provider (dialect) whose stream each kind imitates.
DIALECT = {"text": "openai", "tools": "openai", "reasoning": "glm", "gemini": "gemini"}

_WORDS = (
    (
        " the quick brown fox jumps over a lazy dog while streaming tokens arrive one by one"
        " café naïve Grüße 日本語 データ 🎉 résumé — “quoted” text\nand a new line, numbers 42 3.14"
        ' with "escapes" and back\\slashes, a tab\there, JSON {braces} [brackets] ok'
    )
    .strip()
    .split(" ")
)


def _word(i: int) -> str:
    w = _WORDS[(i * 7 + 3) % len(_WORDS)]
    return w if i % 5 == 0 else " " + w


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _frame(obj: object) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


_DONE = b"data: [DONE]\n\n"


def _openai(choices: list[object], **extra: object) -> dict[str, object]:
    """An OpenAI chunk: the header every chunk of one reply repeats, ``choices``, extras."""
    return {
        "id": "chatcmpl-BENCHpQ8v3tG5mX2nL7kR4sW9yZ1aC",
        "object": "chat.completion.chunk",
        "created": 1782955817,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_d0469e1700",
        "choices": choices,
        **extra,
    }


def _openai_chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return _openai([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])


def _openai_usage(prompt: int, completion: int) -> dict[str, object]:
    return _openai(
        [],
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    )


def _text(n: int) -> Iterator[bytes]:
    yield _frame(_openai_chunk({"role": "assistant", "content": "", "refusal": None}))
    for i in range(max(0, n - 3)):
        yield _frame(_openai_chunk({"content": _word(i)}))
    yield _frame(_openai_chunk({}, "stop"))
    yield _frame(_openai_usage(57, max(1, n - 3)))


_N_CALLS = 4


def _arguments(call: int, n_fragments: int) -> list[str]:
    """A JSON object's text cut into ``n_fragments`` pieces of 2-8 characters."""
    sizes = (4, 6, 3, 8, 5, 2, 7)
    words: list[str] = []
    total = 0
    i = call * 1000
    need = sum(sizes[k % len(sizes)] for k in range(n_fragments))
    while total < need:
        w = _WORDS[(i * 7 + 3) % len(_WORDS)]
        words.append(w)
        total += len(json.dumps(w, ensure_ascii=False)) + 1
        i += 1
    text = json.dumps(
        {"city": "Paris", "call": call, "words": words, "flag": True}, ensure_ascii=False
    )
    out: list[str] = []
    pos = 0
    for k in range(n_fragments - 1):
        step = sizes[k % len(sizes)]
        out.append(text[pos : pos + step])
        pos += step
    out.append(text[pos:])
    return out


def _tools(n: int) -> Iterator[bytes]:
    yield _frame(_openai_chunk({"role": "assistant", "content": None, "refusal": None}))
    body_chunks = max(_N_CALLS * 2, n - 3)
    per_call = body_chunks // _N_CALLS
    for call in range(_N_CALLS):
        count = per_call if call < _N_CALLS - 1 else body_chunks - per_call * (_N_CALLS - 1)
        header = {
            "index": call,
            "id": f"call_BENCH{call:02d}x8Yq2Lw5Zr7Tn3Kp",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
        yield _frame(_openai_chunk({"tool_calls": [header]}))
        for frag in _arguments(call, count - 1):
            yield _frame(
                _openai_chunk({"tool_calls": [{"index": call, "function": {"arguments": frag}}]})
            )
    yield _frame(_openai_chunk({}, "tool_calls"))
    yield _frame(_openai_usage(120, max(1, n - 3)))


def _glm_chunk(delta: dict[str, object], **extra: object) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0}
    if "finish_reason" in extra:
        choice["finish_reason"] = extra.pop("finish_reason")
    choice["delta"] = delta
    chunk: dict[str, object] = {
        "id": "202607010739425543ff9439144b2c",
        "created": 1782862782,
        "object": "chat.completion.chunk",
        "model": "glm-4.7",
        "choices": [choice],
    }
    chunk.update(extra)
    return chunk


def _reasoning(n: int) -> Iterator[bytes]:
    body_chunks = max(2, n - 1)
    thinking = (body_chunks * 3) // 4
    for i in range(body_chunks):
        if i < thinking:
            yield _frame(_glm_chunk({"role": "assistant", "reasoning_content": _word(i)}))
        else:
            yield _frame(_glm_chunk({"role": "assistant", "content": _word(i)}))
    usage = {
        "prompt_tokens": 13,
        "completion_tokens": body_chunks,
        "total_tokens": 13 + body_chunks,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": thinking},
    }
    yield _frame(
        _glm_chunk({"role": "assistant", "content": ""}, finish_reason="stop", usage=usage)
    )


def _gemini(n: int) -> Iterator[bytes]:
    for i in range(n):
        choice: dict[str, object] = {"delta": {"content": _word(i), "role": "assistant"}}
        if i == n - 1:
            choice["finish_reason"] = "stop"
        choice["index"] = 0
        yield _frame(
            {
                "choices": [choice],
                "created": 1740894641,
                "model": "gemini-2.5-flash",
                "object": "chat.completion.chunk",
                "usage": {"completion_tokens": i, "prompt_tokens": 25, "total_tokens": 25 + i},
            }
        )


_GENERATORS = {"text": _text, "tools": _tools, "reasoning": _reasoning, "gemini": _gemini}


def iter_frames(kind: str, n: int) -> Iterator[bytes]:
    """The frames of a ``kind`` stream of ``n`` JSON chunks, then ``[DONE]``, lazily."""
    yield from _GENERATORS[kind](n)
    yield _DONE


def body(kind: str, n: int) -> bytes:
    return b"".join(iter_frames(kind, n))


def count_chunks(data: bytes) -> int:
    """JSON chunks in a body (``[DONE]`` excluded): the per-chunk divisor."""
    return data.count(b"\ndata: {") + (1 if data.startswith(b"data: {") else 0)


def iter_pieces(frames: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup frames into reads of about ``size`` bytes, lazily, cutting frames anywhere."""
    buf = bytearray()
    for frame in frames:
        buf += frame
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
