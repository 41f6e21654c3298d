"""The vcrpy configuration shared by recording and the conformance replay.

``make_vcr("all", secrets=[key])`` records: decompressed bodies, scrubbed
interactions, the readable serializer, and a persister that scans the text for
secrets and writes atomically only when none is found. ``make_vcr("none")``
replays: a request that matches no unplayed recorded interaction (method,
scheme, host, port, path, query, and the body compared as parsed JSON) raises
``vcr.errors.CannotOverwriteExistingCassetteException``.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vcr
import vcr.serialize
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.persisters.filesystem import CassetteDecodeError, CassetteNotFoundError

from provider_impl.recording.scrub import Scrubber
from provider_impl.recording.secrets import SecretLeakError, find_secrets_in_cassette
from provider_impl.recording.serializer import SERIALIZER, SERIALIZER_NAME
from provider_impl.recording.serializer import deserialize as _deserialize

__all__ = [
    "MATCH_ON",
    "CannotOverwriteExistingCassetteException",
    "Provenance",
    "RecordedInteraction",
    "SecretScanningPersister",
    "json_body_matcher",
    "load_interactions",
    "load_provenance",
    "make_vcr",
]

MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "json_body")
RECORD_MODES = ("all", "any", "new_episodes", "none", "once")
_MAX_DIFF_LINES = 30
_NOT_JSON = object()


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(b.encode("utf-8") if isinstance(b, str) else bytes(b) for b in body)


def _json_or_not(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _canonical(value: Any) -> str:
    # Distinguishes 1, 1.0 and true (Python's == does not); ignores key order.
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1)


def json_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: request bodies equal as parsed JSON (else as bytes).

    vcrpy calls it with the request being made first and the recorded one
    second; a mismatch raises ``AssertionError`` with a diff, which vcrpy shows
    in ``CannotOverwriteExistingCassetteException``.
    """
    b1, b2 = _body_bytes(r1.body), _body_bytes(r2.body)
    if b1 == b2:
        return
    j1, j2 = _json_or_not(b1), _json_or_not(b2)
    if j1 is _NOT_JSON or j2 is _NOT_JSON:
        raise AssertionError(
            f"the request bodies differ ({len(b1)} bytes sent, {len(b2)} bytes recorded)"
        )
    new, old = _canonical(j1), _canonical(j2)
    if new == old:
        return
    diff = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), "recorded", "this request", n=1, lineterm=""
        )
    )
    if len(diff) > _MAX_DIFF_LINES:
        diff = [*diff[:_MAX_DIFF_LINES], f"… ({len(diff) - _MAX_DIFF_LINES} more lines)"]
    raise AssertionError("the JSON request bodies differ:\n" + "\n".join(diff))


json_body_matcher = json_body


#: Says where a cassette came from, given the cassette vcrpy is about to write
#: (``{"version", "interactions"}``): a mapping stored as its ``provenance:`` block.
Provenance = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class _WithProvenance:
    """A serializer that adds the provenance block before the wrapped one writes."""

    def __init__(self, inner: Any, provenance: Provenance) -> None:
        self._inner = inner
        self._provenance = provenance

    def serialize(self, data: Mapping[str, Any]) -> str:
        text: str = self._inner.serialize({**data, "provenance": dict(self._provenance(data))})
        return text


