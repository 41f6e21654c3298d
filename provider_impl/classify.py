"""The one classifier for every provider's error bodies, driven by tables.

``classify_error(status, headers, body, dialect)`` reads the body's shape (five
are known, ``_extract``), then decides the kind from tables, in this order:

1. the body's code, reason, status name and type (in that order), looked up in
   the dialect's ``error_codes`` and then in ``_GENERIC_CODES``; a broad
   ``invalid_request`` code is narrowed by the message (``_CONTEXT_HINT``) and
   by the HTTP status (``_NARROWED_BY_STATUS``);
2. a message that speaks of the context window;
3. the HTTP status (``_STATUS_KINDS``, after RFC 9110 section 15 and RFC 6585).

The kind gives the class (``errors.ERROR_CLASSES``); ``_EXTRAS`` fills the fields
a class carries (``retry_after``, ``max_tokens``, ``field``).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from provider_impl.dialects import ProviderDialect
from provider_impl.errors import (
    ERROR_CLASSES,
    ContextLengthExceeded,
    ErrorKind,
    InvalidRequest,
    LlmError,
    Overloaded,
    ProviderError,
    RateLimited,
    StreamError,
)

__all__ = ["classify_error", "error_from_payload", "parse_retry_after"]

# Codes whose meaning does not depend on the provider: OpenAI's string codes and
# types, Google's RPC status names, Anthropic's error types. A dialect's own
# table (``ProviderDialect.error_codes``) is looked up first.
_GENERIC_CODES: Mapping[str, ErrorKind] = {
    "context_length_exceeded": "context_length",
    "string_above_max_length": "context_length",
    "rate_limit_exceeded": "rate_limited",
    "rate_limit_error": "rate_limited",
    "rate_limited": "rate_limited",
    "insufficient_quota": "provider",
    "invalid_api_key": "auth",
    "authentication_error": "auth",
    "permission_error": "auth",
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "auth",
    "API_KEY_INVALID": "auth",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "UNAVAILABLE": "overloaded",
    "overloaded_error": "overloaded",
    "INVALID_ARGUMENT": "invalid_request",
    "NOT_FOUND": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "model_not_found": "invalid_request",
    "invalid_request_error": "invalid_request",
    "extra_forbidden": "invalid_request",
}

_CONTEXT_PATTERNS = (
    # OpenAI: "maximum context length is 128000 tokens. However, your messages resulted in N"
    re.compile(r"maximum context length is (?P<max>\d+).*?resulted in (?P<req>\d+)", re.S),
    # Gemini: "The input token count (N) exceeds the maximum number of tokens allowed (M)"
    re.compile(r"input token count \((?P<req>\d+)\) exceeds the maximum.*?\((?P<max>\d+)\)", re.S),
    # Mistral: "Prompt contains N tokens ... too large for model with M maximum context length"
    re.compile(r"[Pp]rompt contains (?P<req>\d+) tokens.*?with (?P<max>\d+) maximum context", re.S),
    # Anthropic / Claude proxies: "prompt is too long: N tokens > M maximum"
    re.compile(r"prompt is too long: (?P<req>\d+) tokens > (?P<max>\d+)", re.S),
    # OpenRouter: "maximum context length is M tokens. However, you requested about N tokens"
    re.compile(r"maximum context length is (?P<max>\d+).*?you requested about (?P<req>\d+)", re.S),
)
_CONTEXT_HINT = re.compile(
    r"context length|context window|prompt is too long|too many tokens|input token count"
    r"|exceeds the maximum number of tokens|prompt exceeds max length|超长",
    re.I,
)

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "cf-ray")


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if 0 <= value < float("inf"):  # "inf", "1e400" or "nan" are no wait
                return value
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return value if 0 <= value < float("inf") else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _message_of(value: Any) -> str | None:
    """A readable message from a string, or Mistral's ``{"detail": [...]}`` validation list."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("detail"), list):
        return _detail_message(value["detail"])
    if value is not None:
        return json.dumps(value, ensure_ascii=False)[:500]
    return None


def _detail_message(details: list[Any]) -> str:
    parts = []
    for item in details:
        if isinstance(item, dict):
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
            parts.append(f"{where}: {item.get('msg', '')} ({item.get('type', '')})".strip())
        else:
            parts.append(str(item))
    return "; ".join(parts)


