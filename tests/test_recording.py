"""Recording: the cassette format, scrubbing, the secret-refusing persister,
request matching, and a full record-then-replay run against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr.serialize
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vcr.request import Request

from provider_impl.dialects import DIALECTS
from provider_impl.emulator import Emulator
from provider_impl.errors import LlmError
from provider_impl.events import StreamEvent
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.recording import (
    REDACTED,
    SERIALIZER,
    SERIALIZER_NAME,
    CannotOverwriteExistingCassetteException,
    RecordResult,
    Scrubber,
    SecretLeakError,
    SecretScanningPersister,
    UnscrubbableResponse,
    encode_json_body,
    json_body_matcher,
    load_interactions,
    make_vcr,
    real_uri,
    record_cassettes,
    scan_paths,
)
from provider_impl.recording.serializer import block_safe, deserialize, serialize
from provider_impl.scenarios import SCENARIO_HEADER, SCENARIOS

# -- helpers --------------------------------------------------------------------


def _roundtrip(request_body: bytes | None, response_body: bytes | None) -> tuple[Any, Any, str]:
    """Through vcrpy's own serialize/deserialize, with our serializer."""
    req = Request("POST", "https://api.openai.com/v1/chat/completions", request_body, {})
    resp = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["text/event-stream"]},
        "body": {"string": response_body},
    }
    text = vcr.serialize.serialize({"requests": [req], "responses": [resp]}, SERIALIZER)
    requests, responses = vcr.serialize.deserialize(text, SERIALIZER)
    return requests[0].body, responses[0]["body"]["string"], text


SPECIAL = ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\t", " ", "\ufeff", "\x00", "\x7f"]
SPECIAL += ["data: ", ": comment", "\n\n", "  ", "- ", "# ", '"', "'", "|", "\\", "\U0001f469"]
texts = st.lists(st.one_of(st.text(), st.sampled_from(SPECIAL)), max_size=30).map("".join)
short_texts = st.text(max_size=12) | st.sampled_from(SPECIAL) | st.sampled_from(["<<", "=", "~"])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_texts,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(short_texts, children, max_size=3)
    ),
    max_leaves=10,
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the serializer ---------------------------------------------------------------


@FAST
@given(texts)
def test_text_response_bodies_round_trip_exactly(text: str) -> None:
    data = text.encode("utf-8")
    _, resp_back, serialized = _roundtrip(b"{}", data)
    assert resp_back == data
    # Text that a literal block carries is stored as one.
    if block_safe(text) and text:
        assert "string: |" in serialized


@FAST
@given(st.binary(max_size=200))
def test_binary_response_bodies_round_trip_exactly(data: bytes) -> None:
    _, resp_back, _ = _roundtrip(None, data)
    assert resp_back == data


@FAST
@given(st.dictionaries(short_texts, json_values, max_size=5))
def test_json_request_bodies_are_stored_parsed_and_reencoded_exactly(body: dict[str, Any]) -> None:
    data = encode_json_body(body)
    req_back, _, serialized = _roundtrip(data, b"")
    assert req_back == data
    assert "parsed_body:" in serialized


@FAST
@given(texts)
def test_text_request_bodies_round_trip_exactly(text: str) -> None:
    data = text.encode("utf-8")
    req_back, _, _ = _roundtrip(data, None)
    assert req_back == data


def test_encode_json_body_is_the_providers_encoding() -> None:
    provider = OpenAiCompatibleProvider.openai(api_key="x" * 20)
    for scenario in SCENARIOS.values():
        body = provider.build_request(scenario.request_for("openai"), stream=scenario.stream)
        assert encode_json_body(body) == provider._encode(body)


def test_non_canonical_json_request_body_is_kept_as_text() -> None:
    data = b'{"model": "gpt-4o",  "stream": true}'
    req_back, _, serialized = _roundtrip(data, b"")
    assert req_back == data
    assert "parsed_body" not in serialized


