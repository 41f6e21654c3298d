"""Record the conformance scenarios into cassettes, from a live provider or the emulator."""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from vcr.filters import AVAILABLE_DECOMPRESSORS

from provider_impl.dialects import DIALECTS
from provider_impl.emulator._http import EMULATOR_HEADER
from provider_impl.errors import LlmError, TransportError
from provider_impl.events import MessageDelta, StreamEvent
from provider_impl.harness import run_turns
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.recording.config import make_vcr
from provider_impl.scenarios import SCENARIO_HEADER, SCENARIOS, Scenario
from provider_impl.types import CompletionResponse, StopReason

__all__ = [
    "ACCEPT_ENCODING",
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
    no cassette was written; ``outcome`` says what happened in one line. The
    events, response or error seen while recording are kept for inspection.
    """

    provider: str
    scenario: str
    path: Path
    outcome: str
    ok: bool
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


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


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
) -> RecordResult:
    dialect = DIALECTS[provider]
    secrets = [k for k in (key, scenario.api_key) if k]
    rewrite = {base_url: dialect.base_url} if base_url else None
    recorder = make_vcr(
        "all",
        secrets=secrets,
        rewrite_base_urls=rewrite,
        provenance=functools.partial(recorded_provenance, live=base_url is None),
    )
    client = OpenAiCompatibleProvider(
        dialect,
        api_key=scenario.api_key or key,
        base_url=base_url,
        max_retries=scenario.max_retries,
        headers={SCENARIO_HEADER: scenario.name, "accept-encoding": ACCEPT_ENCODING},
        http_client=http_client,
    )
    before = _file_state(path)
    with recorder.use_cassette(str(path)), client:
        turns = run_turns(client, scenario, provider)
    events, response, error = turns.events, turns.response, turns.error
    outcome, ok = _judge(scenario, events, response, error)
    if scenario.tool_results is not None and error is None:
        calls = turns.first.tool_calls if turns.first is not None else ()
        if not calls:
            outcome, ok = "UNEXPECTED: the first turn made no tool call to send back", False
        else:
            outcome = f"2 turns ({len(calls)} tool call(s) sent back), {outcome}"
    after = _file_state(path)
    if after is None or after == before:
        outcome += "; NO CASSETTE WRITTEN (nothing was recorded)"
        ok = False
    return RecordResult(
        provider,
        scenario.name,
        path,
        outcome,
        ok,
        events=tuple(events),
        response=response,
        error=error,
    )


def record_cassettes(
    provider: str,
    scenarios: Sequence[str] | None = None,
    *,
    base_url: str | None = None,
    cassette_dir: Path = Path("cassettes"),
    api_key: str | None = None,
    progress: Callable[[str], None] = print,
) -> list[RecordResult]:
    """Run each applicable scenario against ``base_url`` and write its cassette.

    The key comes from ``api_key``, else the provider's environment variable
    (``DIALECTS[provider].api_key_env``; claude_subscription needs none). Each
    cassette lands at ``<cassette_dir>/<provider>/<scenario>.yaml``, scrubbed,
    its URI showing the provider's real base URL, and is written only if no
    secret survives (else ``SecretLeakError`` is raised and recording stops).
    An unexpected outcome is reported (``ok=False``); its cassette is still
    written. Unknown names raise ``ValueError`` before anything is recorded.
    """
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
                provider, scenario, path, key=key, base_url=base_url, http_client=http_client
            )
            results.append(result)
            progress(f"{label} → {result.outcome}  [{path}]")
    if results:
        bad = sum(not r.ok for r in results)
        written = sum(r.path.is_file() and "NO CASSETTE WRITTEN" not in r.outcome for r in results)
        summary = (
            f"Recorded {written} of {len(results)} cassette(s) for {provider} under {cassette_dir}"
        )
        if bad:
            summary += f"; {bad} with an unexpected outcome (see above)"
        progress(summary + ".")
        if written:
            progress(
                f"Next: run `provider-impl conformance --cassette-dir {cassette_dir} "
                f"--provider {provider} -- --snapshot-update` and review the snapshot diff "
                "(git diff) before committing the cassettes."
            )
    return results
