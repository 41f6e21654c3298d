"""Keeping API keys out of error text, error fields, cause chains and log records.

A provider or proxy may echo the key back: whole, cut short, percent-encoded,
behind JSON ``\\u`` escapes, or in a response header. ``Redactor`` masks every
run of ``PIECE`` or more characters of a key, in the text as written and in the
text with its percent and JSON escapes decoded, so a truncated echo is masked as
well as a whole one (docs/RELIABILITY.md, "Secrets").
"""

from __future__ import annotations

import base64
import bisect
import logging
import re
import threading
import weakref
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MASK",
    "MIN_SECRET_LEN",
    "PIECE",
    "DecodedView",
    "Redactor",
    "install_log_filter",
    "redact_exception",
    "register_secret",
]

MASK = "***"
# Shorter "keys" would mask ordinary words; real keys are far longer.
MIN_SECRET_LEN = 8
# No run of this many characters of a key may survive (a cut echo keeps a piece).
PIECE = 12
_ANCHOR = PIECE // 2  # every PIECE-long run of a key holds one aligned anchor

# One decoded character each: a JSON escape, a percent escape. Plain runs map 1:1.
_ESCAPE = re.compile(r"\\u[0-9A-Fa-f]{4}|\\[\s\S]|%[0-9A-Fa-f]{2}")
_JSON_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
# Header names that carry credentials, whatever their value looks like.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key"}
)


def _decode_escape(token: str) -> str:
    if token[0] == "%":
        return chr(int(token[1:], 16))
    if token[1] == "u" and len(token) == 6:
        return chr(int(token[2:], 16))
    return _JSON_SIMPLE.get(token[1], token[1])


class DecodedView:
    """``text`` with its escapes decoded, and the way back to raw offsets."""

    __slots__ = ("_dec", "_esc", "_raw", "decoded")

    def __init__(self, text: str) -> None:
        parts: list[str] = []
        self._dec: list[int] = []  # decoded start of each segment
        self._raw: list[int] = []  # raw start of each segment
        self._esc: list[int] = []  # raw length of an escape segment, 0 for a plain run
        pos = dec = 0
        for m in _ESCAPE.finditer(text):
            if m.start() > pos:
                self._add(dec, pos, 0)
                parts.append(text[pos : m.start()])
                dec += m.start() - pos
            self._add(dec, m.start(), m.end() - m.start())
            parts.append(_decode_escape(m.group()))
            dec += 1
            pos = m.end()
        if pos < len(text):
            self._add(dec, pos, 0)
            parts.append(text[pos:])
        self.decoded = "".join(parts)

    def _add(self, dec: int, raw: int, esc: int) -> None:
        self._dec.append(dec)
        self._raw.append(raw)
        self._esc.append(esc)

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """The raw span that decodes to ``decoded[start:end]``."""
        i = bisect.bisect_right(self._dec, start) - 1
        raw_start = self._raw[i] + (0 if self._esc[i] else start - self._dec[i])
        j = bisect.bisect_right(self._dec, end - 1) - 1
        last = self._raw[j] + (self._esc[j] if self._esc[j] else end - self._dec[j])
        return raw_start, last


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def base64_forms(secret: str) -> list[str]:
    """The part of any base64 text (standard or URL-safe) that can only come from
    ``secret``, at each of the three alignments it may start at."""
    data = secret.encode("utf-8")
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        # Drop characters that also depend on what precedes or follows the key.
        head = (offset * 8 + 5) // 6
        tail = ((offset + len(data)) * 8) // 6
        core = encoded[head:tail]
        if len(core) >= MIN_SECRET_LEN:
            forms.append(core)
            forms.append(core.replace("+", "-").replace("/", "_"))
    return forms


