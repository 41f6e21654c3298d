"""Scrubbing of recorded interactions, before vcrpy keeps anything.

Credentials go by name (auth headers masked; cookies, organization/project
headers and a ``key=`` query parameter dropped) and by value (any occurrence of
a known key, whole or a piece of 12 characters or more, raw, percent-encoded,
JSON-escaped or in base64, in the URI, a header or a body; JSON bodies and SSE
frames are also walked after decoding their strings, and a body that is not
UTF-8 is scrubbed in each text encoding it decodes in). The URI of a request
made to a stand-in (the emulator, a proxy) is rewritten to the provider's real
endpoint, so the cassette shows where the request belongs and replays with a
default-constructed provider.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from provider_impl.dialects import DIALECTS
from provider_impl.recording.serializer import encode_json_body
from provider_impl.redaction import Redactor

__all__ = [
    "DROPPED_HEADERS",
    "DROPPED_QUERY_PARAMS",
    "MASKED_HEADERS",
    "REDACTED",
    "Scrubber",
    "UnscrubbableResponse",
    "real_uri",
]

REDACTED = "REDACTED"
# Credentials: kept, so a reader sees which header carried the key, but masked.
MASKED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-goog-api-key", "x-api-key", "api-key"}
)
# Dropped entirely (request and response).
DROPPED_HEADERS = frozenset(
    {"cookie", "set-cookie", "set-cookie2", "openai-organization", "openai-project"}
)
DROPPED_QUERY_PARAMS = frozenset({"key", "api_key", "apikey", "access_token"})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_EMULATOR_PATH = re.compile(r"^/(?P<provider>[a-z_]+)(?:/.*)?(?P<tail>/chat/completions)$")


def real_uri(uri: str, rewrite: Mapping[str, str] | None = None) -> str:
    """``uri`` with a stand-in base URL replaced by the provider's real one.

    ``rewrite`` maps base URLs (as given to the provider) to real ones. Without a
    match, a loopback ``http://127.0.0.1:PORT/<provider>/.../chat/completions``
    (the emulator's layout) becomes ``DIALECTS[provider].base_url + /chat/completions``.
    """
    for base, real in (rewrite or {}).items():
        base = base.rstrip("/")
        if uri == base or uri.startswith(base + "/") or uri.startswith(base + "?"):
            return real.rstrip("/") + uri[len(base) :]
    parts = urllib.parse.urlsplit(uri)
    if parts.hostname in _LOOPBACK:
        m = _EMULATOR_PATH.match(parts.path)
        if m and m.group("provider") in DIALECTS:
            real = DIALECTS[m.group("provider")].base_url.rstrip("/") + m.group("tail")
            return real + (f"?{parts.query}" if parts.query else "")
    return uri


def _walk(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value, REDACTED)
    if isinstance(value, list):
        return [_walk(v, redact) for v in value]
    if isinstance(value, dict):
        return {redact(k, REDACTED): _walk(v, redact) for k, v in value.items()}
    return value


# Other encodings a body that is not UTF-8 may be text in (strict: no guessing).
NON_UTF8_TEXT_ENCODINGS = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1")


class UnscrubbableResponse(Exception):
    """A recorded body is still compressed, so no secret in it could be found."""


class Scrubber:
    """vcrpy ``before_record_request`` / ``before_record_response`` hooks."""

    def __init__(
        self, secrets: Iterable[str] = (), rewrite_base_urls: Mapping[str, str] | None = None
    ) -> None:
        self._redact = Redactor(secrets)
        self._rewrite = dict(rewrite_base_urls or {})

    # -- pieces ---------------------------------------------------------------

    def scrub_text(self, text: str) -> str:
        """Known keys out of ``text``: whole, in pieces, behind percent or JSON escapes,
        in base64 (``provider_impl.redaction.Redactor``)."""
        return self._redact(text, REDACTED)

    def scrub_bytes(self, data: bytes) -> bytes:
        """Known secrets out of a body. JSON bodies and each SSE ``data:`` frame are
        also scrubbed after decoding their strings; a body that is not UTF-8 is
        scrubbed in each text encoding it decodes in."""
        if not self._redact:
            return data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return self._scrub_non_utf8(data)
        text = self.scrub_text(text)
        scrubbed = self._scrub_json(text)
        if scrubbed is None:  # an SSE body, or other text
            scrubbed = "\n".join(self._scrub_frame(line) for line in text.split("\n"))
        return scrubbed.encode("utf-8")

    def _scrub_json(self, text: str) -> str | None:
        """``text`` as JSON with every decoded string scrubbed; None if not JSON."""
        if text[:1] not in ("{", "["):
            return None
        try:
            parsed = json.loads(text)
            walked = _walk(parsed, self._redact)
        except (ValueError, RecursionError):
            return None
        if walked != parsed:  # a secret was hiding behind JSON escapes
            return encode_json_body(walked).decode("utf-8")
        return text

    def _scrub_frame(self, line: str) -> str:
        if not line.startswith("data:"):
            return line
        payload = line[5:].lstrip(" ")
        scrubbed = self._scrub_json(payload)
        if scrubbed is None or scrubbed is payload:
            return line
        return "data: " + scrubbed

    def _scrub_non_utf8(self, data: bytes) -> bytes:
        for encoding in NON_UTF8_TEXT_ENCODINGS:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            if text.encode(encoding) != data:
                continue  # not a faithful round trip: leave it to the final scan
            scrubbed = self.scrub_text(text)
            if scrubbed != text:
                data = scrubbed.encode(encoding)
        return data

    def scrub_uri(self, uri: str) -> str:
        parts = urllib.parse.urlsplit(uri)
        if parts.query:
            query = [
                (k, v)
                for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                if k.lower() not in DROPPED_QUERY_PARAMS
            ]
            parts = parts._replace(query=urllib.parse.urlencode(query))
            uri = urllib.parse.urlunsplit(parts)
        return real_uri(self.scrub_text(uri), self._rewrite)

    def _header_value(self, name: str, value: Any) -> Any:
        if name.lower() in MASKED_HEADERS:
            return REDACTED
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, bytes):
            return self.scrub_bytes(value)
        return value

    # -- vcrpy hooks -------------------------------------------------------

    def request(self, request: Any) -> Any:
        """Scrub a ``vcr.request.Request`` (vcrpy passes a deep copy)."""
        headers = request.headers
        for name in list(headers.keys()):
            if name.lower() in DROPPED_HEADERS:
                del headers[name]
            else:
                headers[name] = self._header_value(name, headers[name])
        uri = self.scrub_uri(request.uri)
        if uri != request.uri and "host" in headers:
            # The Host header named the stand-in (the emulator's port): name the real host.
            headers["host"] = urllib.parse.urlsplit(uri).netloc
        request.uri = uri
        body = request.body
        if isinstance(body, (bytes, bytearray)):
            request.body = self.scrub_bytes(bytes(body))
        elif isinstance(body, str):
            request.body = self.scrub_bytes(body.encode("utf-8"))
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """Scrub a vcrpy response dict (status, headers: name -> [values], body.string)."""
        response = copy.copy(response)
        for name, values in (response.get("headers") or {}).items():
            if name.lower() == "content-encoding" and any(v != "identity" for v in values):
                # vcrpy decodes gzip/deflate/br first; anything left cannot be scanned.
                raise UnscrubbableResponse(
                    f"the response body is {values} encoded and cannot be scrubbed; "
                    "record with an accept-encoding vcrpy can decode (gzip, deflate)"
                )
        headers: dict[str, list[Any]] = {}
        for name, values in (response.get("headers") or {}).items():
            if name.lower() in DROPPED_HEADERS:
                continue
            values = values if isinstance(values, list) else [values]
            headers[self.scrub_text(name)] = [self._header_value(name, v) for v in values]
        response["headers"] = headers
        body = response.get("body")
        if isinstance(body, Mapping):
            raw = body.get("string")
            if isinstance(raw, (bytes, bytearray)):
                response["body"] = {**body, "string": self.scrub_bytes(bytes(raw))}
            elif isinstance(raw, str):
                response["body"] = {
                    **body,
                    "string": self.scrub_bytes(raw.encode("utf-8")).decode("utf-8", "replace"),
                }
        return response
