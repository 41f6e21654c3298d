"""The error classifier for every body shape the providers send, retry-after parsing, and
garbage bodies that must never make the classifier itself raise."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import provider_impl
from provider_impl import (
    AuthenticationFailed,
    ContextLengthExceeded,
    DeserializationError,
    InvalidRequest,
    LlmError,
    Overloaded,
    RateLimited,
    StreamError,
    TransportError,
)
from provider_impl.classify import classify_error, error_from_payload, parse_retry_after
from provider_impl.dialects import GLM, MISTRAL, get_dialect
from provider_impl.errors import ConnectionFailed, ProviderError, RequestTimeout, UsageError


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# -- OpenAI -----------------------------------------------------------------------


def test_openai_401_invalid_key() -> None:
    err = classify_error(
        401,
        {"x-request-id": "req_123"},
        body(
            {
                "error": {
                    "message": "Incorrect API key provided: sk-abc***xyz.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        ),
        get_dialect("openai"),
    )
    assert type(err) is AuthenticationFailed
    assert (err.provider, err.status_code, err.code, err.request_id) == (
        "openai",
        401,
        "invalid_api_key",
        "req_123",
    )
    assert "Incorrect API key" in err.message


@pytest.mark.parametrize("status", [401, 403])
def test_openai_401_without_code_is_still_authentication(status: int) -> None:
    # "You didn't provide an API key": type invalid_request_error, code null
    err = classify_error(
        status,
        {},
        body(
            {
                "error": {
                    "message": "You didn't provide an API key. You need to provide your "
                    "API key in an Authorization header using Bearer auth.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        ),
        get_dialect("openai"),
    )
    assert type(err) is AuthenticationFailed


def test_429_with_a_broad_invalid_request_type_is_still_rate_limited() -> None:
    err = classify_error(
        429,
        {"retry-after": "3"},
        body({"error": {"message": "Too many requests", "type": "invalid_request_error"}}),
    )
    assert type(err) is RateLimited and err.retry_after == 3.0


def test_openai_404_model_not_found() -> None:
    err = classify_error(
        404,
        {},
        body(
            {
                "error": {
                    "message": "The model `gpt-9` does not exist or you do not have access to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            }
        ),
        get_dialect("openai"),
    )
    assert type(err) is InvalidRequest
    assert err.code == "model_not_found"
    assert "gpt-9" in err.message


def test_openai_400_context_length_exceeded_parses_the_numbers() -> None:
    msg = (
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130512 tokens. Please reduce the length of the messages."
    )
    err = classify_error(
        400,
        {},
        body(
            {
                "error": {
                    "message": msg,
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            }
        ),
        get_dialect("openai"),
    )
    assert type(err) is ContextLengthExceeded
    assert (err.max_tokens, err.requested_tokens) == (128000, 130512)
    assert err.code == "context_length_exceeded"


def test_context_overflow_recognised_by_message_alone() -> None:
    msg = (
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens."
    )
    err = classify_error(
        400, {}, body({"error": {"message": msg, "type": "invalid_request_error"}})
    )
    assert type(err) is ContextLengthExceeded
    assert (err.max_tokens, err.requested_tokens) == (8192, 9000)


RATE_BODY = body(
    {
        "error": {
            "message": "Rate limit reached for gpt-4o",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
)


def test_openai_429_retry_after_ms() -> None:
    err = classify_error(
        429, {"retry-after-ms": "1500", "retry-after": "2"}, RATE_BODY, get_dialect("openai")
    )
    assert type(err) is RateLimited
    assert err.retry_after == pytest.approx(1.5)
    assert err.code == "rate_limit_exceeded"


def test_openai_429_retry_after_seconds() -> None:
    err = classify_error(429, {"Retry-After": "7"}, RATE_BODY, get_dialect("openai"))
    assert isinstance(err, RateLimited)
    assert err.retry_after == 7.0


def test_openai_429_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    err = classify_error(429, {"retry-after": when}, RATE_BODY, get_dialect("openai"))
    assert isinstance(err, RateLimited)
    assert err.retry_after is not None
    assert 27 <= err.retry_after <= 31


def test_429_without_retry_headers() -> None:
    err = classify_error(429, {}, RATE_BODY)
    assert isinstance(err, RateLimited)
    assert err.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])
def test_server_errors_are_overloaded(status: int) -> None:
    err = classify_error(status, {}, body({"error": {"message": "oops", "type": "server_error"}}))
    assert type(err) is Overloaded
    assert err.status_code == status


# -- Gemini: a JSON array ---------------------------------------------------------------


def gemini(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return body([{"error": err}])


def test_gemini_resource_exhausted_with_retry_info() -> None:
    raw = gemini(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generate_content_free_tier_requests"}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"},
        ],
    )
    err = classify_error(429, {}, raw, get_dialect("gemini"))
    assert type(err) is RateLimited
    assert err.retry_after == 13.0
    assert err.code == "RESOURCE_EXHAUSTED"
    assert "quota" in err.message


def test_gemini_retry_after_header_wins_over_retry_info() -> None:
    raw = gemini(
        429,
        "RESOURCE_EXHAUSTED",
        "quota",
        [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}],
    )
    err = classify_error(429, {"retry-after": "4"}, raw, get_dialect("gemini"))
    assert isinstance(err, RateLimited) and err.retry_after == 4.0


@pytest.mark.parametrize("delay", ["-3s", "nans", "infs", "soon", "1e999s"])
def test_gemini_unusable_retry_delay_is_none(delay: str) -> None:
    raw = gemini(429, "RESOURCE_EXHAUSTED", "quota", [{"retryDelay": delay}])
    err = classify_error(429, {}, raw)
    assert isinstance(err, RateLimited) and err.retry_after is None


def test_gemini_resource_exhausted_even_without_429() -> None:
    err = classify_error(None, {}, gemini(429, "RESOURCE_EXHAUSTED", "quota"))
    assert isinstance(err, RateLimited)


def test_gemini_invalid_argument() -> None:
    raw = gemini(
        400,
        "INVALID_ARGUMENT",
        'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
    )
    err = classify_error(400, {}, raw, get_dialect("gemini"))
    assert type(err) is InvalidRequest
    assert err.code == "INVALID_ARGUMENT"
    assert "foo" in err.message


def test_gemini_bad_key_is_authentication_failed() -> None:
    # Google answers a wrong key with 400 INVALID_ARGUMENT; the ErrorInfo reason says why.
    raw = gemini(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    )
    err = classify_error(400, {}, raw, get_dialect("gemini"))
    assert type(err) is AuthenticationFailed


def test_gemini_unavailable() -> None:
    err = classify_error(503, {}, gemini(503, "UNAVAILABLE", "The model is overloaded."))
    assert type(err) is Overloaded
    assert err.code == "UNAVAILABLE"


def test_gemini_token_count_context_error() -> None:
    raw = gemini(
        400,
        "INVALID_ARGUMENT",
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
    )
    err = classify_error(400, {}, raw, get_dialect("gemini"))
    assert type(err) is ContextLengthExceeded
    assert (err.max_tokens, err.requested_tokens) == (1048576, 1200000)


def test_gemini_permission_denied() -> None:
    err = classify_error(403, {}, gemini(403, "PERMISSION_DENIED", "denied"))
    assert type(err) is AuthenticationFailed


# -- Mistral -------------------------------------------------------------------------------


def test_mistral_rate_limit_code_1300_with_retry_after() -> None:
    raw = body(
        {
            "object": "error",
            "message": "Requests rate limit exceeded",
            "type": "rate_limited",
            "param": None,
            "code": "1300",
        }
    )
    err = classify_error(429, {"Retry-After": "2"}, raw, get_dialect("mistral"))
    assert type(err) is RateLimited
    assert err.retry_after == 2.0
    assert err.code == "1300"
    assert err.message == "Requests rate limit exceeded"


def test_mistral_1300_is_rate_limited_by_code_not_status() -> None:
    raw = body({"object": "error", "message": "limit", "type": "x", "code": "1300"})
    assert isinstance(classify_error(400, {}, raw, MISTRAL), RateLimited)


DETAIL = [
    {
        "type": "extra_forbidden",
        "loc": ["body", "max_completion_tokens"],
        "msg": "Extra inputs are not permitted",
        "input": 1024,
    }
]


def test_mistral_422_detail_names_the_field() -> None:
    err = classify_error(422, {}, body({"detail": DETAIL}), get_dialect("mistral"))
    assert type(err) is InvalidRequest
    assert err.field == "max_completion_tokens"
    assert err.code == "extra_forbidden"
    assert "max_completion_tokens" in err.message


def test_mistral_422_detail_inside_object_error_names_the_field() -> None:
    raw = body(
        {
            "object": "error",
            "message": {"detail": DETAIL},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    )
    err = classify_error(422, {}, raw, get_dialect("mistral"))
    assert type(err) is InvalidRequest
    assert err.field == "max_completion_tokens"
    assert "Extra inputs are not permitted" in err.message


def test_mistral_plain_unauthorized_with_request_id() -> None:
    raw = body({"message": "Unauthorized", "request_id": "0123abcd" * 4})
    err = classify_error(401, {}, raw, get_dialect("mistral"))
    assert type(err) is AuthenticationFailed
    assert err.message == "Unauthorized"
    assert err.request_id == "0123abcd" * 4


def test_mistral_context_error_numbers() -> None:
    raw = body(
        {
            "object": "error",
            "message": "Prompt contains 140000 tokens and 0 draft "
            "tokens, too large for model with 131072 maximum context length",
            "type": "invalid_request_error",
            "code": "3051",
        }
    )
    err = classify_error(400, {}, raw, MISTRAL)
    assert type(err) is ContextLengthExceeded
    assert (err.max_tokens, err.requested_tokens) == (131072, 140000)


# -- GLM: string codes, known only through the dialect -------------------------------------


def glm(code: str, message: str) -> bytes:
    return body({"error": {"code": code, "message": message}})


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "1001", AuthenticationFailed),
        (400, "1001", AuthenticationFailed),  # the code decides, not the status
        (400, "1261", ContextLengthExceeded),
        (429, "1302", RateLimited),
        (429, "1303", RateLimited),
        (429, "1305", RateLimited),
        (429, "1113", ProviderError),  # in arrears: not a rate limit, retrying will not help
        (400, "1210", InvalidRequest),
    ],
)
def test_glm_codes(status: int, code: str, cls: type) -> None:
    err = classify_error(status, {}, glm(code, "某个错误 some error"), get_dialect("glm"))
    assert type(err) is cls
    assert err.code == code
    assert err.provider == "glm"


def test_glm_codes_are_unknown_without_the_dialect_table() -> None:
    # "1261" means nothing generically: a 400 with it is just an invalid request
    err = classify_error(400, {}, glm("1261", "Prompt exceeds max length"))
    assert type(err) is not RateLimited
    assert isinstance(classify_error(200, {}, glm("1302", "x")), ProviderError)
    assert isinstance(classify_error(200, {}, glm("1302", "x"), GLM), RateLimited)


# -- Anthropic / Claude proxy ------------------------------------------------------------------


def test_anthropic_overloaded_529() -> None:
    raw = body({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    err = classify_error(529, {"request-id": "req_011abc"}, raw, get_dialect("claude_subscription"))
    assert type(err) is Overloaded
    assert err.code == "overloaded_error"
    assert err.request_id == "req_011abc"


@pytest.mark.parametrize(
    ("etype", "status", "cls"),
    [
        ("authentication_error", 401, AuthenticationFailed),
        ("permission_error", 403, AuthenticationFailed),
        ("rate_limit_error", 429, RateLimited),
        ("invalid_request_error", 400, InvalidRequest),
        ("api_error", 500, Overloaded),
    ],
)
def test_anthropic_error_types(etype: str, status: int, cls: type) -> None:
    raw = body({"type": "error", "error": {"type": etype, "message": "m"}})
    assert type(classify_error(status, {}, raw)) is cls


def test_anthropic_prompt_too_long() -> None:
    raw = body(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "prompt is too long: 210000 tokens > 200000 maximum",
            },
        }
    )
    err = classify_error(400, {}, raw)
    assert type(err) is ContextLengthExceeded
    assert (err.max_tokens, err.requested_tokens) == (200000, 210000)


# -- status fallbacks and garbage ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (404, InvalidRequest),
        (413, ContextLengthExceeded),
        (422, InvalidRequest),
        (429, RateLimited),
        (500, Overloaded),
        (503, Overloaded),
        (418, ProviderError),
        (999, ProviderError),
    ],
)
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b"\xff\xfe\x00garbage",
        b"null",
        b"42",
        b'"just a string"',
        b"[]",
        b"[1, 2]",
        b'{"error": 5}',
        b'{"error": []}',
        b'{"error": {"message": {"nested": true}, "code": [1], "status": {}}}',
        b'{"detail": 5}',
        b'{"detail": "not allowed"}',
        b'{"message": {"detail": "x"}}',
        b'{"error": {"details": "x", "status": 7}}',
        b"[" * 50_000,
        b'{"a":' * 50_000,
    ],
    ids=lambda r: repr(r[:20]),
)
def test_garbage_bodies_never_raise(status: int, cls: type, raw: bytes) -> None:
    err = classify_error(status, {"retry-after": "soon"}, raw, None)
    assert isinstance(err, LlmError)
    assert type(err) is cls
    assert err.status_code == status
    assert isinstance(err.message, str) and err.message
    str(err), repr(err)


def test_empty_body_message_mentions_status() -> None:
    err = classify_error(503, {}, b"")
    assert "503" in str(err)


def test_html_body_text_is_kept_in_the_message() -> None:
    err = classify_error(502, {}, b"<html>Bad Gateway</html>")
    assert "Bad Gateway" in err.message


def test_parsed_json_and_text_bodies_are_accepted() -> None:
    parsed = {"error": {"message": "slow", "code": "rate_limit_exceeded"}}
    assert isinstance(classify_error(429, {}, parsed), RateLimited)
    assert isinstance(classify_error(429, {}, json.dumps(parsed)), RateLimited)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=300), status=st.integers(100, 599))
def test_classifier_never_raises_on_bytes(raw: bytes, status: int) -> None:
    assert isinstance(classify_error(status, {}, raw), LlmError)


# -- retry-after -------------------------------------------------------------------------


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"Retry-After-Ms": "0"}) == 0.0
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": " 2.5 "}) == 2.5
    date = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(42)
    past = email.utils.formatdate(now - 42, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0
    assert parse_retry_after({"retry-after-ms": "100", "retry-after": "9"}) == 0.1
    # a broken ms header falls back to retry-after
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0


@pytest.mark.parametrize("value", ["-1", "soon", "", "nan", "Mon, 99 Foo 2024 99:99:99 GMT"])
def test_parse_retry_after_garbage_is_none(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) is None
    assert parse_retry_after({"retry-after-ms": value}) is None


def test_parse_retry_after_without_headers() -> None:
    assert parse_retry_after({}) is None


# -- the hierarchy ------------------------------------------------------------------------


def test_every_error_class_is_public_and_an_llm_error() -> None:
    import provider_impl.errors as errors_module

    classes = [
        ProviderError,
        DeserializationError,
        StreamError,
        RateLimited,
        Overloaded,
        AuthenticationFailed,
        ContextLengthExceeded,
        InvalidRequest,
        TransportError,
        ConnectionFailed,
        RequestTimeout,
        UsageError,
    ]
    for cls in classes:
        assert issubclass(cls, LlmError)
        assert cls.__name__ in errors_module.__all__
    for cls in (LlmError, UsageError, InvalidRequest, RateLimited, TransportError, StreamError):
        assert getattr(provider_impl, cls.__name__) is cls  # what callers catch most
    # Local misuse is an InvalidRequest (code written for local validation keeps
    # working) and a ValueError, and never a provider's answer.
    assert issubclass(UsageError, InvalidRequest) and issubclass(UsageError, ValueError)
    assert not issubclass(AuthenticationFailed, UsageError)
    assert issubclass(ConnectionFailed, TransportError)
    assert issubclass(RequestTimeout, TransportError)


def test_error_fields_str_and_repr() -> None:
    err = RateLimited(
        "slow down",
        retry_after=3.0,
        provider="openai",
        status_code=429,
        code="rate_limit_exceeded",
        request_id="req_9",
    )
    assert (err.provider, err.status_code, err.code, err.request_id, err.retry_after) == (
        "openai",
        429,
        "rate_limit_exceeded",
        "req_9",
        3.0,
    )
    text = str(err)
    for part in ("openai", "429", "rate_limit_exceeded", "slow down", "req_9"):
        assert part in text
    assert repr(err).startswith("RateLimited(")
    assert "slow down" in repr(err)


def test_in_band_error_defaults_to_stream_error() -> None:
    err = error_from_payload({"error": {"message": "mid-stream failure"}}, None)
    assert type(err) is StreamError
    assert err.status_code is None
    typed = error_from_payload({"error": {"message": "x", "code": "1302"}}, GLM)
    assert type(typed) is RateLimited
