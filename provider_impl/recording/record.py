"""Record the conformance scenarios into cassettes, from a live provider or the emulator."""

from __future__ import annotations

import datetime
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.filters import AVAILABLE_DECOMPRESSORS

from provider_impl.dialects import DIALECTS
from provider_impl.emulator._http import EMULATOR_HEADER
from provider_impl.errors import LlmError, TransportError
from provider_impl.events import MessageDelta, StreamEvent
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.recording.config import make_vcr, write_atomically
from provider_impl.recording.secrets import SecretLeakError
from provider_impl.recording.serializer import deserialize
from provider_impl.scenarios import SCENARIO_HEADER, SCENARIOS, Scenario
from provider_impl.turns import run_turns
from provider_impl.types import CompletionResponse, StopReason

__all__ = [
    "ACCEPT_ENCODING",
    "RECORD_MODES",
    "RecordResult",
    "cassette_path",
    "record_cassettes",
    "recorded_provenance",
]

# Only encodings vcrpy decodes before scrubbing (httpx would also offer zstd when
# zstandard is installed, and a zstd body could be neither read nor scanned).
ACCEPT_ENCODING = ", ".join(e for e in ("gzip", "deflate", "br") if e in AVAILABLE_DECOMPRESSORS)


@dataclass(frozen=True)
class RecordResult:
    """What recording one scenario for one provider did.

    ``ok`` is False when the outcome differed from the scenario's expectation or
    no cassette was recorded; ``outcome`` says what happened in one line. The
    events, response or error seen while recording are kept for inspection.
    """

    provider: str
    scenario: str
    path: Path
    outcome: str
    ok: bool
    #: What happened to the cassette at ``path``: ``written`` (new or replaced),
    #: ``unchanged`` (the new recording equals it: left byte-identical), ``kept``
    #: (it exists and the record mode did not ask to rewrite it), ``refused`` (the
    #: new exchange was not the expected outcome: nothing written, any old file
    #: left as it was), ``replayed`` (record mode ``none``) or ``missing``.
    action: str = "written"
    events: tuple[StreamEvent, ...] = field(default=(), compare=False, repr=False)
    response: CompletionResponse | None = field(default=None, compare=False, repr=False)
    error: LlmError | None = field(default=None, compare=False, repr=False)


def recorded_provenance(cassette: Mapping[str, Any], *, live: bool) -> dict[str, Any]:
    """The provenance block of a cassette this package records (docs/PROVENANCE.md).

    ``emulator`` when the reply carries the bundled emulator's header, ``live``
    when recorded from the provider's own base URL, else ``server`` (another
    server given by ``--base-url``, e.g. a proxy).
    """
    interactions = cassette.get("interactions") or [{}]
    headers = interactions[-1].get("response", {}).get("headers", {})
    if any(k.lower() == EMULATOR_HEADER for k in headers):
        source = "emulator"
    else:
        source = "live" if live else "server"
    return {
        "source": source,
        "recorded": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "tool": f"provider-impl {_version()}",
    }


def _version() -> str:
    from provider_impl import __version__

    return __version__


_ACTIONS = ("written", "unchanged", "kept", "replayed", "refused", "missing")


def cassette_path(cassette_dir: Path, provider: str, scenario: str) -> Path:
    return Path(cassette_dir) / provider / f"{scenario}.yaml"


def _check_names(provider: str, scenarios: Sequence[str] | None) -> list[Scenario]:
    if provider not in DIALECTS:
        raise ValueError(f"unknown provider {provider!r}; known providers: {', '.join(DIALECTS)}")
    if scenarios is None:
        return list(SCENARIOS.values())
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ValueError(
            f"unknown scenario{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; known scenarios: {', '.join(SCENARIOS)}"
        )
    return [SCENARIOS[s] for s in dict.fromkeys(scenarios)]


def _resolve_key(provider: str, api_key: str | None) -> str | None:
    if api_key:
        return api_key
    dialect = DIALECTS[provider]
    if dialect.api_key_env:
        key = os.environ.get(dialect.api_key_env)
        if key:
            return key
    if dialect.default_api_key is None:
        raise ValueError(
            f"no API key for {provider}: set {dialect.api_key_env} or pass api_key "
            "(a key is needed even against the emulator)"
        )
    return None  # the dialect's default (a proxy that ignores auth)


RECORD_MODES = ("none", "once", "new_episodes", "all")
_NO_SUCH_ROUTE = frozenset({404, 405})