def test_cassette_is_readable_yaml() -> None:
    sse = (
        'data: {"id":"c1","choices":[{"delta":{"content":"h\u00e9llo \U0001f469"}}]}\n\n'
        "data: [DONE]\n\n"
    )
    req_body = encode_json_body(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    )
    _, _, text = _roundtrip(req_body, sse.encode())
    doc = yaml.safe_load(text)
    request = doc["interactions"][0]["request"]
    assert request["parsed_body"]["messages"][0]["content"] == "hi"
    assert "body" not in request
    # The SSE body as block text, each wire line a line of the file.
    assert "string: |+\n" in text
    assert (
        '        data: {"id":"c1","choices":[{"delta":{"content":"h\u00e9llo \U0001f469"}}]}\n'
        in (text)
    )
    assert doc["interactions"][0]["response"]["body"]["string"] == sse


def test_line_separators_fall_back_to_a_list_of_lines() -> None:
    sse = 'data: {"c":"a\u2028b\x85c"}\n\ndata: {"c":"tab\\there"}\n\n'
    _, back, text = _roundtrip(None, sse.encode())
    assert back == sse.encode()
    doc = yaml.safe_load(text)
    lines = doc["interactions"][0]["response"]["body"]["lines"]
    assert lines[0] == 'data: {"c":"a\u2028b\x85c"}'
    assert lines[2] == 'data: {"c":"tab\\there"}'
    assert "\u2028" not in text and "\x85" not in text  # escaped, not raw
    # Windows line endings and trailing spaces take the same route.
    for body in ("a\r\nb\r\n", "data: x \n\n"):
        _, back, _ = _roundtrip(None, body.encode())
        assert back == body.encode()


def test_deserialize_rejects_other_documents() -> None:
    with pytest.raises(ValueError, match="no interactions"):
        deserialize("just: a mapping\n")
    assert serialize({"version": 1, "interactions": []}).startswith("version: 1")


# -- request matching ------------------------------------------------------------------


def _req(body: bytes) -> Request:
    return Request("POST", "https://api.openai.com/v1/chat/completions", body, {})


def test_json_body_matcher() -> None:
    json_body_matcher(_req(b'{"a":1,"b":[1,2]}'), _req(b'{"b": [1, 2], "a": 1}'))
    with pytest.raises(AssertionError, match="max_tokens"):
        json_body_matcher(_req(b'{"max_tokens":16}'), _req(b'{"max_tokens":17}'))
    for a, b in [(b'{"a":1}', b'{"a":1.0}'), (b'{"a":1}', b'{"a":true}'), (b"x", b"y")]:
        with pytest.raises(AssertionError):
            json_body_matcher(_req(a), _req(b))


# -- scrubbing -------------------------------------------------------------------------

KEY = "sk-live-" + "k" * 20 + "Q9" * 10


def test_scrubber_request_headers_query_body_and_uri() -> None:
    scrub = Scrubber([KEY], {"http://127.0.0.1:9999/openai/v1": "https://api.openai.com/v1"})
    headers = {
        "Authorization": f"Bearer {KEY}",
        "x-goog-api-key": KEY,
        "X-Api-Key": "another-credential-value",
        "api-key": "azure-style-credential",
        "Cookie": "session=abc",
        "OpenAI-Organization": "org-123456",
        "openai-project": "proj_123456",
        "x-custom": f"prefix {KEY} suffix",
        "host": "127.0.0.1:9999",
        "accept": "text/event-stream",
    }
    body = encode_json_body({"messages": [{"content": f"my key is {KEY}!"}], KEY: [KEY]})
    req = Request(
        "POST",
        f"http://127.0.0.1:9999/openai/v1/chat/completions?key={KEY}&alt=sse&trace={KEY}",
        body,
        headers,
    )
    out = scrub.request(req)
    assert out.uri == "https://api.openai.com/v1/chat/completions?alt=sse&trace=REDACTED"
    h = {k.lower(): v for k, v in out.headers.items()}
    for name in ("authorization", "x-goog-api-key", "x-api-key", "api-key"):
        assert h[name] == REDACTED
    for name in ("cookie", "openai-organization", "openai-project"):
        assert name not in h
    assert h["x-custom"] == f"prefix {REDACTED} suffix"
    assert h["host"] == "api.openai.com"
    assert h["accept"] == "text/event-stream"
    assert json.loads(out.body) == {
        "messages": [{"content": f"my key is {REDACTED}!"}],
        REDACTED: [REDACTED],
    }


