"""Drift check: record the scenarios afresh and compare them with the committed cassettes.

A provider may change its API under a cassette that still replays green. This
records every conformance scenario again (live, or from any server such as the
emulator) into a temporary folder and compares each fresh reply with the
committed one in three layers (see ``docs/DRIFT.md``):

1. acceptance — accepted or refused as before (status class, error type);
2. shape — the same JSON paths with the same JSON types over every chunk (or the
   whole reply body);
3. events — the same normalized outcome: event kinds in order (repeated deltas
   collapsed), tool calls (count, names, ids sent by the provider), stop
   reason, which usage counts are reported, decode errors.

What legitimately varies between two recordings (ids, timestamps, request ids,
dates, headers, the text itself, how it is split into chunks) is never compared.
The comparison functions are pure: they take two ``RecordedExchange``s.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from provider_impl.dialects import DIALECTS
from provider_impl.errors import InvalidRequest, TransportError
from provider_impl.harness import Outcome, RecordedExchange, decode_recorded, load_exchange
from provider_impl.recording import SecretLeakError, record_cassettes
from provider_impl.recording.record import RecordResult
from provider_impl.scenarios import SCENARIOS
from provider_impl.sse import parse_sse

__all__ = [
    "LAYERS",
    "Difference",
    "DriftError",
    "DriftReport",
    "EventSummary",
    "ScenarioDrift",
    "compare_acceptance",
    "compare_events",
    "compare_exchanges",
    "compare_shape",
    "format_report",
    "reply_shape",
    "run_drift",
    "summarize_events",
    "write_junit",
]

LAYERS: dict[int, str] = {1: "acceptance", 2: "shape", 3: "events"}


class DriftError(Exception):
    """Bad input or an unreachable server: nothing could be compared."""


@dataclass(frozen=True)
class Difference:
    layer: int
    message: str

    @property
    def layer_name(self) -> str:
        return LAYERS[self.layer]

    def __str__(self) -> str:
        return f"layer {self.layer} ({self.layer_name}): {self.message}"


# -- layer 1: accepted or refused ------------------------------------------------


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


def acceptance(exchange: RecordedExchange, provider: str) -> str:
    """``accepted (2xx)`` or ``refused (4xx, InvalidRequest)``: what layer 1 compares."""
    if exchange.status < 400:
        return f"accepted ({_status_class(exchange.status)})"
    error = decode_recorded(exchange, provider).error
    kind = error["type"] if error is not None else "no error"
    return f"refused ({_status_class(exchange.status)}, {kind})"


def compare_acceptance(
    committed: RecordedExchange, fresh: RecordedExchange, provider: str
) -> list[Difference]:
    before, now = acceptance(committed, provider), acceptance(fresh, provider)
    if before == now:
        return []
    detail = ""
    if fresh.status >= 400:
        error = decode_recorded(fresh, provider).error
        if error is not None and error.get("message"):
            detail = f": {str(error['message'])[:160]}"
    return [Difference(1, f"was {before}, now {now} (HTTP {fresh.status}){detail}")]


# -- layer 2: the shape of the reply ------------------------------------------------

#: A path's JSON types; ``number`` covers integers and floats alike.
Shape = dict[str, frozenset[str]]

_FORMAT = "(body format)"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _walk(value: Any, path: str, out: dict[str, set[str]]) -> None:
    out.setdefault(path or "(top level)", set()).add(_json_type(value))
    if isinstance(value, dict):
        for key, child in value.items():
            _walk(child, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for child in value:
            _walk(child, f"{path}[]", out)


def reply_shape(exchange: RecordedExchange) -> Shape:
    """Every JSON path (``choices[].delta.content``) with the types seen there,
    over all the chunks of an SSE body or over a whole JSON body. Non-JSON
    ``data:`` payloads (``[DONE]``) and ``event:`` names count as paths too."""
    out: dict[str, set[str]] = {}
    if exchange.is_sse:
        out[_FORMAT] = {"sse"}
        for event in parse_sse(exchange.body):
            if event.event != "message":
                out.setdefault(f"(event: {event.event})", set()).add("present")
            try:
                chunk = json.loads(event.data)
            except ValueError:
                out.setdefault(f"(data: {event.data[:40]})", set()).add("present")
                continue
            _walk(chunk, "", out)
    else:
        try:
            body = json.loads(exchange.body)
        except ValueError:
            out[_FORMAT] = {"not json"}
        else:
            out[_FORMAT] = {"json"}
            _walk(body, "", out)
    return {path: frozenset(types) for path, types in out.items()}


def _types(types: Iterable[str]) -> str:
    return "|".join(sorted(types))


def _under(path: str, ancestors: set[str]) -> bool:
    """Whether ``path`` lies below one of ``ancestors`` (``a.b[].c`` is below ``a.b``)."""
    return any(ch in ".[" and path[:i] in ancestors for i, ch in enumerate(path))


def _collapsed(paths: set[str], shape: Shape, template: str) -> list[str]:
    """One line per topmost path of ``paths``, saying how many lie below it."""
    top = sorted(p for p in paths if not _under(p, paths))
    lines = []
    for p in top:
        below = sum(1 for q in paths if q != p and _under(q, {p}))
        more = f" (and {below} path{'s' if below > 1 else ''} below)" if below else ""
        lines.append(f"{p}: {template.format(_types(shape[p]))}{more}")
    return lines


_NULL = frozenset({"null"})


def compare_shape(committed: RecordedExchange, fresh: RecordedExchange) -> list[Difference]:
    """Paths gone, paths new, and paths whose types changed.

    ``null`` says nothing about a field's type: a path seen only as null matches
    a missing one or any type, and ``string|null`` matches ``string``. Real
    replies of one provider flip such fields between models and calls
    (``system_fingerprint``, ``logprobs``; the test replays
    ``cassettes/real/``), which is not drift.
    """
    before, now = reply_shape(committed), reply_shape(fresh)
    gone = {p for p in set(before) - set(now) if before[p] != _NULL}
    new = {p for p in set(now) - set(before) if now[p] != _NULL}
    lines = _collapsed(gone, before, "missing (was {})")
    lines += _collapsed(new, now, "new ({})")
    for path in sorted(set(before) & set(now)):
        old_types, new_types = before[path] - _NULL, now[path] - _NULL
        if old_types and new_types and old_types != new_types:
            lines.append(f"{path}: type {_types(before[path])} -> {_types(now[path])}")
    return [Difference(2, line) for line in lines]


# -- layer 3: the normalized events ---------------------------------------------------


@dataclass(frozen=True)
class EventSummary:
    """What of the normalized outcome must not change between two recordings."""

    kinds: tuple[str, ...]
    tool_names: tuple[str, ...]
    #: Per tool call: did its id come from the provider (the client invents one otherwise)?
    tool_ids_sent: tuple[bool, ...]
    stop_reason: str | None
    #: The usage counts reported (not None); None when no usage came at all.
    usage: tuple[str, ...] | None
    #: The type of the error decoding ended in (in-band error, unparsable arguments).
    error: str | None
    #: Its message: shown, never compared (it may carry request ids).
    error_message: str = field(default="", compare=False)


def _collapse(kinds: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for k in kinds:
        if not out or out[-1] != k:
            out.append(k)
    return tuple(out)


def _sent(call_id: Any, body: bytes) -> bool:
    return isinstance(call_id, str) and bool(call_id) and json.dumps(call_id).encode() in body


def _usage_fields(usage: dict[str, Any] | None) -> tuple[str, ...] | None:
    if usage is None:
        return None
    return tuple(k for k, v in usage.items() if k != "type" and v is not None)


def summarize_events(outcome: Outcome, body: bytes) -> EventSummary:
    """Layer 3's view of a decoded reply (``decode_recorded``); ``body`` is the raw
    reply, to tell provider-sent tool-call ids from invented ones."""
    error = message = None
    if outcome.error is not None:
        error = str(outcome.error["type"])
        message = str(outcome.error.get("message") or "")[:120]
    if outcome.response is not None:
        r = outcome.response
        parts = [k for k in ("thinking", "text", "refusal") if r.get(k)]
        calls = r["tool_calls"]
        usage = _usage_fields(r["usage"])
        return EventSummary(
            kinds=tuple(parts) + (("tool_use",) if calls else ()),
            tool_names=tuple(c["name"] for c in calls),
            tool_ids_sent=tuple(_sent(c["id"], body) for c in calls),
            stop_reason=r["stop_reason"],
            usage=usage if usage else None,
            error=error,
            error_message=message or "",
        )
    kinds = []
    names: list[str] = []
    ids: list[bool] = []
    stop = None
    usage_seen: tuple[str, ...] | None = None
    for ev in outcome.events:
        kind = ev["type"]
        if kind == "content_block_start":
            kind += f":{ev['content_type']}"
        elif kind == "tool_use_complete":
            names.append(ev["name"])
            ids.append(_sent(ev["id"], body))
        elif kind == "message_delta":
            stop = ev["stop_reason"]
        elif kind == "usage":
            usage_seen = _usage_fields(ev)
        kinds.append(kind)
    return EventSummary(
        kinds=_collapse(kinds),
        tool_names=tuple(names),
        tool_ids_sent=tuple(ids),
        stop_reason=stop,
        usage=usage_seen,
        error=error,
        error_message=message or "",
    )


def _usage_text(usage: tuple[str, ...] | None) -> str:
    if usage is None:
        return "none"
    return ", ".join(usage) if usage else "no counts"


def _ids_text(sent: tuple[bool, ...]) -> str:
    if all(sent):
        return "all sent by the provider"
    if not any(sent):
        return "none sent (the client made them up)"
    return f"{sum(sent)} of {len(sent)} sent by the provider"


def compare_events(
    committed: RecordedExchange, fresh: RecordedExchange, provider: str
) -> list[Difference]:
    """Layer 3, for two accepted replies (a refusal is layer 1's business)."""
    if committed.status >= 400 or fresh.status >= 400:
        return []
    a = summarize_events(decode_recorded(committed, provider), committed.body)
    b = summarize_events(decode_recorded(fresh, provider), fresh.body)
    lines = []
    if a.error != b.error:
        detail = f" ({b.error_message})" if b.error_message else ""
        lines.append(f"decode error: {a.error or 'none'} -> {b.error or 'none'}{detail}")
    if a.kinds != b.kinds:
        lines.append(f"event kinds: {' '.join(a.kinds)} -> {' '.join(b.kinds)}")
    if len(a.tool_names) != len(b.tool_names):
        lines.append(f"tool calls: {len(a.tool_names)} -> {len(b.tool_names)}")
    elif a.tool_names != b.tool_names:
        lines.append(f"tool call names: {', '.join(a.tool_names)} -> {', '.join(b.tool_names)}")
    if a.tool_names and b.tool_names and all(a.tool_ids_sent) != all(b.tool_ids_sent):
        lines.append(f"tool call ids: {_ids_text(a.tool_ids_sent)} -> {_ids_text(b.tool_ids_sent)}")
    if a.stop_reason != b.stop_reason:
        lines.append(f"stop reason: {a.stop_reason} -> {b.stop_reason}")
    if a.usage != b.usage:
        lines.append(f"usage reported: {_usage_text(a.usage)} -> {_usage_text(b.usage)}")
    return [Difference(3, line) for line in lines]


def compare_exchanges(
    committed: RecordedExchange, fresh: RecordedExchange, provider: str
) -> list[Difference]:
    """Every difference between a committed and a fresh reply, layer by layer.

    When layer 1 differs, layers 2 and 3 are not compared: a refusal's body has
    nothing in common with a reply's, and listing every path would bury the news.
    """
    accepted = compare_acceptance(committed, fresh, provider)
    if accepted:
        return accepted
    return [*compare_shape(committed, fresh), *compare_events(committed, fresh, provider)]


# -- the run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioDrift:
    scenario: str
    differences: tuple[Difference, ...] = ()
    #: Why the scenario was not compared (no committed cassette), else None.
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class DriftReport:
    provider: str
    target: str
    committed_dir: Path
    scenarios: tuple[ScenarioDrift, ...]
    wall_time_s: float

    @property
    def drifted(self) -> list[ScenarioDrift]:
        return [s for s in self.scenarios if not s.ok]


def _check_reachable(results: Sequence[RecordResult], target: str) -> None:
    for r in results:
        if isinstance(r.error, TransportError):
            raise DriftError(f"cannot reach {target}: {r.error.message}")


def _compare_one(result: RecordResult, committed_dir: Path, provider: str) -> ScenarioDrift:
    committed_path = committed_dir / result.path.name
    if not committed_path.is_file():
        return ScenarioDrift(result.scenario, skipped=f"no committed cassette {committed_path}")
    try:
        committed = load_exchange(committed_path)
    except Exception as exc:  # any unreadable file is bad input, reported in one line
        raise DriftError(f"cannot read {committed_path}: {exc}") from None
    if not result.path.is_file():
        diff = Difference(1, f"nothing was recorded: {result.outcome}")
        return ScenarioDrift(result.scenario, (diff,))
    fresh = load_exchange(result.path)
    return ScenarioDrift(result.scenario, tuple(compare_exchanges(committed, fresh, provider)))


def run_drift(
    provider: str,
    *,
    base_url: str | None = None,
    cassette_dir: Path = Path("cassettes"),
    scenarios: Sequence[str] | None = None,
    api_key: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> DriftReport:
    """Record ``provider``'s scenarios into a temporary folder (from ``base_url``,
    else the live API with the key from its environment variable) and compare
    each with ``<cassette_dir>/<provider>/<scenario>.yaml``.

    Raises ``DriftError`` (one readable line) for an unknown provider or
    scenario, a missing cassette folder or key, or an unreachable server.
    """
    if provider not in DIALECTS:
        raise DriftError(f"unknown provider {provider!r}; known: {', '.join(DIALECTS)}")
    committed_dir = Path(cassette_dir) / provider
    if not Path(cassette_dir).is_dir():
        raise DriftError(f"no cassette folder {cassette_dir}")
    if not committed_dir.is_dir():
        raise DriftError(f"no committed cassettes for {provider} (no folder {committed_dir})")
    names = list(scenarios) if scenarios else [s.name for s in SCENARIOS.values()]
    names = [n for n in names if n not in SCENARIOS or SCENARIOS[n].applies_to(provider)]
    if not names:
        raise DriftError(f"none of the chosen scenarios applies to {provider}")
    target = base_url or DIALECTS[provider].base_url
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="provider-impl-drift-") as tmp:
        kw: dict[str, Any] = {
            "base_url": base_url,
            "cassette_dir": Path(tmp),
            "api_key": api_key,
            "progress": progress,
            # Every reply is wanted, an unexpected one most of all: it is the drift.
            "record_mode": "all",
            "keep_unexpected": True,
        }
        try:
            # The first scenario alone: an unreachable server fails once, not per scenario.
            results = record_cassettes(provider, names[:1], **kw)
            _check_reachable(results, target)
            if names[1:]:
                results += record_cassettes(provider, names[1:], **kw)
                _check_reachable(results, target)
        except (ValueError, SecretLeakError, httpx.InvalidURL, InvalidRequest) as exc:
            raise DriftError(str(exc)) from None
        compared = tuple(_compare_one(r, committed_dir, provider) for r in results)
    return DriftReport(
        provider, target, committed_dir, compared, round(time.perf_counter() - started, 3)
    )


# -- output ------------------------------------------------------------------------------


def _by_layer(differences: Iterable[Difference]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for d in differences:
        grouped.setdefault(d.layer, []).append(d.message)
    return dict(sorted(grouped.items()))


def format_report(report: DriftReport) -> str:
    lines = [
        f"drift check: {report.provider} at {report.target} "
        f"vs the cassettes in {report.committed_dir}"
    ]
    width = max((len(s.scenario) for s in report.scenarios), default=0)
    for s in report.scenarios:
        verdict = "skipped: " + s.skipped if s.skipped else "OK" if s.ok else "DRIFT"
        lines.append(f"  {s.scenario.ljust(width)}  {verdict}")
        for layer, messages in _by_layer(s.differences).items():
            lines.append(f"      layer {layer} ({LAYERS[layer]}):")
            lines.extend(f"        - {m}" for m in messages)
    drifted = report.drifted
    skipped = sum(1 for s in report.scenarios if s.skipped)
    ok = len(report.scenarios) - len(drifted) - skipped
    n = len(report.scenarios)
    summary = f"{n} scenario{'' if n == 1 else 's'}: {ok} OK, {len(drifted)} drifted"
    if skipped:
        summary += f", {skipped} skipped"
    layers = sorted({d.layer for s in drifted for d in s.differences})
    if layers:
        summary += "; drift in " + ", ".join(f"layer {n} ({LAYERS[n]})" for n in layers)
    lines.append(f"{summary} [{report.wall_time_s:.2f}s]")
    return "\n".join(lines)


def write_junit(report: DriftReport, path: Path) -> None:
    """One testcase per scenario; a drifted one fails with its differences."""
    suite = ET.Element(
        "testsuite",
        name=f"drift.{report.provider}",
        tests=str(len(report.scenarios)),
        failures=str(len(report.drifted)),
        errors="0",
        skipped=str(sum(1 for s in report.scenarios if s.skipped)),
        time=f"{report.wall_time_s:.3f}",
    )
    for s in report.scenarios:
        case = ET.SubElement(
            suite, "testcase", classname=f"drift.{report.provider}", name=s.scenario
        )
        if s.skipped:
            ET.SubElement(case, "skipped", message=s.skipped)
        elif s.differences:
            layers = _by_layer(s.differences)
            failure = ET.SubElement(
                case,
                "failure",
                message="drift in " + ", ".join(f"layer {n} ({LAYERS[n]})" for n in layers),
                type="drift",
            )
            failure.text = "\n".join(str(d) for d in s.differences)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    Path(path).write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")


def cli(
    provider: str,
    *,
    base_url: str | None,
    cassette_dir: str,
    junit: str | None,
    scenarios: Sequence[str] | None = None,
) -> int:
    """``provider-impl drift``: 0 nothing drifted, 1 drift (report on stdout), 2 bad input."""
    try:
        report = run_drift(
            provider, base_url=base_url, cassette_dir=Path(cassette_dir), scenarios=scenarios
        )
    except DriftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if junit:
        try:
            write_junit(report, Path(junit))
        except OSError as exc:
            print(f"error: cannot write the JUnit report {junit}: {exc.strerror}", file=sys.stderr)
            return 2
    return 1 if report.drifted else 0
