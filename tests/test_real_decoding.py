"""The decoder against real replies (cassettes/real/, provenance in each file) and
small fixtures written from the facts they show."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from provider_impl import (
    CompletionResponse,
    DeserializationError,
    InvalidRequest,
    Overloaded,
    decode_response,
    decode_stream,
)
from provider_impl.classify import classify_error
from provider_impl.conformance.independent import read_reply
from provider_impl.dialects import get_dialect
from provider_impl.harness import RecordedExchange, load_exchange
from provider_impl.response import response_from_events

ROOT = Path(__file__).resolve().parent.parent
REAL = sorted((ROOT / "cassettes" / "real").glob("*/*.yaml"))
# openrouter.ai is a gateway speaking OpenAI's dialect.
DIALECT_OF_FOLDER = {"openrouter": "openai"}


def _dialect(path: Path) -> str:
    folder = path.parent.name
    return DIALECT_OF_FOLDER.get(folder, folder)


def _decode(exchange: RecordedExchange, dialect: str) -> CompletionResponse:
    if exchange.is_sse:
        return response_from_events(decode_stream(exchange.body, dialect))
    return decode_response(exchange.body, dialect)


def _real(folder: str | None = None, ok: bool = True) -> list[Path]:
    return [
        p
        for p in REAL
        if (folder is None or p.parent.name == folder) and (load_exchange(p).status < 300) == ok
    ]


def _last_usage(exchange: RecordedExchange) -> dict[str, Any]:
    """The usage object a reply sent last, read straight from the body."""
    if not exchange.is_sse:
        usage = json.loads(exchange.body).get("usage")
        return usage if isinstance(usage, dict) else {}
    found: dict[str, Any] = {}
    for line in exchange.body.decode().splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            usage = json.loads(line[5:]).get("usage")
            found = usage if isinstance(usage, dict) else found
    return found


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


# -- every real 2xx reply, read a second way: conformance/test_real_traffic.py -------


def test_the_real_corpus_exercises_what_is_compared() -> None:
    readings = []
    for path in _real():
        exchange = load_exchange(path)
        with contextlib.suppress(ValueError):  # an error reply
            readings.append(read_reply(exchange.body, exchange.is_sse))
    assert len(readings) >= 260
    assert sum(bool(r.thinking) for r in readings) >= 20
    assert sum(bool(r.tool_calls) for r in readings) >= 100
    assert sum(bool(r.cache_read_tokens) for r in readings) >= 20
    assert sum(bool(r.reasoning_tokens) for r in readings) >= 50


# -- Mistral: cached prompt tokens ---------------------------------------------------


def test_mistral_cached_tokens_fill_cache_read_in_every_real_reply() -> None:
    seen = 0
    for path in _real("mistral"):
        exchange = load_exchange(path)
        usage = _last_usage(exchange)
        details = usage.get("prompt_tokens_details") or {}
        expected = details.get("cached_tokens", usage.get("num_cached_tokens"))
        if expected is None:
            continue
        seen += 1
        assert _decode(exchange, "mistral").usage.cache_read_input_tokens == expected, path.name
    assert seen >= 20


def test_mistral_num_cached_tokens() -> None:
    # Shape of pydantic/pydantic-ai tests/models/cassettes/test_multimodal_tool_returns/
    # test_multimodal_tool_return_matrix[tool_return_content-url_force_download-image-mistral]
    body = {
        "id": "m1",
        "model": "mistral-small-latest",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {
            "completion_tokens": 6,
            "num_cached_tokens": 32,
            "prompt_tokens": 64,
            "total_tokens": 70,
        },
    }
    usage = decode_response(body, "mistral").usage
    assert (usage.input_tokens, usage.cache_read_input_tokens) == (64, 32)
    # pydantic-ai tests/models/cassettes/test_mistral/test_mistral_history_uses_prompt_cache
    body["usage"] = {
        "completion_tokens": 5,
        "prompt_tokens": 268,
        "prompt_tokens_details": {"cached_tokens": 224},
        "total_tokens": 273,
    }
    assert decode_response(body, "mistral").usage.cache_read_input_tokens == 224


# -- Gemini: hidden thinking tokens ----------------------------------------------------

# pydantic/pydantic-ai tests/models/cassettes/test_openai/
# test_compatible_api_with_tool_calls_without_id.yaml (gemini-2.5-pro, interaction 0)
GEMINI_USAGE = {"completion_tokens": 12, "prompt_tokens": 35, "total_tokens": 109}


def _whole(message: dict[str, Any], usage: dict[str, Any], finish: str = "stop") -> bytes:
    return json.dumps(
        {
            "id": "r",
            "model": "m",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
    ).encode()


def test_gemini_reports_what_total_tokens_holds_beyond_prompt_and_completion() -> None:
    body = _whole({"role": "assistant", "content": "Hi"}, GEMINI_USAGE)
    assert decode_response(body, "gemini").usage.reasoning_tokens == 109 - 35 - 12
    # The same numbers from a dialect whose completion_tokens already holds the thinking
    # (or whose total counts other things) are not reinterpreted.
    for name in ("openai", "mistral", "glm", "claude_subscription"):
        assert not get_dialect(name).reasoning_outside_completion
        assert decode_response(body, name).usage.reasoning_tokens is None
    # An explicit count wins, and no excess means nothing hidden.
    explicit = {**GEMINI_USAGE, "completion_tokens_details": {"reasoning_tokens": 7}}
    assert decode_response(_whole({"content": "x"}, explicit), "gemini").usage.reasoning_tokens == 7
    even = {"completion_tokens": 11, "prompt_tokens": 3, "total_tokens": 14}
    assert decode_response(_whole({"content": "x"}, even), "gemini").usage.reasoning_tokens is None


def test_total_exceeds_prompt_plus_completion_only_in_gemini_real_replies() -> None:
    """Why the rule is a dialect flag and not universal: nowhere else does the excess
    appear, and reasoning elsewhere is counted inside completion_tokens."""
    for path in _real():
        usage = _last_usage(load_exchange(path))
        p, c, t = (usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
        if isinstance(p, int) and isinstance(c, int) and isinstance(t, int) and t > p + c:
            assert path.parent.name == "gemini", path.name


# -- Gemini: thought flag vs thought summaries -----------------------------------------

THOUGHT = {"extra_content": {"google": {"thought": True}}}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice: dict[str, Any] = {"index": 0, "delta": {"role": "assistant", **delta}}
    if finish:
        choice["finish_reason"] = finish
    chunk = {"model": "gemini-2.5-pro", "choices": [choice], "usage": GEMINI_USAGE}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _stream(*deltas: dict[str, Any]) -> CompletionResponse:
    frames = [_chunk(d, "stop" if i == len(deltas) - 1 else None) for i, d in enumerate(deltas)]
    body = b"".join(frames) + b"data: [DONE]\n\n"
    return response_from_events(decode_stream(body, "gemini"))


def test_a_flagged_answer_is_text_whole_and_streamed() -> None:
    # gemini-2.5-pro's second reply in pydantic-ai's
    # test_compatible_api_with_tool_calls_without_id.yaml (commit 4fda389): the message
    # carries extra_content.google.thought (next to its thought_signature), no summary.
    message = {
        "role": "assistant",
        "content": "The current time is Noon.",
        "extra_content": {"google": {"thought": True, "thought_signature": "c2ln"}},
    }
    whole = decode_response(_whole(message, GEMINI_USAGE), "gemini")
    assert (whole.text, whole.thinking) == ("The current time is Noon.", None)
    streamed = _stream({"content": "The current time", **THOUGHT}, {"content": " is Noon."})
    assert (streamed.text, streamed.thinking) == (whole.text, whole.thinking)


def test_a_thought_summary_is_thinking_whole_and_streamed() -> None:
    # Gemini's OpenAI layer with include_thoughts: whole, "<thought>S</thought>A" in a
    # flagged message; streamed, flagged pieces opened by "<thought>", and "</thought>"
    # heading the first unflagged piece.
    message = {"role": "assistant", "content": "<thought>Add them.</thought>4", **THOUGHT}
    whole = decode_response(_whole(message, GEMINI_USAGE), "gemini")
    assert (whole.text, whole.thinking) == ("4", "Add them.")
    streamed = _stream(
        {"content": "<thought>Add", **THOUGHT},
        {"content": " them.", **THOUGHT},
        {"content": "</thought>4"},
    )
    assert (streamed.text, streamed.thinking) == (whole.text, whole.thinking)
    # Text that merely looks like the tag, without Google's flag, stays text.
    plain = decode_response(_whole({"content": "<thought>x</thought>y"}, GEMINI_USAGE), "gemini")
    assert (plain.text, plain.thinking) == ("<thought>x</thought>y", None)


def test_the_real_gemini_tool_call_reply_has_no_thinking() -> None:
    [path] = [p for p in _real("gemini") if "tool_calls_without_id" in p.name]
    got = _decode(load_exchange(path), "gemini")
    assert got.thinking is None and [c.name for c in got.tool_calls] == ["get_current_time"]


# -- OpenAI: error.param ------------------------------------------------------------


def test_openai_error_param_names_the_field_in_every_real_4xx() -> None:
    seen = 0
    for path in _real("openai", ok=False):
        exchange = load_exchange(path)
        param = json.loads(exchange.body)["error"].get("param")
        err = classify_error(
            exchange.status, exchange.headers, exchange.body, get_dialect("openai")
        )
        assert isinstance(err, InvalidRequest), path.name
        assert err.field == param, path.name
        seen += param is not None
    assert seen >= 2


def test_openai_error_param() -> None:
    # pydantic-ai tests/models/cassettes/test_openai/test_openai_o1_mini_system_role[system]
    body = {
        "error": {
            "code": "unsupported_value",
            "message": "Unsupported value: 'messages[0].role' does not support 'system'.",
            "param": "messages[0].role",
            "type": "invalid_request_error",
        }
    }
    err = classify_error(400, {}, json.dumps(body), get_dialect("openai"))
    assert isinstance(err, InvalidRequest) and err.field == "messages[0].role"
    body["error"]["param"] = None
    err = classify_error(404, {}, body, get_dialect("openai"))
    assert isinstance(err, InvalidRequest) and err.field is None


# -- decode_response ----------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in _real() if not load_exchange(p).is_sse][:40], ids=_ids)
def test_decode_response_takes_bytes_text_or_parsed_json(path: Path) -> None:
    exchange, dialect = load_exchange(path), _dialect(path)
    expected = decode_response(exchange.body, dialect)
    assert decode_response(exchange.body.decode(), dialect) == expected
    assert decode_response(json.loads(exchange.body), dialect) == expected
    assert decode_response(bytearray(exchange.body), get_dialect(dialect)) == expected


def test_decode_response_refuses_what_is_not_a_reply() -> None:
    for bad in (b"{not json", "", b"\xff\xfe", "[1, 2]", "42", '"text"'):
        with pytest.raises(DeserializationError):
            decode_response(bad, "openai")
    with pytest.raises(DeserializationError, match="no choices"):
        decode_response("{}", "openai")
    with pytest.raises(TypeError, match="decode_response expects"):
        decode_response(42, "openai")  # type: ignore[arg-type]


def test_decode_response_raises_the_typed_error_of_an_error_body() -> None:
    body = {"error": {"message": "bad", "param": "messages[3]", "type": "invalid_request_error"}}
    with pytest.raises(InvalidRequest) as caught:
        decode_response(json.dumps(body), "openai")
    assert caught.value.field == "messages[3]"
    gemini = [{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}]
    with pytest.raises(Overloaded):
        decode_response(json.dumps(gemini).encode(), "gemini")


def test_decode_response_is_exported_beside_decode_stream() -> None:
    import provider_impl

    assert "decode_response" in provider_impl.__all__
    assert "decode_stream" in provider_impl.__all__


# -- the independent reader itself ---------------------------------------------------


def test_the_independent_reader_joins_fragments_per_index_and_refuses_errors() -> None:
    # OpenAI's parallel calls: name and id on the first fragment of each index
    # (openai/openai-python's parallel-tools snapshot streams them one after the other).
    frames = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
        for call in (
            {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x"'}},
            {"index": 0, "function": {"arguments": ": 1}"}},
            {"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}},
        )
    ]
    frames.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    frames.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    body = b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
    reading = read_reply(body + b"data: [DONE]\n\n", is_sse=True)
    assert reading.tool_calls == [("a", "f", {"x": 1}), ("b", "g", {})]
    assert (reading.finish_reason, reading.input_tokens, reading.output_tokens) == (
        "tool_calls",
        3,
        2,
    )
    with pytest.raises(ValueError, match="error"):
        read_reply(b'{"error": {"message": "no"}}', is_sse=False)