def test_scrubber_finds_json_escaped_keys_in_bodies() -> None:
    key = "secret/with/slashes-1234"
    scrub = Scrubber([key])
    escaped = b'{"a":"\\u0073ecret\\/with\\/slashes-1234"}'
    assert json.loads(scrub.scrub_bytes(escaped)) == {"a": REDACTED}
    # A body that is not JSON: raw replacement, other bytes untouched.
    assert scrub.scrub_bytes(f"data: {key}\n\n".encode()) == f"data: {REDACTED}\n\n".encode()
    assert scrub.scrub_bytes(b"\xff\xfe" + key.encode()) == b"\xff\xfe" + REDACTED.encode()
    # Without secrets, bodies are byte-identical.
    raw = b'{"b": 1,  "a":2}'
    assert Scrubber([]).scrub_bytes(raw) == raw
    assert Scrubber(["unrelated-key-0000"]).scrub_bytes(raw) == raw


def test_scrubber_response_headers_and_body() -> None:
    scrub = Scrubber([KEY])
    response = {
        "status": {"code": 401, "message": "Unauthorized"},
        "headers": {
            "Set-Cookie": ["a=1", "b=2"],
            "openai-organization": ["org-x"],
            "OpenAI-Project": ["proj-x"],
            "x-echo": [KEY],
            "content-type": ["application/json"],
        },
        "body": {
            "string": f'{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}'.encode()
        },
    }
    out = scrub.response(response)
    headers = response["headers"]
    assert isinstance(headers, dict)
    assert set(out["headers"]) == {"x-echo", "content-type"}
    assert out["headers"]["x-echo"] == [REDACTED]
    assert KEY.encode() not in out["body"]["string"]
    assert REDACTED.encode() in out["body"]["string"]
    assert headers["x-echo"] == [KEY]
    # A body still compressed after vcrpy's decoding cannot be scanned: refused.
    compressed = {**response, "headers": {"Content-Encoding": ["zstd"]}}
    with pytest.raises(UnscrubbableResponse, match="zstd"):
        scrub.response(compressed)  # the input is not modified


def test_real_uri_rewrites_the_emulator_layout() -> None:
    for name, dialect in DIALECTS.items():
        prefix = {"gemini": "/v1beta/openai", "glm": "/api/paas/v4"}.get(name, "/v1")
        uri = f"http://127.0.0.1:41234/{name}{prefix}/chat/completions"
        assert real_uri(uri) == dialect.base_url + "/chat/completions"
    assert real_uri("https://api.openai.com/v1/chat/completions") == (
        "https://api.openai.com/v1/chat/completions"
    )
    assert real_uri("http://127.0.0.1:1/unknown/v1/chat/completions").startswith("http://127")
    assert real_uri(
        "http://proxy.local/x/chat/completions", {"http://proxy.local/x/": "https://a/b"}
    )


# -- the persister ------------------------------------------------------------------------


def _cassette_dict(body: bytes) -> dict[str, Any]:
    req = Request("POST", "https://api.openai.com/v1/chat/completions", b"{}", {})
    resp = {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": body}}
    return {"requests": [req], "responses": [resp]}


def test_persister_refuses_a_surviving_secret_and_writes_nothing(tmp_path: Path) -> None:
    persister = SecretScanningPersister([KEY])
    path = tmp_path / "openai" / "text.yaml"
    with pytest.raises(SecretLeakError) as info:
        persister.save_cassette(path, _cassette_dict(f"data: {KEY}\n\n".encode()), SERIALIZER)
    assert "known_secret" in str(info.value) and str(path) in str(info.value)
    assert KEY not in str(info.value)
    assert not tmp_path.joinpath("openai").exists()
    # A token-shaped string nobody declared is refused too, and an existing
    # cassette is left exactly as it was.
    persister.save_cassette(path, _cassette_dict(b"data: fine\n\n"), SERIALIZER)
    before = path.read_bytes()
    google = "AIza" + "B" * 30 + "12345"
    with pytest.raises(SecretLeakError, match="google_api_key"):
        persister.save_cassette(path, _cassette_dict(f"k={google}".encode()), SERIALIZER)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["text.yaml"]  # no temp files
    _, responses = persister.load_cassette(path, SERIALIZER)
    assert responses[0]["body"]["string"] == b"data: fine\n\n"


# -- recording from the emulator, then replay --------------------------------------------

KEYS = {
    "openai": "sk-live-" + "Rk8vT2mQ9xW4nB6cJ1hL" * 2,
    "gemini": "AIza" + "SyBx7Kq2Lm9Np4Rt6Vw8Yz0Ac3De5Fg-h_J",
    "mistral": "Mq7Xv2Kp9Lw4Nz6Bt1Hr8Jc3Fs5Dg0Ay",
    "glm": "9e107d9d372bb6826bd81d3542a419d6.Kp3Xm8Qv2Nw7Rt4Z",
    "claude_subscription": "sk-ant-oat01-" + "Pz4Wq8Nv2Lk6Jh0Gf3Ds7Ba1" * 2,
    "openrouter": "sk-or-v1-" + "4f9a1c2e7b3d8a6f" * 4,
}


@pytest.fixture(scope="module")
def recorded(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, list[RecordResult]], list[str]]:
    out = tmp_path_factory.mktemp("cassettes")
    lines: list[str] = []
    results = {
        p: record_cassettes(
            p,
            base_url=emulator.base_url(p),
            cassette_dir=out,
            api_key=KEYS[p],
            progress=lines.append,
        )
        for p in DIALECTS
    }
    return out, results, lines


