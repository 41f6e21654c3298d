"""Find API keys and bearer tokens in text and files, without ever printing one.

``find_secrets`` looks for the bytes of known keys and for strings shaped like
the keys of the five providers (and bearer tokens). The recorder runs it over
every serialized cassette before writing; ``provider-impl scan-secrets PATH``
runs ``scan_paths`` over files and directories. A finding names the pattern,
the line and column, and an excerpt in which the secret is masked.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provider_impl.recording.scrub import NON_UTF8_TEXT_ENCODINGS
from provider_impl.recording.serializer import deserialize
from provider_impl.redaction import DecodedView, Redactor, base64_forms

__all__ = [
    "MIN_KNOWN_SECRET_LEN",
    "PATTERNS",
    "SecretFinding",
    "SecretLeakError",
    "find_secrets",
    "find_secrets_in_bytes",
    "find_secrets_in_cassette",
    "find_secrets_in_stream",
    "known_secret_forms",
    "scan_paths",
    "stream_text",
]

# Known values shorter than this are not looked for (they would match everywhere).
MIN_KNOWN_SECRET_LEN = 8

_T = r"A-Za-z0-9_\-"  # token characters


@dataclass(frozen=True)
class _Pattern:
    name: str
    regex: re.Pattern[str]
    # How much of a match may be shown: the fixed, non-secret prefix.
    shown_prefix: re.Pattern[str] | None = None


def _pattern(name: str, regex: str, shown_prefix: str | None = None) -> _Pattern:
    shown = None if shown_prefix is None else re.compile(shown_prefix)
    return _Pattern(name, re.compile(regex), shown)


PATTERNS: tuple[_Pattern, ...] = (
    _pattern("anthropic_key", rf"(?<![{_T}])sk-ant-[{_T}]{{20,}}", r"sk-ant-(?:[a-z]+\d\d-)?"),
    _pattern(
        "openai_key", rf"(?<![{_T}])sk-(?!ant-)[{_T}]{{20,}}", "sk-(?:proj-|svcacct-|admin-)?"
    ),
    _pattern("google_api_key", rf"(?<![{_T}+/])AIza[{_T}]{{35}}", "AIza"),
    _pattern("zhipu_key", r"(?<![A-Za-z0-9])[0-9a-f]{32}\.[A-Za-z0-9]{16}(?![A-Za-z0-9])"),
    _pattern("bearer_token", r"(?i:bearer)[ \t]+[A-Za-z0-9._~+/=\-]{20,}", r"(?i:bearer)[ \t]+"),
    # Mistral keys: 32 alphanumerics mixing upper case, lower case and digits. A
    # lowercase-hex id (Mistral's chunk ids, GLM's timestamp+hex ids) has no
    # upper case; a run inside a longer token or base64 text is not a key.
    _pattern(
        "mistral_key",
        rf"(?<![{_T}+/.])"
        r"(?=[A-Za-z0-9]{0,31}[A-Z])(?=[A-Za-z0-9]{0,31}[a-z])(?=[A-Za-z0-9]{0,31}[0-9])"
        rf"[A-Za-z0-9]{{32}}(?![{_T}+/=])",
    ),
)


@dataclass(frozen=True)
class SecretFinding:
    """One secret-shaped string: where it is and what it looks like, masked."""

    pattern: str
    line: int
    column: int
    excerpt: str
    path: Path | None = None

    def __str__(self) -> str:
        where = f"{self.path}:" if self.path is not None else "line "
        return f"{where}{self.line}:{self.column}: {self.pattern}: {self.excerpt}"


class SecretLeakError(Exception):
    """A cassette would have been written with a secret in it; nothing was written."""

    def __init__(self, path: str | os.PathLike[str], findings: Sequence[SecretFinding]) -> None:
        self.path = Path(path)
        self.findings = list(findings)
        patterns = sorted({f.pattern for f in self.findings})
        where = "; ".join(f"line {f.line}: {f.pattern}: {f.excerpt}" for f in self.findings[:5])
        more = f" (and {len(self.findings) - 5} more)" if len(self.findings) > 5 else ""
        super().__init__(
            f"refusing to write cassette {self.path}: {len(self.findings)} secret(s) survived "
            f"scrubbing ({', '.join(patterns)}): {where}{more}. Nothing was written."
        )


def known_secret_forms(known: Iterable[str]) -> list[str]:
    """Each known secret as it may appear in text: raw, percent-encoded, JSON-escaped,
    in base64 (``find_secrets`` also finds pieces of it and mixed escapes)."""
    forms: list[str] = []
    for secret in known:
        if not secret or len(secret) < MIN_KNOWN_SECRET_LEN:
            continue
        for form in (
            secret,
            urllib.parse.quote(secret, safe=""),
            json.dumps(secret)[1:-1],
            json.dumps(secret)[1:-1].replace("/", "\\/"),
            *base64_forms(secret),
        ):
            if form not in forms:
                forms.append(form)
    # Longest first, so a form that contains another is replaced whole.
    return sorted(forms, key=len, reverse=True)


def _mask(text: str, pattern: _Pattern | None) -> str:
    prefix = ""
    if pattern is not None and pattern.shown_prefix is not None:
        m = pattern.shown_prefix.match(text)
        prefix = m.group(0) if m else ""
    return f"{prefix}***[{len(text)} chars]"


def find_secrets(text: str, known: Iterable[str] = ()) -> list[SecretFinding]:
    """Every known secret and every key- or token-shaped string in ``text``.

    Known secrets are found whole or as a piece of ``PIECE`` characters or more,
    raw, behind percent or JSON ``\\u`` escapes (even one escaped character), or
    in base64; key shapes in the text as written, with its escapes decoded, and
    inside base64 runs. Overlapping matches are reported once (a known secret
    first, then the most specific pattern). The findings never contain the secret.
    """
    spans: list[tuple[int, int, str, _Pattern | None]] = []

    def overlaps(start: int, end: int) -> bool:
        return any(start < e and s < end for s, e, _, _ in spans)

    for start, end in Redactor(known).spans(text):
        spans.append((start, end, "known_secret", None))
    view = DecodedView(text) if ("%" in text or "\\" in text) else None
    for pattern in PATTERNS:
        for m in pattern.regex.finditer(text):
            if not overlaps(m.start(), m.end()):
                spans.append((m.start(), m.end(), pattern.name, pattern))
        if view is not None:
            for m in pattern.regex.finditer(view.decoded):
                start, end = view.raw_span(m.start(), m.end())
                if not overlaps(start, end):
                    spans.append((start, end, pattern.name, pattern))
    for m in _BASE64_RUN.finditer(text):
        if overlaps(m.start(), m.end()):
            continue
        decoded = _b64decode(m.group())
        for pattern in PATTERNS:
            if decoded is not None and pattern.regex.search(decoded):
                spans.append((m.start(), m.end(), f"{pattern.name} (base64)", None))
                break
    if not spans:
        return []
    spans.sort()
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    findings = []
    for start, end, name, _ in spans:
        line = bisect.bisect_right(line_starts, start)
        line_start = line_starts[line - 1]
        line_end = text.find("\n", start)
        if line_end == -1:
            line_end = len(text)
        findings.append(
            SecretFinding(
                pattern=name,
                line=line,
                column=start - line_start + 1,
                excerpt=_excerpt(text, spans, line_start, max(line_end, end), start, end),
            )
        )
    return findings


# A run that may be base64 (standard or URL-safe) long enough to hold a key.
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{28,}={0,2}")


def _b64decode(run: str) -> str | None:
    data = run.rstrip("=").replace("-", "+").replace("_", "/")
    data += "=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True).decode("latin-1")
    except (ValueError, binascii.Error):
        return None


def find_secrets_in_bytes(
    data: bytes, known: Iterable[str] = (), encodings: Sequence[str] = NON_UTF8_TEXT_ENCODINGS
) -> list[SecretFinding]:
    """``find_secrets`` over a body that is not UTF-8, in each text encoding it
    decodes in (UTF-16, UTF-32, Latin-1): what ``!!binary`` would hide."""
    known = list(known)
    findings: list[SecretFinding] = []
    seen: set[str] = set()
    for encoding in encodings:
        try:
            text = data.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError:
            continue
        if text in seen:  # "utf-16" read a BOM and said what "utf-16-le" says
            continue
        seen.add(text)
        for f in find_secrets(text, known):
            findings.append(
                SecretFinding(f.pattern, f.line, f.column, f"{f.excerpt} (as {encoding})")
            )
    return findings


def stream_text(body: bytes | str) -> dict[str, str]:
    """The strings of an SSE body's JSON frames, joined across frames per JSON path
    (``choices.0.delta.content`` …): a key split across deltas is whole here.
    Paths whose value is the same in every frame (ids, model names) are left out."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    pieces: dict[str, list[str]] = {}
    for line in body.split("\n"):
        if not line.startswith("data:"):
            continue
        try:
            frame = json.loads(line[5:])
        except (ValueError, RecursionError):
            continue
        try:
            _collect(frame, "", pieces)
        except RecursionError:
            continue
    return {
        path: "".join(values)
        for path, values in pieces.items()
        if len(values) > 1 and len(set(values)) > 1
    }


