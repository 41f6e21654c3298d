"""The secret scanner: every provider's key shape is found, provider ids are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from provider_impl.recording.secrets import (
    SecretFinding,
    SecretLeakError,
    find_secrets,
    scan_paths,
)

OPENAI = "sk-live-" + "Q7wE9rT1yU3iO5pA2sD4fG6hJ8kL0zXcVbNm1234"
OPENAI_PROJ = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0_u1V2w3X4-y5Z6"
ANTHROPIC = "sk-ant-api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7-_AbCdEf"
GOOGLE = "AIza" + "SyD3f9K2mN8pQ4rS7tU1vW5xY6zA0bC-d_E"
MISTRAL = "Xk4mP9qR2sT7vW1yZ3bC5dF8gH0jK6nL"
ZHIPU = "3f2a9c8b7e6d5f4a3b2c1d0e9f8a7b6c.Ab3De5Gh7Jk9Mn2P"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


def test_fixture_shapes() -> None:
    assert len(GOOGLE) == 4 + 35
    assert len(MISTRAL) == 32
    assert ZHIPU.index(".") == 32 and len(ZHIPU) == 32 + 1 + 16


@pytest.mark.parametrize(
    ("secret", "pattern"),
    [
        (OPENAI, "openai_key"),
        (OPENAI_PROJ, "openai_key"),
        (ANTHROPIC, "anthropic_key"),
        (GOOGLE, "google_api_key"),
        (MISTRAL, "mistral_key"),
        (ZHIPU, "zhipu_key"),
        (BEARER, "bearer_token"),
    ],
)
@pytest.mark.parametrize(
    "template",
    [
        "{s}",
        'authorization: "{s}"',
        "      - {s}\n",
        'data: {{"echo":"{s}"}}',
        "https://example.com/v1/models?key={s}&alt=sse",
        "x-goog-api-key: {s}",
    ],
)
def test_each_key_shape_is_found(secret: str, pattern: str, template: str) -> None:
    text = "first line\nsecond line\n" + template.format(s=secret)
    findings = find_secrets(text)
    assert [f.pattern for f in findings] == [pattern]
    f = findings[0]
    assert f.line == 3
    line = text.split("\n")[2]
    assert f.column == line.index(secret if pattern != "bearer_token" else "Bearer") + 1
    # The finding and its string never show the secret, nor a long piece of it.
    # The fixed, public prefix of the shape may show; nothing after it may.
    prefix = {"anthropic_key": "sk-ant-api03-", "openai_key": "sk-proj-", "bearer_token": "Bearer "}
    body = secret.removeprefix(prefix.get(pattern, ""))
    for shown in (f.excerpt, str(f), repr(f)):
        assert secret not in shown
        for i in range(len(body) - 11):
            assert body[i : i + 12] not in shown
    assert "***" in f.excerpt


def test_known_secret_is_found_in_any_shape() -> None:
    key = "not-shaped-like-anything-7"
    text = f'{{"a":"x{key}y"}}\nquoted: {key.replace("-", "%2D")}\n'
    findings = find_secrets(text, known=[key])
    # Whole on line 1; on line 2 with its dashes percent-encoded (which quote() leaves).
    assert [(f.pattern, f.line) for f in findings] == [("known_secret", 1), ("known_secret", 2)]
    assert all(key not in f.excerpt and "%2D" not in f.excerpt for f in findings)
    # Percent-encoded form of a key with characters that get encoded.
    odd = "my/secret+key=value"
    found = find_secrets("uri: https://h/p?token=my%2Fsecret%2Bkey%3Dvalue", known=[odd])
    assert [f.pattern for f in found] == ["known_secret"]
    # JSON-escaped slash.
    found = find_secrets('{"k":"my\\/secret+key=value"}', known=[odd])
    assert [f.pattern for f in found] == ["known_secret"]


def test_known_key_is_reported_once_even_when_it_also_has_a_shape() -> None:
    findings = find_secrets(f"authorization: Bearer {OPENAI}", known=[OPENAI])
    assert [f.pattern for f in findings] == ["known_secret"]
    assert OPENAI not in findings[0].excerpt


def test_short_known_values_are_ignored() -> None:
    assert find_secrets("a dummy key: abc", known=["abc", ""]) == []


def test_two_secrets_on_one_line_are_both_masked() -> None:
    text = f"{GOOGLE} and {MISTRAL}"
    findings = find_secrets(text)
    assert [f.pattern for f in findings] == ["google_api_key", "mistral_key"]
    for f in findings:
        assert GOOGLE not in f.excerpt and MISTRAL not in f.excerpt
        assert GOOGLE[4:16] not in f.excerpt and MISTRAL[:12] not in f.excerpt
    assert findings[1].column == len(GOOGLE) + len(" and ") + 1


@pytest.mark.parametrize(
    "benign",
    [
        # Mistral: 32-hex chunk ids, 9-char tool call ids.
        '"id":"7b9ca0036a7148d9b31648d5292abe34"',
        '"id":"9F9D90210F194076ABEEE223863EAAF0"',
        '"id":"ATcpCKul3"',
        # GLM: timestamp + hex ids and request ids.
        '"id":"20260313050307df155ecf3e9f4961","request_id":"202607010739425543ff9439144b2c"',
        '"id":"2026070107394255ab43ff9439144b2c"',
        # OpenAI: completion, call, request ids and fingerprints.
        '"id":"chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh","system_fingerprint":"fp_c65dcdfc85"',
        '"id":"call_DNYTawLBoN8fj3KN6qU9N1Ou"',
        "x-request-id: req_daa415dadaed42ebb31f67ce3c7ce52b",
        '"obfuscation":"emsADySc"',
        # Anthropic/gateway ids.
        '"id":"toolu_01YE6sgGyYMPQGoV1qg3qzZS","gen":"gen_01KKHTP3C6Z9A2M6JKBJ4A9FS6"',
        # UUIDs, masked headers, short tokens.
        "mistral-correlation-id: 768c76e6-016c-c35b-6b0a-e77be246f988",
        "authorization: Bearer REDACTED",
        "authorization: Bearer dummy-key",
        "sk-short",
        "task-Xk4mP9qR2sT7vW1yZ3bC5dF8gH0jK6nLpp",
        # Base64 (a thought signature): long runs inside it are not keys.
        "signature: CiQBVKhc7w+Xk4mP9qR2sT7vW1yZ3bC5dF8gH0jK6nL/Ab3De5Gh7Jk9Mn2PQr5tUv8xYz1bC==",
        "Xk4mP9qR2sT7vW1yZ3bC5dF8gH0jK6nLq",  # 33 characters: not the 32-character shape
        "abcdefghijklmnopqrstuvwxyzABCDEF",  # no digit
    ],
)
def test_provider_ids_and_benign_strings_are_not_flagged(benign: str) -> None:
    assert find_secrets(benign) == []


def test_scan_paths_recurses_and_names_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    clean = tmp_path / "a" / "clean.yaml"
    clean.write_text("nothing: here\n")
    leaky = tmp_path / "a" / "b" / "leak.yaml"
    leaky.write_text(f"ok: 1\nkey: {GOOGLE}\n")
    (tmp_path / ".git" / "objects").write_text(OPENAI)  # skipped
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00" + MISTRAL.encode() + b"\x00\x81")

    findings = scan_paths([tmp_path])
    assert sorted((f.path, f.pattern, f.line) for f in findings) == sorted(
        [(leaky, "google_api_key", 2), (binary, "mistral_key", 1)]
    )
    assert all(GOOGLE not in str(f) and MISTRAL not in str(f) for f in findings)
    assert str(findings[0]).startswith(str(findings[0].path))
    assert scan_paths([clean]) == []
    assert [f.pattern for f in scan_paths([clean], known=["nothing: here"])] == ["known_secret"]


def test_scan_paths_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_paths([tmp_path / "nope"])


def test_secret_leak_error_names_cassette_and_pattern_but_not_the_secret() -> None:
    findings = find_secrets(f"x: {ANTHROPIC}\n", known=[])
    err = SecretLeakError(Path("cassettes/openai/text.yaml"), findings)
    message = str(err)
    assert "cassettes/openai/text.yaml" in message
    assert "anthropic_key" in message
    assert ANTHROPIC not in message and ANTHROPIC[7:20] not in message
    assert err.findings == findings
    assert isinstance(err.findings[0], SecretFinding)