def _same_interactions(a: Path, b: Path) -> bool:
    """Whether two cassettes hold the same exchanges (the provenance date aside)."""
    try:
        old = deserialize(a.read_bytes().decode("utf-8"))
        new = deserialize(b.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return False
    return bool(old["interactions"] == new["interactions"])


def _judge(
    scenario: Scenario,
    events: list[StreamEvent],
    response: CompletionResponse | None,
    error: LlmError | None,
) -> tuple[str, bool]:
    """A one-line outcome and whether it is what the scenario expects."""
    if error is not None:
        name = type(error).__name__
        if error.status_code is not None:
            status = f"HTTP {error.status_code}"
        else:  # no HTTP status: an error inside a 200 reply, or no reply at all
            status = "no reply" if isinstance(error, TransportError) else "in-band"
        if error.status_code in _NO_SUCH_ROUTE:
            # No scenario asks for a missing route: the base URL is wrong, whatever
            # class the 404 maps to (InvalidRequest would pass error_invalid_param).
            return f"UNEXPECTED {name} ({status}): no such route, check --base-url", False
        if scenario.expect_error is not None and isinstance(error, scenario.expect_error):
            after = f" after {len(events)} events" if events else ""
            return f"{name} ({status}){after}, as expected", True
        want = scenario.expect_error.__name__ if scenario.expect_error else "success"
        return f"UNEXPECTED {name} ({status}), expected {want}: {error.message[:160]}", False
    stop: StopReason | None
    if response is not None:
        stop = response.stop_reason
        what = "response"
    else:
        deltas = [e for e in events if isinstance(e, MessageDelta)]
        stop = deltas[-1].stop_reason if deltas else None
        what = f"{len(events)} events"
    stop_text = stop.value if stop is not None else "no stop reason"
    if scenario.expect_error is not None:
        return (
            f"UNEXPECTED success ({what}, {stop_text}), expected {scenario.expect_error.__name__}",
            False,
        )
    if scenario.expect_stop_reason is not None and stop != scenario.expect_stop_reason:
        return (
            f"UNEXPECTED stop reason {stop_text} ({what}), "
            f"expected {scenario.expect_stop_reason.value}",
            False,
        )
    return f"{what}, {stop_text}", True


def _record_one(
    provider: str,
    scenario: Scenario,
    path: Path,
    *,
    key: str | None,
    base_url: str | None,
    http_client: httpx.Client,
    record_mode: str,
    keep_unexpected: bool,
) -> RecordResult:
    def result(outcome: str, ok: bool, action: str) -> RecordResult:
        return RecordResult(
            provider,
            scenario.name,
            path,
            outcome,
            ok,
            action,
            events=tuple(events),
            response=response,
            error=error,
        )

    events: list[StreamEvent] = []
    response: CompletionResponse | None = None
    error: LlmError | None = None
    exists = path.is_file()
    if record_mode == "once" and exists:
        return result("cassette exists, kept (--record-mode all rewrites it)", True, "kept")
    if record_mode == "none" and not exists:
        return result("NO CASSETTE (record mode none records nothing)", False, "missing")
    dialect = DIALECTS[provider]
    secrets = [k for k in (key, scenario.api_key) if k]
    rewrite = {base_url: dialect.base_url} if base_url else None
    with tempfile.TemporaryDirectory(prefix="provider-impl-record-") as tmp:
        # Recorded beside, never over, the cassette: it replaces the old one only
        # once the exchange is known to be the expected one.
        target = path if record_mode == "none" else Path(tmp) / path.name
        if record_mode == "new_episodes" and exists:
            shutil.copyfile(path, target)
        refusals: list[SecretLeakError] = []
        recorder = make_vcr(
            "all" if record_mode == "once" else record_mode,
            secrets=secrets,
            rewrite_base_urls=rewrite,
            provenance=functools.partial(recorded_provenance, live=base_url is None),
            on_refusal=refusals.append,
        )
        client = OpenAiCompatibleProvider(
            dialect,
            api_key=scenario.api_key or key,
            base_url=base_url,
            max_retries=scenario.max_retries,
            headers={SCENARIO_HEADER: scenario.name, "accept-encoding": ACCEPT_ENCODING},
            http_client=http_client,
        )
        with recorder.use_cassette(str(target)), client:
            try:
                turns = run_turns(client, scenario, provider)
            except CannotOverwriteExistingCassetteException as exc:
                if record_mode != "none":
                    raise
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return result(f"REPLAY FAILED: {first}", False, "replayed")
        if refusals:  # name the cassette, not the temporary file
            raise SecretLeakError(path, refusals[0].findings)
        events, response, error = turns.events, turns.response, turns.error
        outcome, ok = _judge(scenario, events, response, error)
        if scenario.tool_results is not None and error is None:
            calls = turns.first.tool_calls if turns.first is not None else ()
            if not calls:
                outcome, ok = "UNEXPECTED: the first turn made no tool call to send back", False
            else:
                outcome = f"2 turns ({len(calls)} tool call(s) sent back), {outcome}"
        if record_mode == "none":
            return result(outcome + "; replayed, nothing recorded", ok, "replayed")
        if not target.is_file():
            return result(
                outcome + "; NO CASSETTE WRITTEN (nothing was recorded)", False, "missing"
            )
        if not ok and not keep_unexpected:
            old = "the existing cassette is untouched" if exists else "no cassette written"
            return result(f"{outcome}; REFUSED: {old}", False, "refused")
        if exists and _same_interactions(path, target):
            return result(outcome + "; unchanged (the file is left as it was)", ok, "unchanged")
        write_atomically(path, target.read_bytes())
        return result(outcome + ("; replaced" if exists else "; written"), ok, "written")


def record_cassettes(
    provider: str,
    scenarios: Sequence[str] | None = None,
    *,
    base_url: str | None = None,
    cassette_dir: Path = Path("cassettes"),
    api_key: str | None = None,
    progress: Callable[[str], None] = print,
    record_mode: str = "once",
    keep_unexpected: bool = False,
) -> list[RecordResult]:
    """Run each applicable scenario against ``base_url`` and write its cassette.

    The key comes from ``api_key``, else the provider's environment variable
    (``DIALECTS[provider].api_key_env``; claude_subscription needs none). Each
    cassette lands at ``<cassette_dir>/<provider>/<scenario>.yaml``, scrubbed,
    its URI showing the provider's real base URL, and is written only if no
    secret survives (else ``SecretLeakError`` is raised and recording stops).

    ``record_mode`` follows pytest-recording's names: ``once`` (the default)
    records only the cassettes that are missing; ``all`` records every scenario
    again; ``new_episodes`` keeps the recorded interactions and adds new ones;
    ``none`` records nothing and replays the existing cassettes. A recording
    goes to a temporary file first and replaces the cassette only when the
    exchange has the scenario's expected outcome (``ok``); an unexpected one
    (a wrong base URL answering 404s) is refused and leaves the old file
    byte-identical, unless ``keep_unexpected`` (the drift check, which records
    into an empty folder to compare). Unknown names raise ``ValueError`` before
    anything is recorded.
    """
    if record_mode not in RECORD_MODES:
        raise ValueError(f"unknown record mode {record_mode!r}; known: {', '.join(RECORD_MODES)}")
    chosen = _check_names(provider, scenarios)
    key = _resolve_key(provider, api_key)
    cassette_dir = Path(cassette_dir)
    results: list[RecordResult] = []
    # One client for the run (building one per scenario costs an SSL context each).
    with httpx.Client() as http_client:
        for scenario in chosen:
            label = f"{provider} \u00d7 {scenario.name}"
            if not scenario.applies_to(provider):
                progress(f"{label} → skipped (not applicable to {provider})")
                continue
            path = cassette_path(cassette_dir, provider, scenario.name)
            result = _record_one(
                provider,
                scenario,
                path,
                key=key,
                base_url=base_url,
                http_client=http_client,
                record_mode=record_mode,
                keep_unexpected=keep_unexpected,
            )
            results.append(result)
            progress(f"{label} → {result.outcome}  [{path}]")
    if results:
        counts = {a: sum(r.action == a for r in results) for a in _ACTIONS}
        said = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
        summary = f"{provider} under {cassette_dir}: {said}"
        bad = [r for r in results if not r.ok]
        if bad:
            summary += f"; {len(bad)} FAILED ({', '.join(r.scenario for r in bad)}; see above)"
        progress(summary + ".")
        if counts["refused"]:
            progress(
                "Refused recordings were not written: check --base-url and the key; "
                "the existing cassettes are as they were."
            )
        if counts["written"]:
            progress(
                f"Next: run `provider-impl conformance --cassette-dir {cassette_dir} "
                f"--provider {provider} -- --snapshot-update` and review the snapshot diff "
                "(git diff) before committing the cassettes."
            )
    return results