def _collect(value: Any, path: str, out: dict[str, list[str]]) -> None:
    if isinstance(value, str):
        out.setdefault(path, []).append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _collect(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _collect(v, f"{path}.{i}" if path else str(i), out)


def find_secrets_in_stream(body: bytes | str, known: Iterable[str] = ()) -> list[SecretFinding]:
    """Secrets in an SSE body's decoded text, each path's deltas joined."""
    known = list(known)
    findings = []
    for path, text in stream_text(body).items():
        for f in find_secrets(text, known):
            findings.append(
                SecretFinding(f.pattern, f.line, f.column, f"{f.excerpt} (deltas of {path} joined)")
            )
    return findings


def find_secrets_in_cassette(text: str, known: Iterable[str] = ()) -> list[SecretFinding]:
    """``find_secrets`` over a cassette's text, and over its bodies decoded: a body
    that is not UTF-8 in each text encoding, an SSE body with its deltas joined.
    Findings in a decoded body carry the line of its interaction."""
    known = list(known)
    findings = find_secrets(text, known)
    try:
        doc = deserialize(text)
    except Exception:  # not a cassette (or not one this package reads): text only
        return findings
    starts = [m.start() + 1 for m in re.finditer(r"\n- request:", text)]
    for i, it in enumerate(doc["interactions"]):
        line = text.count("\n", 0, starts[i]) + 1 if i < len(starts) else 0
        for where, body in (
            ("request", it["request"].get("body")),
            ("response", (it["response"].get("body") or {}).get("string")),
        ):
            if not isinstance(body, bytes) or not body:
                continue
            try:
                decoded = body.decode("utf-8")
            except UnicodeDecodeError:
                found = find_secrets_in_bytes(body, known)
            else:
                found = find_secrets_in_stream(decoded, known) if "data:" in decoded else []
            for f in found:
                findings.append(
                    SecretFinding(
                        f.pattern, line, 1, f"{where} body of this interaction: {f.excerpt}"
                    )
                )
    return findings


def _excerpt(
    text: str,
    spans: Sequence[tuple[int, int, str, _Pattern | None]],
    line_start: int,
    line_end: int,
    start: int,
    end: int,
) -> str:
    """Up to 30 characters either side of the secret, every secret on them masked."""
    lo = max(line_start, start - 30)
    hi = min(line_end, end + 30)
    # Widen to whole spans so no part of a neighbouring secret shows.
    for s, e, _, _ in spans:
        if s < lo < e:
            lo = s
        if s < hi < e:
            hi = e
    out = []
    pos = lo
    for s, e, _, pattern in spans:
        if e <= lo or s >= hi:
            continue
        out.append(text[pos:s])
        out.append(_mask(text[s:e], pattern))
        pos = e
    out.append(text[pos:hi])
    excerpt = "".join(out).replace("\r", "\\r").replace("\t", "\\t")
    return ("…" if lo > line_start else "") + excerpt + ("…" if hi < line_end else "")


_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".hypothesis",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".venv",
        "__pycache__",
        "node_modules",
    }
)


