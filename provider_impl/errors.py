"""The ``LlmError`` hierarchy: every failure a caller of this library can see.

Two families, as h11 separates its own errors: ``UsageError`` says the library
was misused here, before anything was sent (a request its dialect cannot
carry, a missing key, a bad option); every other class says what the provider
or the network did. ``provider_impl.classify`` turns error bodies into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from provider_impl.redaction import Redactor, redact_exception

__all__ = [
    "ERROR_CLASSES",
    "AuthenticationFailed",
    "ConnectionFailed",
    "ContextLengthExceeded",
    "DeserializationError",
    "ErrorKind",
    "InvalidRequest",
    "LlmError",
    "Overloaded",
    "ProviderError",
    "RateLimited",
    "RequestTimeout",
    "ResponseTooLarge",
    "StreamError",
    "TransportError",
    "UsageError",
]


class LlmError(Exception):
    """Base of every failure a caller of this library can see."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"[{self.provider}]")
        if self.status_code is not None:
            parts.append(str(self.status_code))
        if self.code:
            parts.append(f"({self.code})")
        parts.append(self.message)
        if self.request_id:
            parts.append(f"[request id {self.request_id}]")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, provider={self.provider!r}, "
            f"status_code={self.status_code!r}, code={self.code!r}, "
            f"request_id={self.request_id!r})"
        )

    def _redact(self, secret: str | Redactor) -> None:
        """Remove ``secret`` (a key, or a ``Redactor``) from every field, whole or in
        pieces, here and along the cause chain; a provider may echo a key back."""
        redact = secret if isinstance(secret, Redactor) else Redactor([secret])
        redact_exception(self, redact)


class ProviderError(LlmError):
    """The provider failed in a way no narrower class describes."""


class DeserializationError(LlmError):
    """The provider sent something that is not the JSON it should be."""


class ResponseTooLarge(DeserializationError):
    """A whole body (a reply, an error body) passed the client's ``max_body_bytes``
    cap, counted after decompression; ``limit`` is that cap. Reading stopped there."""

    def __init__(self, message: str, *, limit: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.limit = limit


class StreamError(LlmError):
    """The stream broke: truncated, reset, an error frame, or a failure finish reason."""


class RateLimited(LlmError):
    """Too many requests. ``retry_after`` is in seconds when the provider said;
    ``reset_at`` is the Unix time the limit ends when the provider named one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        reset_at: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.reset_at = reset_at


class Overloaded(LlmError):
    """The provider is overloaded or failing server-side (500/502/503/529).

    ``retry_after`` is set when the response said when to come back (a 503
    with ``Retry-After``).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthenticationFailed(LlmError):
    """The provider refused the key: wrong, revoked or not allowed (a key that is
    missing or malformed here is a ``UsageError``, before any I/O)."""


class ContextLengthExceeded(LlmError):
    """The prompt is longer than the model's context window."""

    def __init__(
        self,
        message: str,
        *,
        max_tokens: int | None = None,
        requested_tokens: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.max_tokens = max_tokens
        self.requested_tokens = requested_tokens


class InvalidRequest(LlmError):
    """The request was refused as malformed; ``field`` names what was wrong when known.

    Raised as itself for a provider's refusal (a 4xx), and as its subclass
    ``UsageError`` when the library refused the request before sending it."""

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field


class UsageError(InvalidRequest, ValueError):
    """The library was misused here, before any I/O: a request the dialect cannot
    carry (a part, an option, a tool list), a missing or malformed API key, an
    unknown provider, a bad option or per-call argument, a URL or proxy variable
    that cannot be used. Never a provider's answer: a 4xx stays ``InvalidRequest``.

    It is an ``InvalidRequest`` (code written for local validation keeps working)
    and a ``ValueError`` (the Python convention for a bad argument); a wrong
    *type* of argument still raises ``TypeError``.
    """


class TransportError(LlmError):
    """The HTTP transport failed; ``__cause__`` holds the original exception."""


class ConnectionFailed(TransportError):
    """Could not connect, or the connection dropped before a response arrived."""


class RequestTimeout(TransportError):
    """A connect, read, write or pool timeout."""


ErrorKind = Literal[
    "auth", "rate_limited", "overloaded", "context_length", "invalid_request", "provider"
]

#: The class each kind of provider failure becomes (``ProviderDialect.error_codes``
#: maps a provider's raw codes to these kinds).
ERROR_CLASSES: Mapping[ErrorKind, type[LlmError]] = {
    "auth": AuthenticationFailed,
    "rate_limited": RateLimited,
    "overloaded": Overloaded,
    "context_length": ContextLengthExceeded,
    "invalid_request": InvalidRequest,
    "provider": ProviderError,
}
