"""Fuzzing the sans-I/O core: ``SSEDecoder``, ``StreamAdapter``, ``events_of_reply``,
``StreamParser``/``decode_stream`` for every provider, and ``classify_error``.

The oracle (tests/fuzz/engine.py): only ``LlmError`` subclasses escape; with a
small ``max_frame_bytes`` no unterminated line longer than the limit is ever
held and no larger frame comes out (bounded memory); the outcome does not
depend on how the body is split into reads; nothing follows ``Done``; a
``RateLimited.retry_after`` is a finite wait; every input finishes under a
wall-clock alarm (no hang).

The normal suite runs a short, derandomized hypothesis pass (a few seconds)
plus exhaustive field-by-field mutations of every seed. The long run (100,000
inputs, atheris when installed) is ``pytest -m slow -n 0 tests/test_fuzz.py`` or
``python tests/fuzz/fuzz_long.py --runs 100000``; its figures are in
docs/RELIABILITY.md.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz.corpus import PROVIDERS, chunk_seeds, error_seeds, stream_seeds
from fuzz.engine import (
    SMALL_LIMITS,
    check_chunks,
    check_classify,
    check_events,
    check_sse,
    check_stream,
    deep_text,
    deep_value,
    delete_at,
    fuzz_one,
    json_paths,
    no_hang,
    replace_at,
    run_decode_stream,
    run_parser,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import drain

from provider_impl import decode_stream
from provider_impl.adapter import StreamAdapter
from provider_impl.classify import classify_error
from provider_impl.dialects import DIALECTS
from provider_impl.errors import DeserializationError, LlmError, RateLimited, StreamError
from provider_impl.invariants import check_invariants
from provider_impl.sse import ServerSentEvent
from provider_impl.stream import StreamParser

HANG_SECONDS = 20.0  # per input; a hang is a loop that never ends, not a slow machine

FUZZ = settings(
    derandomize=True,  # the same inputs on every run: CI is deterministic
    database=None,
    deadline=None,  # wall-clock checks are no_hang's job, with a generous budget
    suppress_health_check=list(HealthCheck),
)


class HypothesisChooser:
    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def int(self, lo: int, hi: int) -> int:
        return self._data.draw(st.integers(lo, hi))

    def raw(self, max_len: int) -> bytes:
        return self._data.draw(st.binary(max_size=max_len))


# ----------------------------------------------------------- the seed corpus


def test_the_seed_corpus_covers_every_provider_and_decodes_cleanly() -> None:
    seeds = stream_seeds()
    assert {s.provider for s in seeds} == set(PROVIDERS)
    assert len(seeds) >= 50
    for seed in seeds:
        events, err = run_decode_stream(seed.provider, [seed.body])
        if seed.scenario == "error_in_stream":
            assert isinstance(err, StreamError), (seed.provider, err)
            check_invariants(events, complete=False)
        else:
            assert err is None, (seed.provider, seed.scenario, err)
            check_invariants(events)
    assert {e.provider for e in error_seeds()} == set(PROVIDERS)


# ------------------------------------------------------- the short CI run


@settings(FUZZ, max_examples=400)
@given(st.data())
def test_fuzz_engine_short_run(data: st.DataObject) -> None:
    """Every target of the long run (random bytes, mutated bodies of every wire
    style, wrong-typed chunks, SSE events, error bodies), a short pass."""
    with no_hang(HANG_SECONDS):
        fuzz_one(HypothesisChooser(data))


@settings(FUZZ, max_examples=150)
@given(
    body=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 3000), max_size=10),
    limit=st.sampled_from(SMALL_LIMITS),
)
def test_random_bytes_every_provider(body: bytes, cuts: list[int], limit: int) -> None:
    bounds = [0, *sorted(c for c in cuts if c <= len(body)), len(body)]
    pieces = [body[a:b] for a, b in itertools.pairwise(bounds)]
    with no_hang(HANG_SECONDS):
        check_sse(pieces, limit)
        for provider in PROVIDERS:
            check_stream(provider, body, pieces, limit)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "delta",
                    "content",
                    "tool_calls",
                    "function",
                    "arguments",
                    "name",
                    "id",
                    "index",
                    "finish_reason",
                    "usage",
                    "error",
                    "message",
                    "code",
                    "type",
                    "detail",
                    "loc",
                    "status",
                    "details",
                    "retryDelay",
                    "reasoning_content",
                    "thinking",
                    "text",
                    "model",
                    "prompt_tokens",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(FUZZ, max_examples=100)
@given(chunks=st.lists(_json, max_size=6), provider=st.sampled_from(PROVIDERS))
def test_adapter_takes_any_json_values(chunks: list[Any], provider: str) -> None:
    with no_hang(HANG_SECONDS):
        check_chunks(provider, chunks)
        check_events(provider, [ServerSentEvent(json.dumps(c)) for c in chunks])
        check_events(provider, [ServerSentEvent(json.dumps(c), "error") for c in chunks[:1]])


# Error-shaped JSON (the keys the classifier reads) and retry/request-id headers.
_ERROR_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "error",
                    "message",
                    "code",
                    "type",
                    "status",
                    "details",
                    "detail",
                    "loc",
                    "msg",
                    "retryDelay",
                    "reason",
                    "request_id",
                    "object",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
_ERROR_HEADERS = st.dictionaries(
    st.sampled_from(
        ["retry-after", "retry-after-ms", "Retry-After", "x-request-id", "request-id", "cf-ray"]
    ),
    st.text(max_size=40)
    | st.sampled_from(
        [
            "1",
            "-1",
            "nan",
            "inf",
            "1e999",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Mon, 99 Foo 99999 99:99:99 GMT",
        ]
    ),
)


@settings(FUZZ, max_examples=200)
@given(
    status=st.one_of(st.none(), st.integers(-1, 999)),
    headers=_ERROR_HEADERS,
    body=_json | _ERROR_JSON,
    form=st.sampled_from(["parsed", "text", "bytes"]),
    provider=st.sampled_from(PROVIDERS),
)
def test_classify_error_takes_any_body(
    status: int | None, headers: dict[str, str], body: Any, form: str, provider: str
) -> None:
    sent: Any = body
    if form != "parsed":
        sent = json.dumps(body)
        if form == "bytes":
            sent = sent.encode()
    check_classify(status, headers, sent, provider)


# ------------------------------------- exhaustive field-by-field mutations

_WRONG = (None, True, 0, -1, 2**64, 1.5, "", "x", [], {}, [{}], deep_value(60, 0))
_DELETE = object()


def _field_mutations(value: Any) -> Iterator[Any]:
    """``value`` with each field (and element) removed, then given each wrong type."""
    for path in json_paths(value):
        if path:
            yield delete_at(value, path)
        for wrong in _WRONG:
            yield replace_at(value, path, wrong)


def _shape(value: Any) -> Any:
    """The structure of a chunk: its keys and value types, not its values."""
    if isinstance(value, dict):
        return tuple(sorted((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(_shape(v) for v in value))
    return type(value).__name__


def test_wrong_type_or_missing_in_every_field_of_every_chunk() -> None:
    """Every chunk shape of every seed stream of every provider: each field removed
    or replaced by each JSON type in turn, the whole stream fed through the adapter."""
    n = 0
    seen: set[Any] = set()
    with no_hang(120):
        for provider, chunks in chunk_seeds():
            for i, chunk in enumerate(chunks):
                shape = (provider, _shape(chunk))
                if shape in seen:
                    continue  # the same fields as a chunk already done
                seen.add(shape)
                for mutated in _field_mutations(chunk):
                    check_chunks(provider, [*chunks[:i], mutated, *chunks[i + 1 :]])
                    n += 1
    assert n > 5_000


def test_error_bodies_of_every_shape_with_each_field_missing_or_wrong() -> None:
    n = 0
    with no_hang(120):
        for seed in error_seeds():
            for mutated in _field_mutations(seed.body):
                for status in (seed.status, None):
                    check_classify(status, dict(seed.headers), mutated, seed.provider)
                    n += 1
            text = json.dumps(seed.body)
            for cut in range(0, len(text), 7):  # truncated bodies, as bytes
                check_classify(seed.status, {}, text[:cut].encode(), seed.provider)
                n += 1
    assert n > 3_000


# ------------------------------------------------------- memory is bounded


def _enormous(total: int, piece: int, line: bytes = b"data: ") -> Iterator[bytes]:
    yield line
    chunk = b"x" * piece
    for _ in range(total // piece):
        yield chunk


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_enormous_line_is_refused_in_bounded_memory(provider: str) -> None:
    """64 MiB of one unterminated line against a 64 KiB limit: StreamError once the
    limit is passed (never more than limit + one read buffered), peak memory tiny."""
    limit, piece = 64 * 1024, 16 * 1024
    parser = StreamParser(DIALECTS[provider], max_frame_bytes=limit)
    fed = 0
    tracemalloc.start()
    try:
        with pytest.raises(StreamError, match="limit"):
            for data in _enormous(64 << 20, piece):
                fed += len(data)
                drain(parser, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fed <= limit + piece + 6
    assert peak < 1 << 20, f"peak {peak} bytes for a {limit}-byte limit"


@pytest.mark.parametrize(
    "unit",
    [b"data: xxxxxxxxxx\n", b"data:\n", b"data: {\n", b"data: [DONE]\r"],
    ids=["data-lines", "empty-data-lines", "json-lines", "cr-lines"],
)
def test_a_frame_that_never_ends_is_refused(unit: bytes) -> None:
    """Many data lines and no blank line: the frame grows, the limit stops it."""
    limit = 4096
    parser = StreamParser(DIALECTS["openai"], max_frame_bytes=limit)
    fed = 0
    with pytest.raises(StreamError):
        for _ in range(1_000_000):
            fed += len(unit)
            drain(parser, unit)
    # The limit counts each line's bytes, not its line end.
    assert fed <= limit * len(unit) / (len(unit) - 1) + 2 * len(unit)


def test_comments_and_blank_lines_do_not_accumulate() -> None:
    """Keep-alive comments forever: nothing to buffer, so no error and no growth."""
    parser = StreamParser(DIALECTS["openai"], max_frame_bytes=64)
    tracemalloc.start()
    try:
        for _ in range(20_000):
            assert drain(parser, b": keep-alive\n\n") == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_mutated_bodies_never_exceed_a_small_frame_limit(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(stream_seeds()))
    limit = data.draw(st.sampled_from(SMALL_LIMITS))
    body = seed.body
    size = data.draw(st.integers(1, 512))
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    run_parser(seed.provider, pieces, limit)  # raises Finding if more than limit is held


# ------------------------------------------------- regressions (findings)


@pytest.mark.parametrize("depth", [1, 100, 900, 990, 1000, 5000, 100_000])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_deep_nesting_is_an_llm_error_everywhere(provider: str, depth: int) -> None:
    for kind in (0, 1):
        text = deep_text(depth, kind)
        bodies = [
            f"data: {text}\n\n".encode(),
            b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
            b'"function":{"name":"f","arguments":' + json.dumps(text).encode() + b"}}]}}]}\n\n"
            b"data: [DONE]\n\n",
            b'data: {"choices":[{"index":0,"delta":{"content":' + text.encode() + b"}}]}\n\n",
        ]
        for body in bodies:
            run_decode_stream(provider, [body])
        check_classify(400, {}, ('{"error":{"message":' + text + "}}").encode(), provider)
        check_classify(422, {}, '{"detail":[' + text + "]}", provider)
    # Parsed values deeper than json.loads could make (found by the fuzzer: a
    # RecursionError from json.dumps/str in classify_error and the adapter).
    deep = deep_value(min(depth, 5000), 0)
    check_classify(422, {}, {"detail": [{"loc": [deep]}]}, provider)
    check_classify(400, {}, {"error": {"message": deep}}, provider)
    check_chunks(
        provider,
        [
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c",
                                    "function": {"name": deep, "arguments": {"a": deep}},
                                }
                            ]
                        },
                    }
                ]
            }
        ],
    )


@pytest.mark.parametrize("value", ["inf", "Infinity", "1e400", "nan", "-1", "-inf"])
@pytest.mark.parametrize("header", ["retry-after", "retry-after-ms"])
def test_a_non_finite_retry_after_is_no_wait(header: str, value: str) -> None:
    """Found by the fuzzer: Retry-After: inf gave retry_after=inf (time.sleep raises,
    asyncio.sleep never returns)."""
    err = classify_error(429, {header: value}, b"")
    assert isinstance(err, RateLimited)
    assert err.retry_after is None


def test_invalid_utf8_and_lone_surrogates_in_frames() -> None:
    chunk = b'{"choices":[{"index":0,"delta":{"content":"a\xff\xc3b\xed\xa0\x80"}}]}'
    for provider in PROVIDERS:
        _, err = run_decode_stream(provider, [b"data: " + chunk + b"\n\ndata: [DONE]\n\n"])
        assert err is None
        escaped = b'data: {"choices":[{"index":0,"delta":{"content":"\\ud800"}}]}\n\n'
        run_decode_stream(provider, [escaped, b"data: [DONE]\n\n"])


def test_the_adapter_refuses_frames_that_are_not_objects_with_a_typed_error() -> None:
    for value in (None, 1, "x", [1], [[]], 1.5, True):
        adapter = StreamAdapter(DIALECTS["openai"])
        adapter.receive_event(ServerSentEvent(json.dumps(value)))
        with pytest.raises(DeserializationError):
            adapter.next_events()
    for data in ("null", "1", '"x"', "[1]", "{", "NaN"):
        adapter = StreamAdapter(DIALECTS["gemini"])
        adapter.receive_event(ServerSentEvent(data))
        with pytest.raises(LlmError):
            adapter.next_events()
    with pytest.raises(StreamError, match="truncated"):  # an empty body is no clean end
        list(decode_stream(b"", "mistral"))


# ------------------------------------------------------------ the long run

FUZZ_LONG = Path(__file__).parent / "fuzz" / "fuzz_long.py"


@pytest.mark.slow
def test_long_fuzz_run(tmp_path: Path) -> None:
    """100,000 inputs (atheris if installed, else the seeded random engine)."""
    runs = int(os.environ.get("FUZZ_RUNS", "100000"))
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ_LONG),
            "--runs",
            str(runs),
            "--summary",
            str(summary),
            "--artifacts",
            str(tmp_path / "findings"),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    result = json.loads(summary.read_text())
    assert result["inputs"] >= runs
    assert result["findings"] == 0