def test_records_every_scenario_without_a_trace_of_any_key(
    recorded: tuple[Path, dict[str, list[RecordResult]], list[str]], emulator: Emulator
) -> None:
    out, results, lines = recorded
    files = sorted(out.rglob("*"))
    cassettes = [f for f in files if f.is_file()]
    expected = {(p, s.name) for p in DIALECTS for s in SCENARIOS.values() if s.applies_to(p)}
    assert {(f.parent.name, f.stem) for f in cassettes} == expected
    assert all(f.suffix == ".yaml" for f in cassettes)
    for provider, rs in results.items():
        assert [r.ok for r in rs] == [True] * len(rs), [r.outcome for r in rs if not r.ok]
        assert {r.scenario for r in rs} == {s for p, s in expected if p == provider}
    emulator_host = emulator.base_url("openai").split("/")[2]
    for f in cassettes:
        data = f.read_bytes()
        for key in KEYS.values():
            assert key.encode() not in data, f"{key[:6]}… in {f}"
            assert key[-16:].encode() not in data, f"a piece of {key[:6]}… in {f}"
        assert emulator_host.encode() not in data, f
        assert b"127.0.0.1" not in data
        provider = f.parent.name
        for it in load_interactions(f):
            assert it.uri == DIALECTS[provider].base_url + "/chat/completions"
            assert it.request_headers["host"] == it.uri.split("/")[2]
            auth = {k.lower(): v for k, v in it.request_headers.items()}["authorization"]
            assert auth == REDACTED
            assert it.request_body is not None
        text = data.decode("utf-8")
        assert "parsed_body:" in text
        assert "string: |" in text or "lines:" in text
    assert scan_paths([out], known=KEYS.values()) == []
    # Progress: one line per provider and scenario, skips included, then the advice.
    assert sum(" \u00d7 " in line and " → " in line for line in lines) == len(DIALECTS) * len(
        SCENARIOS
    )
    assert any("skipped (not applicable" in line for line in lines)
    assert any("--snapshot-update" in line for line in lines)


def _replay(path: Path, scenario_name: str, provider: str) -> list[StreamEvent]:
    scenario = SCENARIOS[scenario_name]
    client = OpenAiCompatibleProvider(
        DIALECTS[provider],
        api_key="replay-key-not-the-recorded-one",
        headers={SCENARIO_HEADER: scenario.name},
    )
    with make_vcr("none").use_cassette(str(path)), client:
        return list(client.stream(scenario.request_for(provider)))


@pytest.mark.parametrize(("provider", "scenario"), [("gemini", "tool_call"), ("glm", "unicode")])
def test_replay_through_a_default_provider_gives_the_recorded_events(
    recorded: tuple[Path, dict[str, list[RecordResult]], list[str]], provider: str, scenario: str
) -> None:
    _, results, _ = recorded
    result = next(r for r in results[provider] if r.scenario == scenario)
    assert result.events and result.error is None
    assert _replay(result.path, scenario, provider) == list(result.events)