def _files(path: Path) -> Iterable[Path]:
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in sorted(files):
                yield Path(root) / name
    elif path.exists():
        yield path
    else:
        raise FileNotFoundError(f"no such file or directory: {path}")


def scan_paths(paths: Iterable[Path], known: Iterable[str] = ()) -> list[SecretFinding]:
    """``find_secrets`` over files, recursing into directories (VCS and cache dirs skipped).

    Files are read as UTF-8 with undecodable bytes replaced, so key-shaped ASCII
    is found in any file; a file that is not UTF-8 is also read in other text
    encodings, and a YAML cassette's bodies are decoded as the recorder checks them
    (``find_secrets_in_cassette``). A missing path raises ``FileNotFoundError``.
    """
    known = list(known)
    findings: list[SecretFinding] = []
    for root in paths:
        for file in _files(Path(root)):
            try:
                data = file.read_bytes()
            except OSError:
                continue
            text = data.decode("utf-8", errors="replace")
            if file.suffix in (".yaml", ".yml"):
                found = find_secrets_in_cassette(text, known)
            else:
                found = find_secrets(text, known)
            if "\ufffd" in text and text.encode("utf-8") != data:
                # Latin-1 would repeat what the text above shows.
                wide = [e for e in NON_UTF8_TEXT_ENCODINGS if e != "latin-1"]
                found += find_secrets_in_bytes(data, known, wide)
            for f in found:
                findings.append(SecretFinding(f.pattern, f.line, f.column, f.excerpt, path=file))
    return findings
