"""Issue 12: content parts, typed options, cache writes, per-model limits.

Every expectation comes from the dialect records (``content_parts``,
``request_options``, ``response_formats``, ``model_limits``) or from the real
request and reply bodies under ``cassettes/real/``; each built body is checked
against its provider's request contract and the project rules.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from provider_impl import (
    AudioPart,
    CompletionRequest,
    FilePart,
    ImagePart,
    InvalidRequest,
    Message,
    OpenAiCompatibleProvider,
    ResponseFormat,
    TextPart,
    decode_response,
)
from provider_impl.dialect_file import DialectFileError, dialect_from_toml, dialect_to_toml
from provider_impl.dialects import BUILTIN as BUILTIN_DIALECTS
from provider_impl.dialects import ProviderDialect, get_dialect
from provider_impl.harness import load_exchange
from provider_impl.payload import build_payload
from provider_impl.response import with_parsed_json
from provider_impl.schemas import rule_errors, schema_errors
from provider_impl.types import ContentPart

ROOT = Path(__file__).resolve().parent.parent
REAL = sorted((ROOT / "cassettes" / "real").glob("*/*.yaml"))
PNG = b"\x89PNG\r\n\x1a\n-not-really-an-image"
ASK = "Describe this."


def _build(dialect: ProviderDialect, request: CompletionRequest, stream: bool = False) -> Any:
    return build_payload(request, dialect, dialect.default_model, stream=stream)


def _contract_clean(dialect: ProviderDialect, body: dict[str, Any]) -> None:
    assert schema_errors(dialect.name, body) == []
    assert rule_errors(dialect, body) == []


def _ids(d: ProviderDialect) -> str:
    return d.name


PARTS: dict[str, ContentPart] = {
    "image": ImagePart(data=PNG, media_type="image/png"),
    "audio": AudioPart(b"ID3-audio-bytes", "mp3"),
    "file": FilePart(data=b"%PDF-1.4 ...", media_type="application/pdf", filename="a.pdf"),
}


# -- 1. content parts ----------------------------------------------------------------


@pytest.mark.parametrize("dialect", BUILTIN_DIALECTS, ids=_ids)
@pytest.mark.parametrize("kind", sorted(PARTS))
def test_a_media_part_is_built_where_the_record_takes_it_and_refused_elsewhere(
    dialect: ProviderDialect, kind: str
) -> None:
    request = CompletionRequest(messages=[Message.user([TextPart(ASK), PARTS[kind]])])
    if kind not in dialect.content_parts:
        with pytest.raises(InvalidRequest) as info:
            _build(dialect, request)
        assert info.value.field == "messages[0].content[1]"
        assert kind in str(info.value)
        return
    body = _build(dialect, request)
    content = body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": ASK}
    assert len(content) == 2 and content[1]["type"] in {
        "image_url",
        "input_audio",
        "file",
        "document_url",
    }
    _contract_clean(dialect, body)
    # The bytes go out base64-encoded, whole.
    assert base64.b64encode(_data(PARTS[kind])).decode() in json.dumps(content[1])


def _data(part: ContentPart) -> bytes:
    data = getattr(part, "data", None)
    assert isinstance(data, bytes)
    return data


def test_the_records_vision_flag_agrees_with_their_content_parts() -> None:
    for dialect in BUILTIN_DIALECTS:
        assert dialect.capabilities.vision == ("image" in dialect.content_parts), dialect.name


@pytest.mark.parametrize("dialect", BUILTIN_DIALECTS, ids=_ids)
def test_text_parts_go_everywhere_joined_where_content_is_text_only(
    dialect: ProviderDialect,
) -> None:
    request = CompletionRequest(messages=[Message.user([TextPart("one"), TextPart("two")])])
    body = _build(dialect, request)
    content = body["messages"][0]["content"]
    if "text" in dialect.content_parts:
        assert content == [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    else:  # the Claude proxy reads a string
        assert content == "one\ntwo"
    _contract_clean(dialect, body)


def _real_part_requests() -> list[tuple[Path, int, int]]:
    """(cassette, message, part) of every real media part a 2xx request carried."""
    found = []
    for path in REAL:
        exchange = load_exchange(path)
        body = exchange.request_body
        if exchange.status >= 300 or not isinstance(body, dict):
            continue
        for i, msg in enumerate(body.get("messages", [])):
            content = msg.get("content")
            for j, part in enumerate(content if isinstance(content, list) else []):
                if part.get("type") in {"image_url", "input_audio", "file", "document_url"}:
                    found.append((path, i, j))
    return found


def _part_from_wire(part: dict[str, Any]) -> ContentPart:
    """The typed part a real wire part stands for (the inverse of the builder)."""

    def from_url(url: str) -> tuple[str | None, bytes | None, str | None]:
        if not url.startswith("data:"):
            return url, None, None
        head, _, data = url.partition(",")
        return None, base64.b64decode(data), head[5:].split(";")[0]

    kind = part["type"]
    if kind == "image_url":
        image = part["image_url"]
        url, data, media = from_url(image["url"] if isinstance(image, dict) else image)
        detail = image.get("detail") if isinstance(image, dict) else None
        return ImagePart(url=url, data=data, media_type=media, detail=detail)
    if kind == "input_audio":
        audio = part["input_audio"]
        return AudioPart(base64.b64decode(audio["data"]), audio["format"])
    if kind == "file" and "file_id" in part["file"]:
        return FilePart(file_id=part["file"]["file_id"])
    if kind == "file":
        url, data, media = from_url(part["file"]["file_data"])
        return FilePart(data=data, url=url, media_type=media, filename=part["file"].get("filename"))
    url, data, media = from_url(part["document_url"])
    return FilePart(data=data, url=url, media_type=media, filename=part.get("document_name"))


def _dialect_of(path: Path) -> ProviderDialect:
    return get_dialect(path.parent.name)


@pytest.mark.parametrize(
    ("path", "i", "j"),
    _real_part_requests(),
    ids=lambda v: v.stem[-24:] if isinstance(v, Path) else str(v),
)
def test_real_media_parts_are_built_the_way_the_real_requests_sent_them(
    path: Path, i: int, j: int
) -> None:
    """Each image, audio and document part a real client sent (and its provider
    answered 2xx) comes out of the builder in the same shape."""
    real = load_exchange(path).request_body["messages"][i]["content"][j]
    dialect = _dialect_of(path)
    request = CompletionRequest(messages=[Message.user([_part_from_wire(real)])])
    built = _build(dialect, request)["messages"][0]["content"][0]
    assert built == real


def test_the_real_corpus_has_images_audio_and_documents() -> None:
    kinds = {
        (p.parent.name, load_exchange(p).request_body["messages"][i]["content"][j]["type"])
        for p, i, j in _real_part_requests()
    }
    assert {("openai", "image_url"), ("openai", "input_audio"), ("openai", "file")} <= kinds
    assert {("mistral", "image_url"), ("mistral", "document_url")} <= kinds
    assert ("openrouter", "image_url") in kinds


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        (Message.user([ImagePart()]), "messages[0].content[0]", "exactly one of url or data"),
        (
            Message.user([ImagePart(url="https://x/a.png", data=PNG, media_type="image/png")]),
            "messages[0].content[0]",
            "got url and data",
        ),
        (
            Message.user([ImagePart(data=PNG, media_type="text/plain")]),
            "messages[0].content[0].media_type",
            "image/",
        ),
        (Message.user([ImagePart(url="ftp://x/a.png")]), "messages[0].content[0].url", "URL"),
        (Message.user([AudioPart(b"x", "flac")]), "messages[0].content[0].format", "mp3, wav"),
        (Message.user([AudioPart(b"", "mp3")]), "messages[0].content[0].data", "non-empty"),
        (
            Message.user([FilePart(url="https://x/a.pdf")]),
            "messages[0].content[0].url",
            "data or a file_id",
        ),
        (Message.user([]), "messages[0].content", "at least one part"),
        (Message.user(["text"]), "messages[0].content[0]", "TextPart"),  # type: ignore[list-item]
        (
            Message(role="system", content=[ImagePart(url="https://x/a.png")]),
            "messages[0].content[0]",
            "only user messages",
        ),
    ],
)
def test_a_bad_part_is_refused_naming_it(message: Message, field: str, words: str) -> None:
    request = CompletionRequest(messages=[message])
    with pytest.raises(InvalidRequest) as info:
        _build(get_dialect("openai"), request)
    assert info.value.field == field
    assert words in str(info.value)


def test_a_file_id_and_a_url_go_where_their_forms_take_them() -> None:
    by_id = CompletionRequest(messages=[Message.user([FilePart(file_id="file-abc")])])
    assert _build(get_dialect("openai"), by_id)["messages"][0]["content"] == [
        {"type": "file", "file": {"file_id": "file-abc"}}
    ]
    assert _build(get_dialect("mistral"), by_id)["messages"][0]["content"] == [
        {"type": "file", "file_id": "file-abc"}
    ]
    by_url = CompletionRequest(messages=[Message.user([FilePart(url="https://x/a.pdf")])])
    assert _build(get_dialect("openrouter"), by_url)["messages"][0]["content"] == [
        {"type": "file", "file": {"file_data": "https://x/a.pdf"}}
    ]
    mistral = _build(get_dialect("mistral"), by_url)
    assert mistral["messages"][0]["content"] == [
        {"type": "document_url", "document_url": "https://x/a.pdf"}
    ]
    _contract_clean(get_dialect("mistral"), mistral)


# -- 2. typed options ----------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["title", "year"],
    "additionalProperties": False,
}
OPTIONS: dict[str, tuple[str, CompletionRequest]] = {
    "json_schema": (
        "response_format",
        CompletionRequest(
            messages=[Message.user("A book?")],
            response_format=ResponseFormat.json_schema("Book", SCHEMA),
        ),
    ),
    "json_object": (
        "response_format",
        CompletionRequest(
            messages=[Message.user("A book?")], response_format=ResponseFormat.json_object()
        ),
    ),
    "seed": ("seed", CompletionRequest(messages=[Message.user("Hi")], seed=42)),
    "logprobs": (
        "logprobs",
        CompletionRequest(messages=[Message.user("Hi")], logprobs=True, top_logprobs=2),
    ),
    "n": ("n", CompletionRequest(messages=[Message.user("Hi")], n=3)),
}


@pytest.mark.parametrize("dialect", BUILTIN_DIALECTS, ids=_ids)
@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_an_option_is_sent_under_the_records_key_or_refused_naming_it(
    dialect: ProviderDialect, case: str
) -> None:
    option, request = OPTIONS[case]
    key = dialect.request_options.get(option)
    kind = request.response_format.type if request.response_format else None
    if key is None or (kind is not None and kind not in dialect.response_formats):
        with pytest.raises(InvalidRequest) as info:
            _build(dialect, request)
        assert info.value.field in (option, f"{option}.type")
        return
    body = _build(dialect, request)
    _contract_clean(dialect, body)
    value = getattr(request, option)
    if option == "response_format":
        assert body[key]["type"] == kind
        if kind == "json_schema":
            assert body[key]["json_schema"] == {"name": "Book", "schema": SCHEMA, "strict": True}
    else:
        assert body[key] == value
    if key != option:  # Mistral's random_seed: never also the OpenAI name
        assert option not in body


def test_mistral_sends_the_seed_as_random_seed() -> None:
    mistral = get_dialect("mistral")
    assert mistral.request_options["seed"] == "random_seed"
    body = _build(mistral, OPTIONS["seed"][1])
    assert body["random_seed"] == 42 and "seed" not in body
    # The rules catch a body that uses the OpenAI name for it.
    assert any("random_seed" in e for e in rule_errors(mistral, {**body, "seed": 42}))


def test_real_json_schema_and_seed_requests_are_what_the_builder_sends() -> None:
    """The response formats and seeds real clients sent (2xx) come out of the builder
    unchanged from the typed options."""
    seen = set()
    for path in REAL:
        exchange = load_exchange(path)
        body = exchange.request_body
        if exchange.status >= 300 or not isinstance(body, dict):
            continue
        dialect = _dialect_of(path)
        rf = body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            spec = rf["json_schema"]
            typed = ResponseFormat.json_schema(
                spec["name"],
                spec["schema"],
                strict=spec.get("strict"),
                description=spec.get("description"),
            )
            request = CompletionRequest(messages=[Message.user("x")], response_format=typed)
            assert _build(dialect, request)["response_format"] == rf, path.name
            seen.add((dialect.name, "json_schema"))
        if isinstance(body.get("seed"), int):
            request = CompletionRequest(messages=[Message.user("x")], seed=body["seed"])
            assert _build(dialect, request)[dialect.request_options["seed"]] == body["seed"]
            seen.add((dialect.name, "seed"))
    assert {("openai", "json_schema"), ("openai", "seed"), ("openrouter", "seed")} <= seen


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (CompletionRequest(messages=[Message.user("x")], n=2), "n"),
        (CompletionRequest(messages=[Message.user("x")], logprobs=True), "logprobs"),
    ],
)
def test_n_above_one_and_logprobs_are_refused_for_streaming(
    request_: CompletionRequest, field: str
) -> None:
    openai = get_dialect("openai")
    _build(openai, request_, stream=False)
    with pytest.raises(InvalidRequest) as info:
        _build(openai, request_, stream=True)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"n": 0}, "n"),
        ({"top_logprobs": 3}, "top_logprobs"),  # without logprobs=True
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": ResponseFormat("json_schema", schema=SCHEMA)}, "response_format.name"),
        (
            {"response_format": ResponseFormat("json_schema", name="Book")},
            "response_format.schema",
        ),
        ({"response_format": ResponseFormat("json_object", name="x")}, "response_format.name"),
    ],
)
def test_a_bad_option_is_refused_naming_it(change: dict[str, Any], field: str) -> None:
    request = dataclasses.replace(CompletionRequest(messages=[Message.user("x")]), **change)
    with pytest.raises(InvalidRequest) as info:
        _build(get_dialect("openai"), request)
    assert info.value.field == field


def _reply(*choices: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "r1",
        "model": "gpt-4o",
        "choices": list(choices),
        "usage": {"prompt_tokens": 5, "completion_tokens": 7},
    }


def _choice(index: int, text: str, finish: str = "stop", **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"index": index, "message": message, "finish_reason": finish, **extra}


def test_several_choices_are_decoded_apart() -> None:
    body = _reply(_choice(1, "second", "length"), _choice(0, "first"), _choice(2, "third"))
    reply = decode_response(body, "openai")
    assert reply.text == "first"  # choice 0 in the response's own fields
    assert [(c.index, c.text, c.stop_reason.value) for c in reply.choices] == [
        (1, "second", "max_tokens"),
        (0, "first", "end_turn"),
        (2, "third", "end_turn"),
    ]
    assert reply.usage.output_tokens == 7
    assert decode_response(_reply(_choice(0, "only")), "openai").choices == ()


def test_logprobs_are_decoded_per_token_with_alternatives() -> None:
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.25,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
                    {"token": "Hey", "logprob": -1.5, "bytes": None},
                ],
            },
            {"token": "!", "logprob": -0.01, "bytes": [33], "top_logprobs": []},
        ]
    }
    reply = decode_response(_reply(_choice(0, "Hi!", logprobs=logprobs)), "openai")
    assert reply.logprobs is not None
    assert [(t.token, t.logprob, t.bytes) for t in reply.logprobs] == [
        ("Hi", -0.25, (72, 105)),
        ("!", -0.01, (33,)),
    ]
    assert [(t.token, t.logprob) for t in reply.logprobs[0].top_logprobs] == [
        ("Hi", -0.25),
        ("Hey", -1.5),
    ]
    assert reply.to_dict()["logprobs"][1]["token"] == "!"
    # "logprobs": null (what real replies send when none were asked for) is no logprobs.
    assert decode_response(_reply(_choice(0, "x", logprobs=None)), "openai").logprobs is None


def test_a_json_reply_is_parsed_and_other_text_is_not() -> None:
    reply = with_parsed_json(decode_response(_reply(_choice(0, '{"title": "Dune"}')), "openai"))
    assert reply.parsed == {"title": "Dune"}
    cut = with_parsed_json(decode_response(_reply(_choice(0, '{"title": "Du', "length")), "openai"))
    assert cut.parsed is None


def test_real_json_schema_replies_parse() -> None:
    parsed = 0
    for path in REAL:
        exchange = load_exchange(path)
        body = exchange.request_body
        if exchange.status >= 300 or exchange.is_sse or not isinstance(body, dict):
            continue
        rf = body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            reply = with_parsed_json(decode_response(exchange.body, _dialect_of(path)))
            required = rf["json_schema"]["schema"].get("required", [])
            if reply.text:
                assert isinstance(reply.parsed, dict), path.name
                assert set(required) <= set(reply.parsed), path.name
                parsed += 1
    assert parsed >= 2


# -- 4. cache writes ------------------------------------------------------------------


def test_cache_writes_are_decoded_from_every_real_reply_that_reports_them() -> None:
    reported = 0
    for path in REAL:
        exchange = load_exchange(path)
        if exchange.status >= 300:
            continue
        usage = _last_usage(exchange)
        written = (usage.get("prompt_tokens_details") or {}).get("cache_write_tokens")
        if written is None:
            written = usage.get("cache_creation_input_tokens")
        if written is None:
            continue
        dialect = _dialect_of(path)
        reply = _decode(exchange, dialect.name)
        assert reply.usage.cache_write_input_tokens == written, path.name
        reported += written > 0
    assert reported >= 2  # the two OpenRouter prompt-cache replies


def test_anthropic_style_cache_creation_is_a_cache_write() -> None:
    body = _reply(_choice(0, "x"))
    body["usage"] = {
        "input_tokens": 10,
        "output_tokens": 2,
        "cache_creation_input_tokens": 1_200,
        "cache_read_input_tokens": 300,
    }
    usage = decode_response(body, "openrouter").usage
    assert (usage.cache_write_input_tokens, usage.cache_read_input_tokens) == (1_200, 300)
    assert (
        "cache_write_input_tokens"
        not in decode_response(_reply(_choice(0, "x")), "openai").usage.to_dict()
    )


def _last_usage(exchange: Any) -> dict[str, Any]:
    if not exchange.is_sse:
        usage = json.loads(exchange.body).get("usage")
        return usage if isinstance(usage, dict) else {}
    found: dict[str, Any] = {}
    for line in exchange.body.decode().splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            chunk = json.loads(line[5:])
            usage = chunk.get("usage") if isinstance(chunk, dict) else None
            found = usage if isinstance(usage, dict) else found
    return found


def _decode(exchange: Any, dialect: str) -> Any:
    from provider_impl import decode_stream
    from provider_impl.response import response_from_events

    if exchange.is_sse:
        return response_from_events(decode_stream(exchange.body, dialect))
    return decode_response(exchange.body, dialect)


# -- 5. per-model limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "max_tokens"),
    [("gpt-4.1", 32_000), ("gpt-4.1-mini", 32_768), ("o3-mini", 50_000), ("gpt-5", 100_000)],
)
def test_openai_models_get_their_own_output_caps(model: str, max_tokens: int) -> None:
    openai = get_dialect("openai")
    assert openai.limits_for(model).max_output_tokens >= max_tokens
    request = CompletionRequest(messages=[Message.user("x")], model=model, max_tokens=max_tokens)
    body = _build(openai, request)
    assert body["max_completion_tokens"] == max_tokens
    _contract_clean(openai, body)


def test_a_model_cap_still_refuses_above_it_and_unknown_models_fall_back() -> None:
    openai = get_dialect("openai")
    over = CompletionRequest(messages=[Message.user("x")], model="gpt-4o", max_tokens=32_000)
    with pytest.raises(InvalidRequest) as info:
        _build(openai, over)
    assert info.value.field == "max_tokens" and "16384" in str(info.value)
    fallback = openai.limits_for("some-future-model")
    assert fallback.max_output_tokens == openai.capabilities.max_output_tokens
    assert fallback.max_context_tokens == openai.capabilities.max_context_tokens
    assert openai.limits_for("gpt-4o-2024-08-06").max_output_tokens == 16_384


# -- the record fields in dialect files ------------------------------------------------


def test_new_record_fields_round_trip_and_bad_ones_are_named() -> None:
    for dialect in BUILTIN_DIALECTS:
        back = dialect_from_toml(dialect_to_toml(dialect))
        for name in ("content_parts", "request_options", "response_formats", "model_limits"):
            assert getattr(back, name) == getattr(dialect, name), (dialect.name, name)
    text = dialect_to_toml(get_dialect("openai")).replace('"myname"', '"x"')
    bad_form = text.replace('image = "image_url"', 'image = "picture"')
    with pytest.raises(DialectFileError, match=r"content_parts\.image"):
        dialect_from_toml(bad_form)
    bad_option = text.replace('seed = "seed"', 'temperature2 = "seed"')
    with pytest.raises(DialectFileError, match=r"request_options\.temperature2"):
        dialect_from_toml(bad_option)
    bad_limit = text.replace("max_output_tokens = 32768", "max_output_tokens = 0", 1)
    with pytest.raises(DialectFileError, match="model_limits"):
        dialect_from_toml(bad_limit)


def test_a_provider_builds_a_multimodal_request() -> None:
    provider = OpenAiCompatibleProvider.openai(api_key="test-key")
    request = CompletionRequest(
        messages=[Message.user([TextPart(ASK), ImagePart(url="https://x/cat.png", detail="low")])]
    )
    body = provider.build_request(request)
    assert body["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://x/cat.png", "detail": "low"},
    }
