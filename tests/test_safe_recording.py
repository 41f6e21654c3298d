"""Safe recording: a cassette is replaced only by an exchange with the scenario's
expected outcome (a wrong --base-url leaves every file byte-identical), record
modes follow pytest-recording's names, and a key echoed back in any shape —
JSON escapes in SSE, percent-encoded, base64, a header, split across deltas, a
body that is not UTF-8 — never reaches a cassette (docs/RELIABILITY.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from vcr.request import Request

from provider_impl.cli import main
from provider_impl.emulator import Emulator
from provider_impl.recording import (
    REDACTED,
    Scrubber,
    SecretLeakError,
    SecretScanningPersister,
    load_interactions,
    record_cassettes,
    scan_paths,
)
from provider_impl.recording.secrets import find_secrets_in_cassette, stream_text
from provider_impl.recording.serializer import SERIALIZER, serialize
from provider_impl.redaction import PIECE

_NOISE = hashlib.sha512(b"recording key").digest()
KEY = "sk-proj-" + base64.urlsafe_b64encode(_NOISE).decode().rstrip("=")[:60]
QUIET = {"progress": lambda line: None}


def pieces(text: str) -> list[str]:
    return [p for p in (KEY[i : i + PIECE] for i in range(len(KEY) - PIECE + 1)) if p in text]


def assert_clean_cassette(path: Path) -> None:
    """No piece of the key in the file, nor in any body once decoded (JSON strings,
    percent escapes, SSE deltas joined), and the scanner agrees."""
    data = path.read_bytes()
    assert pieces(data.decode("latin-1")) == []
    for it in load_interactions(path):
        for body in (it.body, it.request_bytes or b""):
            text = body.decode("utf-8", "replace")
            assert pieces(text) == []
            assert all(pieces(v) == [] for v in stream_text(text).values())
            for line in text.split("\n"):
                if line.startswith("data: {"):
                    assert pieces(json.dumps(json.loads(line[6:]), ensure_ascii=False)) == []
        for name, value in it.raw_headers.items():
            assert pieces(f"{name}: {value}") == []
    assert scan_paths([path], known=[KEY]) == []


# -- a server that echoes the key ------------------------------------------------------


def _frame(content: str, finish: str | None = None, raw: str | None = None) -> str:
    delta = raw if raw is not None else json.dumps({"content": content})
    return (
        '{"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1,"model":"gpt-x",'
        f'"choices":[{{"index":0,"delta":{delta},"finish_reason":{json.dumps(finish)}}}]}}'
    )


def _escaped(text: str, every: bool) -> str:
    out = "".join(f"\\u{ord(c):04x}" if every or i == 3 else c for i, c in enumerate(text))
    return '{"content":"' + out + '"}'


def echo_frames(form: str, key: str) -> tuple[list[str], dict[str, str]]:
    """The SSE frames (and extra headers) that echo ``key`` in ``form``."""
    headers: dict[str, str] = {}
    if form == "one_escape":  # a single \\u escape inside the key
        frames = [_frame("", raw=_escaped(key, every=False))]
    elif form == "all_escaped":
        frames = [_frame("", raw=_escaped(key, every=True))]
    elif form == "percent":
        frames = [_frame("token=" + "".join(f"%{ord(c):02X}" for c in key))]
    elif form == "base64":
        frames = [_frame("basic " + base64.b64encode(f"user:{key}".encode()).decode())]
    elif form == "header":
        headers = {"x-echo-key": key, "x-echo-cut": key[5:40]}
        frames = [_frame("hello")]
    elif form == "halves":
        frames = [_frame(key[:40]), _frame(key[40:])]
    elif form == "split":  # deltas shorter than any piece: only the joined text shows it
        frames = [_frame(key[i : i + 5]) for i in range(0, len(key), 5)]
    elif form == "split_escaped":
        frames = [_frame("", raw=_escaped(key[i : i + 4], every=True)) for i in range(0, 68, 4)]
    else:
        raise AssertionError(form)
    return [*frames, _frame("", "stop"), "[DONE]"], headers


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        key = self.headers.get("authorization", "").removeprefix("Bearer ")
        form = self.path.split("/")[1]
        frames, extra = echo_frames(form, key)
        body = "".join(f"data: {f}\n\n" for f in frames).encode()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    # shutdown() waits for the loop's next poll (0.5 s by default).
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "form", ["one_escape", "all_escaped", "percent", "base64", "header", "halves"]
)
def test_an_echoed_key_is_scrubbed_from_the_cassette(echo: str, tmp_path: Path, form: str) -> None:
    (result,) = record_cassettes(
        "openai",
        ["text"],
        base_url=f"{echo}/{form}/v1",
        cassette_dir=tmp_path,
        api_key=KEY,
        record_mode="all",
        **QUIET,
    )
    assert result.ok and result.action == "written", result.outcome
    # The echo was there to scrub: the live events saw it.
    seen = "".join(getattr(e, "text", "") for e in result.events)
    assert form == "header" or seen
    assert_clean_cassette(result.path)
    assert REDACTED in result.path.read_text()


@pytest.mark.parametrize("form", ["split", "split_escaped"])
def test_a_key_split_across_deltas_is_refused(echo: str, tmp_path: Path, form: str) -> None:
    with pytest.raises(SecretLeakError) as info:
        record_cassettes(
            "openai",
            ["text"],
            base_url=f"{echo}/{form}/v1",
            cassette_dir=tmp_path,
            api_key=KEY,
            record_mode="all",
            **QUIET,
        )
    message = str(info.value)
    assert "deltas of choices.0.delta.content joined" in message
    assert str(tmp_path / "openai" / "text.yaml") in message
    assert pieces(message) == []
    assert list(tmp_path.rglob("*.yaml")) == []


def _cassette(body: bytes, headers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {
        "version": 1,
        "interactions": [
            {
                "request": {"method": "POST", "uri": "https://x/v1", "headers": {}, "body": b"{}"},
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": headers or {"content-type": ["text/event-stream"]},
                    "body": {"string": body},
                },
            }
        ],
    }


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32"])
def test_a_body_that_is_not_utf8_is_checked_decoded(tmp_path: Path, encoding: str) -> None:
    body = f"\ufeffdata: echo {KEY}\n\n".encode(encoding)  # a BOM: never UTF-8
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    # The persister refuses it as it stands ...
    persister = SecretScanningPersister([KEY])
    vcr_dict = {
        "requests": [Request("POST", "https://api.openai.com/v1/chat/completions", b"{}", {})],
        "responses": [_cassette(body)["interactions"][0]["response"]],
    }
    with pytest.raises(SecretLeakError, match="as utf-"):
        persister.save_cassette(tmp_path / "c.yaml", vcr_dict, SERIALIZER)
    assert not (tmp_path / "c.yaml").exists()
    # ... the scrubber masks it in the encoding it came in ...
    scrubbed = Scrubber([KEY]).response(_cassette(body)["interactions"][0]["response"])
    text = scrubbed["body"]["string"].decode(encoding)
    assert KEY not in text and REDACTED in text
    # ... and scan-secrets finds a key shape behind !!binary without being told the key.
    path = tmp_path / "binary.yaml"
    path.write_text(serialize(_cassette(body)))
    assert "!!binary" in path.read_text()
    assert [f.pattern for f in scan_paths([path])] == ["openai_key"]


def test_scan_secrets_decodes_like_the_recorder(tmp_path: Path) -> None:
    # Cassettes written by hand (or by an older recorder) with each hidden shape.
    frames = [f"data: {f}\n\n" for f in echo_frames("split", KEY)[0]]
    shapes = {
        "escaped": f"data: {_frame('', raw=_escaped(KEY, every=True))}\n\n",
        "percent": "data: " + "".join(f"%{ord(c):02X}" for c in KEY) + "\n\n",
        "split": "".join(frames),
    }
    for name, body in shapes.items():
        text = serialize(_cassette(body.encode()))
        assert KEY not in text
        assert find_secrets_in_cassette(text), name  # key-shaped, no known key needed
        (tmp_path / f"{name}.yaml").write_text(text)
    assert main(["scan-secrets", str(tmp_path)]) == 1
    assert {f.path.stem for f in scan_paths([tmp_path])} == set(shapes)


# -- safe recording ---------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_wrong_base_url_overwrites_nothing_and_exits_non_zero(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    good = record_cassettes(
        "openai", base_url=emulator.base_url("openai"), cassette_dir=tmp_path, api_key=KEY, **QUIET
    )
    assert good and all(r.ok and r.action == "written" for r in good)
    before = _tree(tmp_path)
    assert len(before) == len(good)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    wrong = emulator.base_url("openai") + "/wrong"  # every request is a 404
    argv = ["record", "--provider", "openai", "--base-url", wrong, "--cassette-dir", str(tmp_path)]
    assert main([*argv, "--record-mode", "all"]) == 1
    out = capsys.readouterr().out
    assert _tree(tmp_path) == before  # byte-identical, nothing added or left behind
    assert out.count("REFUSED: the existing cassette is untouched") == len(good)
    assert f"{len(good)} refused" in out and "--snapshot-update" not in out
    # error_invalid_param expects an InvalidRequest, and a 404 is one: still refused.
    assert "error_invalid_param" in out.split("FAILED")[1]
    # The default mode (once) does not even ask: every cassette exists.
    assert main(argv) == 0
    assert out.count("kept") == 0 and capsys.readouterr().out.count("kept (") == len(good)
    assert _tree(tmp_path) == before


def test_record_modes(emulator: Emulator, tmp_path: Path) -> None:
    base = emulator.base_url("mistral")
    kw: dict[str, Any] = {"base_url": base, "cassette_dir": tmp_path, "api_key": KEY, **QUIET}
    names = ["text", "tool_call"]
    (missing,) = record_cassettes("mistral", ["text"], record_mode="none", **kw)
    assert not missing.ok and missing.action == "missing" and not missing.path.exists()

    first = record_cassettes("mistral", ["text"], **kw)  # once: a missing one is written
    assert [r.action for r in first] == ["written"]
    text_path = first[0].path
    stamp = text_path.read_bytes()
    again = record_cassettes("mistral", names, **kw)  # once: only the missing one
    assert [r.action for r in again] == ["kept", "written"]
    assert text_path.read_bytes() == stamp

    replayed = record_cassettes("mistral", names, record_mode="none", **kw)
    assert [(r.action, r.ok) for r in replayed] == [("replayed", True)] * 2
    assert [r.events for r in replayed] == [r.events for r in [first[0], again[1]]]

    text_path.write_bytes(stamp.replace(b"Echo:", b"Ohce:"))  # an edited cassette
    (rewritten,) = record_cassettes("mistral", ["text"], record_mode="all", **kw)
    assert rewritten.action == "written" and b"Echo:" in text_path.read_bytes()
    (same,) = record_cassettes("mistral", ["text"], record_mode="all", **kw)
    assert same.action in ("unchanged", "written")
    (episodes,) = record_cassettes("mistral", ["text"], record_mode="new_episodes", **kw)
    assert episodes.ok and len(load_interactions(text_path)) >= 1
    with pytest.raises(ValueError, match="record mode"):
        record_cassettes("mistral", ["text"], record_mode="sometimes", **kw)


# -- loading -------------------------------------------------------------------------------

BOMB = """version: 1
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
interactions: [*f]
"""


def test_a_billion_laughs_cassette_is_refused_before_it_expands(tmp_path: Path) -> None:
    from provider_impl.recording import make_vcr
    from provider_impl.recording.serializer import deserialize

    with pytest.raises(ValueError, match="YAML alias"):
        deserialize(BOMB)
    path = tmp_path / "openai" / "text.yaml"
    path.parent.mkdir()
    path.write_text(BOMB)
    with pytest.raises(ValueError, match="YAML alias"):
        load_interactions(path)
    with pytest.raises(ValueError, match="YAML alias"), make_vcr("none").use_cassette(str(path)):
        pass
    # The scanner still reads it as text (and finds nothing), without expanding it.
    assert scan_paths([path]) == []
    assert main(["replay", str(path)]) == 2


def test_a_plain_cassette_still_loads() -> None:
    from provider_impl.recording.serializer import deserialize

    text = serialize(_cassette(b"data: [DONE]\n\n"))
    assert deserialize(text)["interactions"][0]["response"]["body"]["string"] == b"data: [DONE]\n\n"