def test_replay_of_a_recorded_error(
    recorded: tuple[Path, dict[str, list[RecordResult]], list[str]],
) -> None:
    _, results, _ = recorded
    result = next(r for r in results["mistral"] if r.scenario == "error_invalid_param")
    assert result.error is not None
    with pytest.raises(LlmError) as info:
        _replay(result.path, "error_invalid_param", "mistral")
    assert type(info.value) is type(result.error)
    assert info.value.status_code == result.error.status_code == 422


def test_replay_fails_loudly_on_an_unmatched_or_repeated_request(
    recorded: tuple[Path, dict[str, list[RecordResult]], list[str]],
) -> None:
    out, _, _ = recorded
    path = out / "openai" / "text.yaml"
    scenario = SCENARIOS["text"]
    drifted = scenario.request_for("openai")
    drifted = type(drifted)(messages=drifted.messages, max_tokens=999)
    client = OpenAiCompatibleProvider.openai(api_key="replay-key-not-the-recorded-one")
    with make_vcr("none").use_cassette(str(path)), client:
        with pytest.raises(CannotOverwriteExistingCassetteException) as info:
            list(client.stream(drifted))
        # vcrpy 9 also sets .reason ("no_match"); vcrpy 8 (Python 3.10) only the message.
        assert "max_completion_tokens" in str(info.value)
        list(client.stream(scenario.request_for("openai")))  # the recorded one plays once
        with pytest.raises(CannotOverwriteExistingCassetteException) as info:
            list(client.stream(scenario.request_for("openai")))
        assert getattr(info.value, "reason", "already_played") == "already_played"
    # Plain httpx too, and a missing cassette.
    with (
        make_vcr("none").use_cassette(str(out / "openai" / "nope.yaml")),
        httpx.Client() as c,
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        c.post("https://api.openai.com/v1/chat/completions", json={})
    assert not (out / "openai" / "nope.yaml").exists()


def test_recording_refuses_to_write_when_scrubbing_fails(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Scrubber, "request", lambda self, request: request)
    with pytest.raises(SecretLeakError) as info:
        record_cassettes(
            "openai",
            ["text"],
            base_url=emulator.base_url("openai"),
            cassette_dir=tmp_path,
            api_key=KEYS["openai"],
            progress=lambda line: None,
        )
    message = str(info.value)
    assert "openai/text.yaml" in message and "known_secret" in message
    assert KEYS["openai"] not in message
    assert list(tmp_path.rglob("*")) == []


def test_rerecording_replaces_the_cassette(emulator: Emulator, tmp_path: Path) -> None:
    actions = []
    for _ in range(2):
        (result,) = record_cassettes(
            "mistral",
            ["text_nonstream"],
            base_url=emulator.base_url("mistral"),
            cassette_dir=tmp_path,
            api_key=KEYS["mistral"],
            progress=lambda line: None,
            record_mode="all",
        )
        assert result.ok and result.response is not None
        actions.append(result.action)
    assert actions[0] == "written" and actions[1] in ("written", "unchanged")
    assert len(load_interactions(result.path)) == 1
    assert [p.name for p in result.path.parent.iterdir()] == ["text_nonstream.yaml"]


def test_unknown_names_and_missing_keys_fail_before_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"unknown provider 'nope'.*openai"):
        record_cassettes("nope", cassette_dir=tmp_path, progress=lambda line: None)
    with pytest.raises(ValueError, match=r"unknown scenario 'nope'.*text_nonstream"):
        record_cassettes(
            "openai", ["text", "nope"], cassette_dir=tmp_path, api_key="k" * 20, progress=print
        )
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        record_cassettes("openai", ["text"], cassette_dir=tmp_path, progress=print)
    assert list(tmp_path.iterdir()) == []


def test_make_vcr_configuration() -> None:
    recorder = make_vcr("none")
    assert recorder.record_mode == "none"
    assert recorder.serializer == SERIALIZER_NAME
    assert tuple(recorder.match_on) == (
        "method",
        "scheme",
        "host",
        "port",
        "path",
        "query",
        "json_body",
    )
    assert recorder.decode_compressed_response is True
    assert recorder.get_merged_config(path="x")["allow_playback_repeats"] is False
    with pytest.raises(ValueError, match="record mode"):
        make_vcr("sometimes")
