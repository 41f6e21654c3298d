"""Find API keys and bearer tokens in text and files, without ever printing one.

``find_secrets`` looks for the bytes of known keys and for strings shaped like
the keys of the five providers (and bearer tokens). The recorder runs it over
every serialized cassette before writing; ``provider-impl scan-secrets PATH``
runs ``scan_paths`` over files and directories. A finding names the pattern,
the line and column, and an excerpt in which the secret is masked.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MIN_KNOWN_SECRET_LEN",
    "PATTERNS",
    "SecretFinding",
    "SecretLeakError",
    "find_secrets",
    "known_secret_forms",
    "scan_paths",
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


PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "anthropic_key",
        re.compile(rf"(?<![{_T}])sk-ant-[{_T}]{{20,}}"),
        re.compile(r"sk-ant-(?:[a-z]+\d\d-)?"),
    ),
    _Pattern(
        "openai_key",
        re.compile(rf"(?<![{_T}])sk-(?!ant-)[{_T}]{{20,}}"),
        re.compile(r"sk-(?:proj-|svcacct-|admin-)?"),
    ),
    _Pattern(
        "google_api_key",
        re.compile(rf"(?<![{_T}+/])AIza[{_T}]{{35}}"),
        re.compile(r"AIza"),
    ),
    _Pattern(
        "zhipu_key",
        re.compile(r"(?<![A-Za-z0-9])[0-9a-f]{32}\.[A-Za-z0-9]{16}(?![A-Za-z0-9])"),
    ),
    _Pattern(
        "bearer_token",
        re.compile(r"(?i:bearer)[ \t]+[A-Za-z0-9._~+/=\-]{20,}"),
        re.compile(r"(?i:bearer)[ \t]+"),
    ),
    # Mistral keys: 32 alphanumerics mixing upper case, lower case and digits. A
    # lowercase-hex id (Mistral's chunk ids, GLM's timestamp+hex ids) has no
    # upper case; a run inside a longer token or base64 text is not a key.
    _Pattern(
        "mistral_key",
        re.compile(
            rf"(?<![{_T}+/.])"
            r"(?=[A-Za-z0-9]{0,31}[A-Z])(?=[A-Za-z0-9]{0,31}[a-z])(?=[A-Za-z0-9]{0,31}[0-9])"
            rf"[A-Za-z0-9]{{32}}(?![{_T}+/=])"
        ),
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
    """Each known secret as it may appear in text: raw, percent-encoded, JSON-escaped."""
    forms: list[str] = []
    for secret in known:
        if not secret or len(secret) < MIN_KNOWN_SECRET_LEN:
            continue
        for form in (
            secret,
            urllib.parse.quote(secret, safe=""),
            json.dumps(secret)[1:-1],
            json.dumps(secret)[1:-1].replace("/", "\\/"),
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

    Overlapping matches are reported once (a known secret first, then the most
    specific pattern). The findings never contain the secret itself.
    """
    spans: list[tuple[int, int, str, _Pattern | None]] = []

    def overlaps(start: int, end: int) -> bool:
        return any(start < e and s < end for s, e, _, _ in spans)

    for form in known_secret_forms(known):
        pos = text.find(form)
        while pos != -1:
            if not overlaps(pos, pos + len(form)):
                spans.append((pos, pos + len(form), "known_secret", None))
            pos = text.find(form, pos + 1)
    for pattern in PATTERNS:
        for m in pattern.regex.finditer(text):
            if not overlaps(m.start(), m.end()):
                spans.append((m.start(), m.end(), pattern.name, pattern))
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
    is found in any file. A missing path raises ``FileNotFoundError``.
    """
    known = list(known)
    findings: list[SecretFinding] = []
    for root in paths:
        for file in _files(Path(root)):
            try:
                text = file.read_bytes().decode("utf-8", errors="replace")
            except OSError:
                continue
            for f in find_secrets(text, known):
                findings.append(SecretFinding(f.pattern, f.line, f.column, f.excerpt, path=file))
    return findings
