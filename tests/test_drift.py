"""provider-impl drift: record afresh, compare with the committed cassettes in three layers.

Against the emulator as shipped nothing drifts; against an emulator told to
drift (``Emulator(drift=...)``) each change is caught in the layer it belongs
to. The comparison itself is checked on the committed cassettes and on the real
exchanges under ``cassettes/real/``.
"""

from __future__ import annotations

import json
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from transports import PROVIDERS

from provider_impl.cli import main
from provider_impl.dialects import DIALECTS, get_dialect
from provider_impl.drift import DriftReport, compare_exchanges, run_drift
from provider_impl.emulator import DRIFTS, Emulator
from provider_impl.harness import RecordedExchange, load_exchange
from provider_impl.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
REAL = CASSETTES / "real"


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for dialect in DIALECTS.values():
        if dialect.api_key_env:
            monkeypatch.setenv(dialect.api_key_env, "drift-test-key-0123456789")


def _run(emu: Emulator, provider: str, *extra: str) -> int:
    base = ["--provider", provider, "--base-url", emu.base_url(provider)]
    return main(["drift", *base, "--cassette-dir", str(CASSETTES), *extra])


def _report(emu: Emulator, provider: str) -> DriftReport:
    return run_drift(provider, base_url=emu.base_url(provider), cassette_dir=CASSETTES)


def _layers(report: DriftReport) -> dict[str, set[int]]:
    return {s.scenario: {d.layer for d in s.differences} for s in report.drifted}