def _detail(details: Any, key: str) -> str | None:
    """The first string ``key`` among a list of detail objects: FastAPI's ``type``
    (Mistral's 422), Google's ``ErrorInfo`` ``reason`` ("API_KEY_INVALID") and
    ``RetryInfo`` ``retryDelay`` ("13s")."""
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and isinstance(item.get(key), str):
                return str(item[key])
    return None


def _retry_delay_from_details(details: Any) -> float | None:
    """Google's ``RetryInfo`` delay in seconds, when it is a finite, non-negative one."""
    delay = _detail(details, "retryDelay")
    if delay is None:
        return None
    try:
        value = float(delay.rstrip("s"))
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


class _Fields:
    __slots__ = ("code", "details", "message", "param", "reason", "request_id", "status", "type")

    def __init__(self) -> None:
        self.message: str | None = None
        self.code: str | None = None
        self.type: str | None = None
        self.status: str | None = None
        self.reason: str | None = None  # Google's ErrorInfo reason, e.g. API_KEY_INVALID
        self.request_id: str | None = None
        self.details: Any = None
        self.param: str | None = None  # OpenAI's "param": the request field refused


def _extract(payload: Any) -> _Fields:
    """Pull message, code, type and status out of any of the five body shapes."""
    f = _Fields()
    if isinstance(payload, list):  # Gemini: [{"error": {...}}]
        payload = next((p for p in payload if isinstance(p, dict)), None)
    if not isinstance(payload, dict):
        return f
    f.request_id = _as_str(payload.get("request_id"))
    err = payload.get("error")
    if isinstance(err, dict):  # OpenAI, Gemini, GLM, Anthropic
        f.message = _message_of(err.get("message"))
        f.code = _as_str(err.get("code"))
        f.type = _as_str(err.get("type"))
        f.status = _as_str(err.get("status"))
        f.details = err.get("details")
        f.param = _as_str(err.get("param")) or None
        f.reason = _detail(f.details, "reason")
        if f.request_id is None:
            f.request_id = _as_str(err.get("request_id"))
    elif isinstance(err, str):
        f.message = err
    elif "detail" in payload:  # FastAPI-style 422 (Mistral)
        detail = payload["detail"]
        f.message = _detail_message(detail) if isinstance(detail, list) else _message_of(detail)
        f.type = _detail(detail, "type")
        f.details = detail
    else:  # Mistral: {"object": "error", "message": ..., "type": ..., "code": ...}
        f.message = _message_of(payload.get("message"))
        f.code = _as_str(payload.get("code"))
        f.type = _as_str(payload.get("type"))
        msg = payload.get("message")
        if isinstance(msg, dict):
            f.details = msg.get("detail")
            f.type = _detail(f.details, "type") or f.type
    return f


# What a status says when the body's codes say nothing. RFC 9110 section 15.5
# (401, 403, 400, 404, 405, 409, 413 content too large, 415, 422) and 15.6
# (500, 502, 503, 504); RFC 6585 section 4 (429); 529 is Anthropic's "overloaded".
_STATUS_KINDS: Mapping[int, ErrorKind] = {
    401: "auth",
    403: "auth",
    429: "rate_limited",
    413: "context_length",
    **dict.fromkeys((400, 404, 405, 409, 415, 422), "invalid_request"),
    **dict.fromkeys((500, 502, 503, 504, 529), "overloaded"),
}

# A broad "invalid_request" code does not override what these statuses say
# (OpenAI's 401s carry type invalid_request_error and code null).
_NARROWED_BY_STATUS: Mapping[int, ErrorKind] = {401: "auth", 403: "auth", 429: "rate_limited"}


def _looks_like_context(message: str | None) -> bool:
    return bool(message and _CONTEXT_HINT.search(message))


def _parse_body(body: bytes | str | Any) -> Any:
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(body, str):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # deep nesting too
            return body.strip() or None
    return body