class Redactor:
    """Masks known secrets in text: whole, in pieces of ``PIECE`` characters or more,
    behind percent or JSON escapes, and in base64."""

    __slots__ = ("_b64", "_secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LEN},
            key=len,
            reverse=True,
        )
        self._b64 = sorted(
            {f for s in self._secrets for f in base64_forms(s)}, key=len, reverse=True
        )

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where a secret (or a piece of one) stands in ``text``, merged and sorted."""
        if not self._secrets or not text:
            return []
        found: list[tuple[int, int]] = []
        if "%" in text or "\\" in text:
            view = DecodedView(text)
            found += [view.raw_span(s, e) for s, e in self._plain_spans(view.decoded)]
        else:
            found += self._plain_spans(text)
        for form in self._b64:
            pos = text.find(form)
            while pos != -1:
                found.append((pos, pos + len(form)))
                pos = text.find(form, pos + 1)
        return _merge(found)

    def _plain_spans(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        for secret in self._secrets:
            if len(secret) < PIECE:
                pos = text.find(secret)
                while pos != -1:
                    found.append((pos, pos + len(secret)))
                    pos = text.find(secret, pos + 1)
                continue
            for anchor in range(0, len(secret) - _ANCHOR + 1, _ANCHOR):
                chunk = secret[anchor : anchor + _ANCHOR]
                pos = text.find(chunk)
                while pos != -1:
                    # Grow the match both ways while text and secret agree.
                    lo, k = pos, anchor
                    while lo > 0 and k > 0 and text[lo - 1] == secret[k - 1]:
                        lo, k = lo - 1, k - 1
                    hi, k = pos + _ANCHOR, anchor + _ANCHOR
                    while hi < len(text) and k < len(secret) and text[hi] == secret[k]:
                        hi, k = hi + 1, k + 1
                    if hi - lo >= PIECE:
                        found.append((lo, hi))
                    pos = text.find(chunk, pos + 1)
        return found

    def __call__(self, text: str, mask: str = MASK) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        out, pos = [], 0
        for s, e in spans:
            out.append(text[pos:s])
            out.append(mask)
            pos = e
        out.append(text[pos:])
        return "".join(out)

    def value(self, value: Any) -> Any:
        """``value`` with every string in it redacted (str, bytes, lists, tuples, dicts)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("latin-1")
            red = self(text)
            return value if red == text else red.encode("latin-1")
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.value(v) for v in value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        return value


def _safe_request(request: Any, redact: Redactor) -> Any:
    """A copy of an ``httpx.Request`` without credentials: the exceptions httpx raises
    keep the request, and with it the ``Authorization`` header."""
    import httpx

    headers = [
        (name, "[redacted]" if name.lower() in CREDENTIAL_HEADERS else redact(value))
        for name, value in request.headers.items()
    ]
    return httpx.Request(request.method, redact(str(request.url)), headers=headers)


def redact_exception(exc: BaseException, redact: Redactor) -> None:
    """Redact ``exc`` and every exception in its cause and context chain, in place:
    arguments, string attributes (``message``, ``field``, ``code`` …), and the
    request httpx keeps on its exceptions (its credential headers dropped)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        _redact_one(e, redact)
        todo.extend((e.__cause__, e.__context__))


def _redact_one(exc: BaseException, redact: Redactor) -> None:
    if not redact:
        return
    exc.args = tuple(redact.value(a) for a in exc.args)
    for name, value in list(vars(exc).items()):
        if name == "_request" and value is not None:
            setattr(exc, name, _safe_request(value, redact))
        elif isinstance(value, (str, bytes, list, tuple, dict)):
            red = redact.value(value)
            if red != value:
                setattr(exc, name, red)


# -- logs -------------------------------------------------------------------------------

_lock = threading.Lock()
_live: dict[str, int] = {}  # secret -> how many holders use it
_dead: list[str] = []  # released by holders, not yet counted down
_redactor = Redactor(())
# httpx logs requests; httpcore and hpack log response headers at DEBUG.
LOGGERS = (
    "provider_impl",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack",
    "hpack.hpack",
    "hpack.table",
    # vcrpy, while recording, logs whole responses at INFO and DEBUG.
    "vcr.cassette",
    "vcr.matchers",
    "vcr.stubs",
    "vcr.stubs.httpx_stubs",
    "vcr.request",
)


def _release(secret: str) -> None:
    # A finalizer may run inside any allocation, even with _lock held by this
    # thread: it only queues (list.append is atomic); _refresh counts down.
    _dead.append(secret)


def _refresh(added: str | None = None) -> None:
    """Apply queued releases (and one addition); caller holds ``_lock``."""
    global _redactor
    if added is not None:
        _live[added] = _live.get(added, 0) + 1
    while _dead:
        secret = _dead.pop()
        count = _live.get(secret, 0) - 1
        if count > 0:
            _live[secret] = count
        else:
            _live.pop(secret, None)
    _redactor = Redactor(tuple(_live))


def register_secret(holder: object, secret: str) -> None:
    """Mask ``secret`` in the log records of ``LOGGERS`` while ``holder`` lives."""
    if len(secret) < MIN_SECRET_LEN:
        return
    install_log_filter()
    with _lock:
        _refresh(secret)
    weakref.finalize(holder, _release, secret)


class _LogFilter(logging.Filter):
    """Rewrites a record whose text holds a live secret. Filters run only for
    records a logger's level lets through, so this costs nothing when DEBUG is off."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _dead and _lock.acquire(blocking=False):
            try:
                _refresh()
            finally:
                _lock.release()
        redact = _redactor
        if not redact:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a broken format string: logging reports it itself
            return True
        red = redact(text)
        if red != text:
            record.msg, record.args = red, None
        return True


_FILTER = _LogFilter()
_installed = False


def install_log_filter() -> None:
    """Attach the redacting filter to the loggers that may see a key (idempotent)."""
    global _installed
    if _installed:
        return
    with _lock:
        if not _installed:
            for name in LOGGERS:
                logging.getLogger(name).addFilter(_FILTER)
            _installed = True