def _messages(report: DriftReport, layer: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for s in report.scenarios:
        for d in s.differences:
            if d.layer == layer:
                out[s.scenario].append(d.message)
    return out


# -- the emulator as shipped -------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_unchanged_emulator_does_not_drift(
    emulator: Emulator, provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(emulator, provider) == 0
    out = capsys.readouterr().out
    n = sum(1 for s in SCENARIOS.values() if s.applies_to(provider))
    assert f"{n} scenarios: {n} OK, 0 drifted" in out
    assert out.count(" OK\n") == n


def test_another_dialect_in_place_of_the_provider_is_drift(emulator: Emulator) -> None:
    # Gemini's cassettes against the emulated OpenAI: OpenAI sends fields Gemini does
    # not, and ids Gemini leaves empty.
    report = run_drift("gemini", base_url=emulator.base_url("openai"), cassette_dir=CASSETTES)
    layers = _layers(report)
    assert layers["text"] == {2, 3}
    assert "system_fingerprint: new (string)" in _messages(report, 2)["text"]
    assert any(m.startswith("tool call ids: none sent") for m in _messages(report, 3)["tool_call"])


# -- injected drifts -----------------------------------------------------------------


@pytest.fixture(scope="module")
def drifting() -> Iterator[dict[str, Emulator]]:
    """One emulator per kind of drift."""
    emulators = {name: Emulator(drift=[name]).start() for name in DRIFTS}
    try:
        yield emulators
    finally:
        for emu in emulators.values():
            emu.stop()


@pytest.mark.parametrize(
    ("drift", "layer"),
    [
        ("usage_renamed", "layer 2 (shape)"),
        ("required_param", "layer 1 (acceptance)"),
        ("tool_ids_dropped", "layer 3 (events)"),
    ],
)
def test_the_command_exits_1_and_names_the_layer(
    drifting: dict[str, Emulator], drift: str, layer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(drifting[drift], "glm") == 1
    out = capsys.readouterr().out
    assert "DRIFT" in out and f"      {layer}:\n" in out
    assert re.search(
        r"\d+ scenarios: \d+ OK, [1-9]\d* drifted; drift in .*" + re.escape(layer), out
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_renamed_usage_field_is_a_shape_drift(
    drifting: dict[str, Emulator], provider: str
) -> None:
    report = _report(drifting["usage_renamed"], provider)
    # Exactly the scenarios whose committed reply reports usage drift, in layer 2.
    # (A reply read as an error, such as the usage-limit answer, is compared as one.)
    with_usage = {
        s.scenario
        for s in report.scenarios
        if b'"prompt_tokens"' in load_exchange(CASSETTES / provider / f"{s.scenario}.yaml").body
        and SCENARIOS[s.scenario].error_status
    }
    assert with_usage
    assert {s.scenario for s in report.drifted} == with_usage
    for name, messages in _messages(report, 2).items():
        assert any(m.startswith("usage.prompt_tokens: missing") for m in messages), name
        assert any(m.startswith("usage.input_tokens: new") for m in messages), name
    assert not _messages(report, 1)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_new_required_parameter_is_an_acceptance_drift(
    drifting: dict[str, Emulator], provider: str
) -> None:
    report = _report(drifting["required_param"], provider)
    accepted_before = {
        s.scenario
        for s in report.scenarios
        if load_exchange(CASSETTES / provider / f"{s.scenario}.yaml").status < 400
    }
    assert len(accepted_before) >= 8
    layers = _layers(report)
    for name in accepted_before:
        # Refused now; the refusal's body is not also listed path by path.
        assert layers[name] == {1}, name
        (message,) = _messages(report, 1)[name]
        assert "was accepted (2xx), now refused (4xx, InvalidRequest)" in message
        assert "safety_identifier" in message


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_calls_without_ids_are_caught(drifting: dict[str, Emulator], provider: str) -> None:
    report = _report(drifting["tool_ids_dropped"], provider)
    # None for a provider that cannot call tools: then nothing drifts.
    tool_scenarios = {
        n for n in ("tool_call", "parallel_tool_calls") if SCENARIOS[n].applies_to(provider)
    }
    # A provider that checks the ids it gets back (Mistral) also refuses the
    # round trips, whose follow-ups carry the ids the client made up.
    round_trips = (
        {"tool_round_trip", "tool_round_trip_nonstream"}
        if get_dialect(provider).tool_call_ids is not None
        else set()
    )
    assert {s.scenario for s in report.drifted} == tool_scenarios | round_trips
    shape = _messages(report, 2)
    events = _messages(report, 3)
    for name in tool_scenarios:
        assert any(
            re.fullmatch(r"choices\[\]\.(delta|message)\.tool_calls\[\]\.id: missing.*", m)
            for m in shape[name]
        ), shape[name]
        # Layer 3 notices where the committed reply carried real ids (Gemini sends "").
        committed = load_exchange(CASSETTES / provider / f"{name}.yaml")
        if _sends_tool_ids(committed):
            assert any(
                "tool call ids: all sent by the provider -> none sent" in m for m in events[name]
            )
        else:
            assert name not in events


def _sends_tool_ids(exchange: RecordedExchange) -> bool:
    """Whether any tool call in the reply carries a non-empty id (read independently)."""
    bodies = [exchange.body]
    if exchange.is_sse:
        bodies = [
            line[len(b"data: ") :]
            for line in exchange.body.splitlines()
            if line.startswith(b"data: {")
        ]
    for raw in bodies:
        for choice in json.loads(raw).get("choices") or []:
            part = choice.get("delta") or choice.get("message") or {}
            if any(c.get("id") for c in part.get("tool_calls") or []):
                return True
    return False


def test_the_emulator_refuses_an_unknown_drift() -> None:
    with pytest.raises(ValueError, match=r"unknown drift 'nope'.*usage_renamed"):
        Emulator(drift=["nope"])
    assert set(DRIFTS) == {"usage_renamed", "required_param", "tool_ids_dropped"}


# -- the report, JUnit, bad input ------------------------------------------------------


def test_junit_has_one_testcase_per_scenario(drifting: dict[str, Emulator], tmp_path: Path) -> None:
    junit = tmp_path / "drift.xml"
    assert _run(drifting["tool_ids_dropped"], "openai", "--junit", str(junit)) == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {s.name for s in SCENARIOS.values() if s.applies_to("openai")}
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failed == {"tool_call", "parallel_tool_calls"}
    assert suite.get("failures") == "2" and suite.get("tests") == str(len(cases))
    failure = cases["tool_call"].find("failure")
    assert failure is not None
    assert failure.get("message") == "drift in layer 2 (shape), layer 3 (events)"
    assert "tool_calls[].id: missing" in (failure.text or "")


def test_a_missing_committed_cassette_is_skipped_not_drift(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "glm").mkdir()
    (tmp_path / "glm" / "text.yaml").write_bytes((CASSETTES / "glm" / "text.yaml").read_bytes())
    argv = ["drift", "--provider", "glm", "--base-url", emulator.base_url("glm")]
    argv += ["--scenario", "text", "--scenario", "tool_call"]
    assert main([*argv, "--cassette-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"text\s+OK", out)
    assert re.search(r"tool_call\s+skipped: no committed cassette", out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--provider", "nope"], "unknown provider 'nope'; known: openai"),
        (["--provider", "openai", "--cassette-dir", "no/such/dir"], "no cassette folder"),
        (["--provider", "openai", "--scenario", "nope"], "unknown scenario 'nope'"),
        (
            ["--provider", "openai", "--base-url", "http://127.0.0.1:{port}/v1"],
            "cannot reach http://127.0.0.1:",
        ),
        (["--provider", "openai", "--base-url", "http://[::1/v1"], "Invalid port"),
        (["--provider", "openai", "--base-url", "ftp://x/v1"], "base_url must start with http"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(port=_free_port()) for a in argv]
    if "--cassette-dir" not in argv:
        argv += ["--cassette-dir", str(CASSETTES)]
    started = time.perf_counter()
    assert main(["drift", *argv]) == 2
    assert time.perf_counter() - started < 10
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], captured.err
    assert "Traceback" not in captured.err


def test_a_missing_key_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY")
    assert main(["drift", "--provider", "mistral", "--cassette-dir", str(CASSETTES)]) == 2
    assert "MISTRAL_API_KEY" in capsys.readouterr().err


def test_a_provider_without_committed_cassettes_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", "--provider", "openai", "--cassette-dir", str(tmp_path)]) == 2
    assert "no committed cassettes for openai" in capsys.readouterr().err


# -- the comparison itself ---------------------------------------------------------------


def _chunks(exchange: RecordedExchange) -> list[Any]:
    if not exchange.is_sse:
        return [json.loads(exchange.body)]
    out: list[Any] = []
    for block in exchange.body.decode("utf-8").split("\n\n"):
        data = block.removeprefix("data: ")
        if block.startswith("data: "):
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _rebuild(exchange: RecordedExchange, chunks: list[Any]) -> RecordedExchange:
    if not exchange.is_sse:
        return replace(exchange, body=json.dumps(chunks[0]).encode())
    parts = [c if isinstance(c, str) else json.dumps(c, ensure_ascii=False) for c in chunks]
    return replace(exchange, body="".join(f"data: {p}\n\n" for p in parts).encode("utf-8"))


def _map(value: Any, fn: Callable[[str, Any], Any]) -> Any:
    """``value`` with ``fn(key, v)`` applied to every member of every object."""
    if isinstance(value, list):
        return [_map(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: fn(k, _map(v, fn)) for k, v in value.items()}
    return value


def _vary(key: str, value: Any) -> Any:
    """What legitimately differs between two recordings: ids, times, the text."""
    if key == "id" and isinstance(value, str) and value:
        return "other-" + value[::-1]
    if key in ("created", "created_at") and isinstance(value, int):
        return value + 86_400
    if key in ("content", "reasoning_content") and isinstance(value, str) and value:
        # Every word doubled; markup such as Gemini's <thought> tags kept.
        return re.sub(r"<[^>]*>|(\w+)", lambda m: (m.group(1) or "") * 2 or m.group(0), value)
    if key in ("system_fingerprint", "obfuscation") and isinstance(value, str):
        return value + "x"
    return value


COMMITTED = sorted(p for d in PROVIDERS for p in (CASSETTES / d).glob("*.yaml"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ids_times_and_text_do_not_count_as_drift(path: Path) -> None:
    if not SCENARIOS[path.stem].error_status:
        pytest.skip("the text is the error here (the usage-limit answer): changing it is drift")
    committed = load_exchange(path)
    chunks = [_map(c, _vary) for c in _chunks(committed)]
    if committed.is_sse:  # the text in more pieces: repeat every chunk that carries some
        chunks = [
            c2
            for c in chunks
            for c2 in (
                [c, c]
                if isinstance(c, dict) and re.search(r'"content": "[^"]', json.dumps(c))
                else [c]
            )
        ]
    headers = {**committed.headers, "date": "Thu, 01 Jan 2037 00:00:00 GMT"}
    fresh = replace(_rebuild(committed, chunks), headers=headers)
    assert fresh.body != committed.body
    assert compare_exchanges(committed, fresh, path.parent.name) == []


def test_event_level_changes_are_layer_3() -> None:
    committed = load_exchange(CASSETTES / "openai" / "text.yaml")
    chunks = _chunks(committed)

    def finish(key: str, value: Any) -> Any:
        return "length" if key == "finish_reason" and value else value

    stopped = compare_exchanges(
        committed, _rebuild(committed, [_map(c, finish) for c in chunks]), "openai"
    )
    assert [(d.layer, d.message) for d in stopped] == [(3, "stop reason: end_turn -> max_tokens")]

    def no_text(key: str, value: Any) -> Any:
        return "" if key == "content" and value else value

    silent = compare_exchanges(
        committed, _rebuild(committed, [_map(c, no_text) for c in chunks]), "openai"
    )
    assert [d.layer for d in silent] == [3] and silent[0].message.startswith("event kinds:")
    assert "content_block_start:text" in silent[0].message.split("->")[0]
    assert "content_block_start:text" not in silent[0].message.split("->")[1]

    no_usage = [c for c in chunks if not (isinstance(c, dict) and c.get("usage"))]
    dropped = compare_exchanges(committed, _rebuild(committed, no_usage), "openai")
    assert {d.layer for d in dropped} == {2, 3}
    assert any(
        d.message.startswith("usage.completion_tokens: missing (was number)") for d in dropped
    )
    assert any(d.message.startswith("usage reported: input_tokens, output_tokens") for d in dropped)
    # The decoder still ends with a Usage event, holding no counts.
    assert [d.message for d in dropped if d.layer == 3] == [
        "usage reported: input_tokens, output_tokens, cache_read_input_tokens, reasoning_tokens"
        " -> no counts"
    ]


def test_a_decode_error_is_layer_3_and_its_message_is_not_compared() -> None:
    committed = load_exchange(CASSETTES / "openai" / "tool_call.yaml")

    def garble(key: str, value: Any) -> Any:
        return "<<" + value if key == "arguments" and str(value).startswith("{") else value

    fresh = _rebuild(committed, [_map(c, garble) for c in _chunks(committed)])
    diffs = compare_exchanges(committed, fresh, "openai")
    assert {d.layer for d in diffs} == {3}
    assert diffs[0].message.startswith("decode error: none -> DeserializationError (tool call")
    assert "tool calls: 1 -> 0" in [d.message for d in diffs]
    # An in-band error whose wording changed (request ids, say) is the same error.
    for provider in PROVIDERS:
        committed = load_exchange(CASSETTES / provider / "error_in_stream.yaml")

        def reword(key: str, value: Any) -> Any:
            return value + " (request 42)" if key == "message" and isinstance(value, str) else value

        fresh = _rebuild(committed, [_map(c, reword) for c in _chunks(committed)])
        assert fresh.body != committed.body or not committed.is_sse
        assert compare_exchanges(committed, fresh, provider) == []


def _paths_below(value: Any) -> int:
    if isinstance(value, dict):
        return sum(1 + _paths_below(v) for v in value.values())
    return 0


def test_a_type_change_and_a_removed_subtree_in_layer_2() -> None:
    committed = load_exchange(CASSETTES / "mistral" / "text_nonstream.yaml")
    (body,) = _chunks(committed)
    below = _paths_below(body["usage"])
    assert below >= 3
    body["created"] = str(body["created"])
    del body["usage"]
    diffs = compare_exchanges(committed, _rebuild(committed, [body]), "mistral")
    assert sorted(d.message for d in diffs if d.layer == 2) == [
        "created: type number -> string",
        f"usage: missing (was object) (and {below} paths below)",
    ]
    assert [d.message for d in diffs if d.layer == 3] == [
        "usage reported: input_tokens, output_tokens -> none"
    ]


# -- real traffic -----------------------------------------------------------------------------


def _real_groups() -> list[tuple[str, list[Path]]]:
    """Real recordings of one test of one project against one provider (often one
    per model): the hash suffix of the imported file name tells them apart. A
    gateway's models come from several vendors ("x-ai/...", "anthropic/..."),
    whose replies differ by design: only one vendor's replies are grouped."""
    groups: dict[tuple[str, str, str], list[Path]] = defaultdict(list)
    for path in sorted(REAL.glob("*/*.yaml")):
        if path.parent.name in DIALECTS:
            model = str(load_exchange(path).request_body.get("model", ""))
            vendor = model.split("/", 1)[0] if "/" in model else ""
            test = re.sub(r"_[0-9a-f]{6}$", "", path.stem)
            groups[(path.parent.name, test, vendor)].append(path)
    return [(provider, paths) for (provider, _, _), paths in groups.items() if len(paths) > 1]


REAL_GROUPS = _real_groups()


@pytest.mark.parametrize(
    ("provider", "paths"), REAL_GROUPS, ids=lambda v: v if isinstance(v, str) else v[0].stem
)
def test_real_replies_to_one_call_from_other_models_or_days_are_not_drift(
    provider: str, paths: list[Path]
) -> None:
    first = load_exchange(paths[0])
    for other in paths[1:]:
        assert compare_exchanges(first, load_exchange(other), provider) == [], other.name


REAL_WITH_USAGE = sorted(
    p
    for p in REAL.glob("*/*.yaml")
    if p.parent.name in DIALECTS and b"prompt_tokens" in p.read_bytes()
)


def test_real_replies_exist_for_the_drift_checks() -> None:
    assert len(REAL_GROUPS) >= 5 and len(REAL_WITH_USAGE) >= 50


@pytest.mark.parametrize("path", REAL_WITH_USAGE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_real_replies_catch_a_renamed_usage_field_and_ignore_ids(path: Path) -> None:
    real = load_exchange(path)
    provider = path.parent.name
    varied = _rebuild(real, [_map(c, _vary) for c in _chunks(real)])
    assert compare_exchanges(real, varied, provider) == []

    def rename(key: str, value: Any) -> Any:
        if key == "usage" and isinstance(value, dict):
            return {("input_tokens" if k == "prompt_tokens" else k): v for k, v in value.items()}
        return value

    drifted = compare_exchanges(
        real, _rebuild(real, [_map(c, rename) for c in _chunks(real)]), provider
    )
    shape = [d.message for d in drifted if d.layer == 2]
    assert any(m.startswith("usage.prompt_tokens: missing (was number") for m in shape), shape
    assert any(m.startswith("usage.input_tokens: new (number") for m in shape), shape