def _redact_all(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_all(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redact_all(v, redact) for k, v in value.items()}
    return value


def _field_of(fields: _Fields) -> str | None:
    details = fields.details
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and isinstance(item.get("loc"), list):
                loc = [str(p) for p in item["loc"] if p != "body"]
                return ".".join(loc) or None
    return fields.param


def _kind_for(
    fields: _Fields, status: int | None, codes: Mapping[str, ErrorKind]
) -> ErrorKind | None:
    for key in (fields.code, fields.reason, fields.status, fields.type):
        if key is None:
            continue
        kind = codes.get(key) or _GENERIC_CODES.get(key)
        if kind is None:
            continue
        if kind == "invalid_request":
            # "invalid_request_error" also covers context overflows: the message decides.
            if _looks_like_context(fields.message):
                return "context_length"
            return _NARROWED_BY_STATUS.get(status, kind) if status is not None else kind
        return kind
    if _looks_like_context(fields.message):
        return "context_length"
    return _STATUS_KINDS.get(status) if status is not None else None


def _rate_limited_extras(message: str, fields: _Fields, headers: Mapping[str, str]) -> Any:
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = _retry_delay_from_details(fields.details)
    return {"retry_after": retry_after}


def _overloaded_extras(message: str, fields: _Fields, headers: Mapping[str, str]) -> Any:
    return {"retry_after": parse_retry_after(headers)}


def _context_extras(message: str, fields: _Fields, headers: Mapping[str, str]) -> Any:
    for pattern in _CONTEXT_PATTERNS:
        m = pattern.search(message)
        if m:
            return {"max_tokens": int(m.group("max")), "requested_tokens": int(m.group("req"))}
    return {}


def _invalid_extras(message: str, fields: _Fields, headers: Mapping[str, str]) -> Any:
    return {"field": _field_of(fields)}


# The fields each class carries beyond LlmError's, read from the message, the
# body and the headers.
_EXTRAS: Mapping[type[LlmError], Callable[[str, _Fields, Mapping[str, str]], Any]] = {
    RateLimited: _rate_limited_extras,
    Overloaded: _overloaded_extras,
    ContextLengthExceeded: _context_extras,
    InvalidRequest: _invalid_extras,
}


def classify_error(
    status_code: int | None,
    headers: Mapping[str, str],
    body: bytes | str | Any,
    dialect: ProviderDialect | None = None,
    *,
    default: type[LlmError] = ProviderError,
    redact: Callable[[str], str] | None = None,
) -> LlmError:
    """Turn an HTTP error (or an in-band error frame) into the narrowest ``LlmError``.

    ``body`` may be raw bytes, text or already-parsed JSON; a body of any shape,
    or none, gives an error rather than raising. ``dialect`` supplies the
    provider's name and its own code table; without one, only the shared
    tables apply.
    """
    payload = _parse_body(body)
    if redact is not None:
        # Before anything is cut short: a cut key would no longer match whole.
        try:
            payload = _redact_all(payload, redact)
        except RecursionError:  # nested deeper than the interpreter can walk
            payload = None
        headers = {k: redact(v) for k, v in headers.items()}
    try:
        fields = _extract(payload)
    except RecursionError:  # parsed JSON nested deeper than the interpreter can walk
        fields = _Fields()
    kind = _kind_for(fields, status_code, dialect.error_codes if dialect is not None else {})
    cls = ERROR_CLASSES[kind] if kind is not None else default
    message = fields.message
    if message is None:
        message = payload if isinstance(payload, str) else None
    if not message:
        message = f"HTTP {status_code}" if status_code is not None else "provider error"
    if redact is not None:
        message = redact(message)
    lowered = {k.lower(): v for k, v in headers.items()}
    request_id = fields.request_id or next(
        (lowered[h] for h in _REQUEST_ID_HEADERS if h in lowered), None
    )
    extras = _EXTRAS.get(cls)
    return cls(
        message,
        provider=dialect.name if dialect is not None else None,
        status_code=status_code,
        # Gemini's int code only repeats the HTTP status; its status name is the real code.
        code=fields.status or fields.code or fields.type,
        request_id=request_id,
        **(extras(message, fields, headers) if extras is not None else {}),
    )


def error_from_payload(payload: Any, dialect: ProviderDialect | None = None) -> LlmError:
    """An in-band error frame inside a 200 stream: typed by its code, else ``StreamError``."""
    return classify_error(None, {}, payload, dialect, default=StreamError)