class SecretScanningPersister:
    """A vcrpy persister: UTF-8, scanned for secrets, written atomically.

    ``save_cassette`` serializes, runs ``find_secrets_in_cassette`` over the text
    (with the known keys: the text, and each body decoded, SSE deltas joined), and
    raises ``SecretLeakError`` without touching the disk if anything is found.
    Otherwise it writes a temporary file next to the cassette and renames it into
    place, so a cassette is never half-written.
    """

    def __init__(
        self,
        known_secrets: Iterable[str] = (),
        *,
        tolerate_corrupt: bool = False,
        provenance: Provenance | None = None,
        on_refusal: Callable[[SecretLeakError], None] | None = None,
    ):
        self._known = [s for s in known_secrets if s]
        # When re-recording, an unreadable old cassette is simply replaced.
        self._tolerate_corrupt = tolerate_corrupt
        self._provenance = provenance
        # vcrpy saves inside its __exit__; an exception there leaves httpx patched
        # (its unpatching is skipped), so a recorder may take the refusal instead.
        self._on_refusal = on_refusal

    def load_cassette(self, cassette_path: str | os.PathLike[str], serializer: Any) -> Any:
        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise CassetteDecodeError(f"{path} is not UTF-8") from err
        if not text.strip():
            raise CassetteNotFoundError()
        try:
            return vcr.serialize.deserialize(text, serializer)
        except (yaml.YAMLError, ValueError, KeyError, TypeError) as err:
            if self._tolerate_corrupt:
                raise CassetteDecodeError(f"{path} cannot be read: {err}") from err
            raise ValueError(f"cannot read cassette {path}: {err}") from err

    def save_cassette(
        self, cassette_path: str | os.PathLike[str], cassette_dict: Any, serializer: Any
    ) -> None:
        path = Path(cassette_path)
        if self._provenance is not None:
            serializer = _WithProvenance(serializer, self._provenance)
        text = vcr.serialize.serialize(cassette_dict, serializer)
        findings = find_secrets_in_cassette(text, self._known)
        if findings:
            if self._on_refusal is not None:
                self._on_refusal(SecretLeakError(path, findings))
                return
            raise SecretLeakError(path, findings)
        write_atomically(path, text.encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path`` in one rename: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_vcr(
    record_mode: str = "none",
    *,
    secrets: Iterable[str] = (),
    rewrite_base_urls: Mapping[str, str] | None = None,
    provenance: Provenance | None = None,
    on_refusal: Callable[[SecretLeakError], None] | None = None,
) -> vcr.VCR:
    """A ``vcr.VCR`` for the project's cassettes.

    ``record_mode="none"`` replays only; ``"all"`` records (and replaces the
    cassette's interactions with the new ones). ``secrets`` are the keys in use:
    scrubbed from everything recorded and searched for before writing.
    ``rewrite_base_urls`` maps a stand-in base URL to the provider's real one
    (the emulator's layout is recognised without it). ``provenance`` builds
    the block each written cassette carries (docs/PROVENANCE.md). ``on_refusal``
    receives the ``SecretLeakError`` of a cassette that was not written, instead
    of it being raised from the cassette's ``__exit__``.
    """
    if record_mode not in RECORD_MODES:
        raise ValueError(f"unknown record mode {record_mode!r}; known: {', '.join(RECORD_MODES)}")
    secrets = [s for s in secrets if s]
    scrubber = Scrubber(secrets, rewrite_base_urls)
    recorder = vcr.VCR(
        record_mode=record_mode,
        serializer=SERIALIZER_NAME,
        match_on=MATCH_ON,
        decode_compressed_response=True,
        before_record_request=scrubber.request,
        before_record_response=scrubber.response,
        # A crash mid-recording leaves the old cassette as it was.
        record_on_exception=False,
        # Re-recording replaces a cassette; it does not merge into it. (Only when
        # recording: in other modes vcrpy would rewrite a partly played cassette.)
        drop_unused_requests=record_mode == "all",
    )
    recorder.register_serializer(SERIALIZER_NAME, SERIALIZER)
    recorder.register_matcher("json_body", json_body)
    recorder.register_persister(
        SecretScanningPersister(
            secrets,
            tolerate_corrupt=record_mode != "none",
            provenance=provenance,
            on_refusal=on_refusal,
        )
    )
    return recorder


@dataclass(frozen=True)
class RecordedInteraction:
    """One request/response pair of a cassette, as the serializer reads it back."""

    method: str
    uri: str
    request_headers: dict[str, str]
    request_bytes: bytes | None
    status: int
    reason: str | None
    headers: dict[str, str]
    body: bytes
    raw_headers: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def request_body(self) -> Any:
        """The request body parsed as JSON (None when there is none or it is not JSON)."""
        if not self.request_bytes:
            return None
        parsed = _json_or_not(self.request_bytes)
        return None if parsed is _NOT_JSON else parsed


def _header_value(values: Any) -> str:
    """A header recorded as a list of values, as one value (RFC 9110 section 5.3:
    field lines of one name combine into one list, comma-separated)."""
    if isinstance(values, list):
        return ", ".join(str(v) for v in values)
    return str(values)


def load_interactions(path: str | os.PathLike[str]) -> list[RecordedInteraction]:
    """The interactions of a cassette written by this package, bodies as exact bytes."""
    path = Path(path)
    doc = _deserialize(path.read_bytes().decode("utf-8"))
    out = []
    for it in doc["interactions"]:
        req, resp = it["request"], it["response"]
        status = resp.get("status") or {}
        raw_headers = {k: v if isinstance(v, list) else [v] for k, v in resp["headers"].items()}
        out.append(
            RecordedInteraction(
                method=req["method"],
                uri=req["uri"],
                request_headers={
                    k: _header_value(v) for k, v in (req.get("headers") or {}).items()
                },
                request_bytes=req.get("body"),
                status=int(status.get("code", 0)),
                reason=status.get("message"),
                headers={k: _header_value(v) for k, v in raw_headers.items()},
                body=resp["body"]["string"] or b"",
                raw_headers=raw_headers,
            )
        )
    return out


def load_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A cassette's ``provenance:`` block (``{}`` when it has none)."""
    doc = _deserialize(Path(path).read_bytes().decode("utf-8"))
    block = doc.get("provenance")
    return dict(block) if isinstance(block, Mapping) else {}
