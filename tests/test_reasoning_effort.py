"""Typed reasoning control (issue 9, part 4): ``CompletionRequest.reasoning_effort``.

Each dialect's record says how an effort goes on the wire (``ReasoningControl``:
the key, the value per effort, which models); the builder reads it, the
contracts accept what it sends, and the real requests under ``cassettes/real``
agree with it. An endpoint without a control refuses the field before any I/O.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from provider_impl import CompletionRequest, InvalidRequest, Message, OpenAiCompatibleProvider
from provider_impl.dialect_file import DialectFileError, dialect_from_toml, dialect_to_toml
from provider_impl.dialects import BUILTIN, ProviderDialect, ReasoningControl, get_dialect
from provider_impl.harness import load_exchange
from provider_impl.payload import build_payload
from provider_impl.scenarios import SCENARIOS
from provider_impl.schemas import rule_errors, schema_errors
from provider_impl.types import REASONING_EFFORTS

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "cassettes" / "real"


def _body(dialect: ProviderDialect, model: str, effort: Any) -> dict[str, Any]:
    request = CompletionRequest([Message.user("What is 2 + 2?")], reasoning_effort=effort)
    return build_payload(request, dialect, model, stream=False)


# What the providers document (see the comments on each record in dialects.py).
EXPECTED: list[tuple[str, str, str, Any]] = [
    ("openai", "o3-mini", "low", ("reasoning_effort", "low")),
    ("openai", "gpt-5.2", "xhigh", ("reasoning_effort", "xhigh")),
    ("openai", "gpt-5.2", "max", ("reasoning_effort", "max")),
    ("mistral", "mistral-small-latest", "high", ("reasoning_effort", "high")),
    ("mistral", "mistral-small-latest", "max", ("reasoning_effort", "max")),
    ("gemini", "gemini-2.5-flash", "none", ("reasoning_effort", "none")),
    ("gemini", "gemini-3-flash-preview", "minimal", ("reasoning_effort", "minimal")),
    ("gemini", "gemini-3-flash-preview", "xhigh", None),
    ("glm", "glm-5.2", "max", ("reasoning_effort", "max")),
    ("glm", "glm-5.3", "none", ("reasoning_effort", "none")),
    ("glm", "glm-4.7", "high", ("thinking", {"type": "enabled"})),
    ("glm", "glm-5.1", "none", ("thinking", {"type": "disabled"})),
    ("claude_subscription", "claude-sonnet-4-20250514", "high", None),
]


@pytest.mark.parametrize(("provider", "model", "effort", "sent"), EXPECTED)
def test_each_dialect_sends_an_effort_its_own_way(
    provider: str, model: str, effort: str, sent: Any
) -> None:
    dialect = get_dialect(provider)
    if sent is None:
        with pytest.raises(InvalidRequest) as err:
            _body(dialect, model, effort)
        assert err.value.field == "reasoning_effort"
        assert provider in err.value.message
        return
    body = _body(dialect, model, effort)
    key, value = sent
    assert body[key] == value
    others = {c.param for c in dialect.reasoning} - {key}
    assert not others & body.keys(), "one control per model, never two"


@pytest.mark.parametrize("dialect", BUILTIN, ids=lambda d: d.name)
def test_every_effort_is_sent_within_the_contract_or_refused(dialect: ProviderDialect) -> None:
    """The contract accepts every body the builder makes, and the rules hold."""
    models = {dialect.default_model} | {
        m for m in ("glm-4.7", "glm-5.2", "gemini-3-flash-preview") if m.startswith(dialect.name)
    }
    sent = 0
    for model in sorted(models):
        control = dialect.reasoning_for(model)
        for effort in REASONING_EFFORTS:
            if control is None or effort not in control.values:
                with pytest.raises(InvalidRequest, match="reasoning_effort"):
                    _body(dialect, model, effort)
                continue
            body = _body(dialect, model, effort)
            assert schema_errors(dialect.contract_name, body) == [], (model, effort)
            assert rule_errors(dialect, body) == [], (model, effort)
            sent += 1
    assert (sent > 0) == bool(dialect.reasoning)


@pytest.mark.parametrize("bad", ["extreme", "HIGH", 3, True])
def test_an_unknown_effort_is_refused_naming_the_field(bad: Any) -> None:
    with pytest.raises(InvalidRequest) as err:
        _body(get_dialect("openai"), "o3-mini", bad)
    assert err.value.field == "reasoning_effort"
    assert "none, minimal, low, medium, high, xhigh, max" in err.value.message


def test_the_proxy_refuses_before_any_io() -> None:
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500))
    client = OpenAiCompatibleProvider.claude_subscription(
        http_client=httpx.Client(transport=transport)
    )
    request = CompletionRequest([Message.user("hi")], reasoning_effort="high")
    with client, pytest.raises(InvalidRequest) as err:
        client.complete(request)
    assert err.value.field == "reasoning_effort"
    assert calls == []


def _real_requests() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted(REAL.glob("*/*.yaml")):
        provider = path.parent.name
        if provider not in {d.name for d in BUILTIN}:
            continue
        exchange = load_exchange(path)
        body = exchange.request_body
        if exchange.status < 300 and isinstance(body, dict):
            thinking = body.get("thinking")
            if "reasoning_effort" in body or (isinstance(thinking, dict) and "type" in thinking):
                found.append((provider, path.stem, body))
    return found


REAL_REASONING = _real_requests()


def test_the_real_corpus_has_reasoning_requests() -> None:
    providers = {p for p, _, _ in REAL_REASONING}
    assert {"openai", "glm"} <= providers, providers


@pytest.mark.parametrize(
    ("provider", "body"),
    [(p, b) for p, _, b in REAL_REASONING],
    ids=[n for _, n, _ in REAL_REASONING],
)
def test_real_reasoning_requests_agree_with_the_record(provider: str, body: dict[str, Any]) -> None:
    """What a real client sent, and the provider accepted, is what the builder
    sends for the same model and effort (GLM-5.2+: reasoning_effort; older GLM:
    thinking.type), and it fits the contract."""
    dialect = get_dialect(provider)
    model = body["model"]
    control = dialect.reasoning_for(model)
    assert control is not None, f"{provider} {model}: the record has no reasoning control"
    if "reasoning_effort" in body:
        effort = body["reasoning_effort"]
        assert control.param == "reasoning_effort", f"{model} takes {control.param}"
    else:
        effort = "none" if body["thinking"]["type"] == "disabled" else "high"
        assert control.param == "thinking", f"{model} takes {control.param}"
    built = _body(dialect, model, effort)
    value = built[control.param]
    if isinstance(value, dict):  # the real body may add more (clear_thinking)
        assert value.items() <= body[control.param].items()
    else:
        assert value == body[control.param]
    assert schema_errors(dialect.contract_name, body) == []


def test_rules_catch_reasoning_under_the_wrong_key() -> None:
    glm = get_dialect("glm")
    base = {"messages": [{"role": "user", "content": "q"}], "max_tokens": 9, "stream": False}
    new = {**base, "model": "glm-5.2", "thinking": {"type": "enabled"}}
    assert any("never as thinking" in e for e in rule_errors(glm, new))
    old = {**base, "model": "glm-4.7", "reasoning_effort": "high"}
    assert any("never as reasoning_effort" in e for e in rule_errors(glm, old))
    wrong = {**base, "model": "glm-4.7", "thinking": {"type": "sometimes"}}
    assert any("no value" in e for e in rule_errors(glm, wrong))


def test_the_reasoning_scenario_uses_the_typed_field_where_a_record_has_a_control() -> None:
    scenario = SCENARIOS["reasoning"]
    for dialect in BUILTIN:
        request = scenario.request_for(dialect.name)
        assert (request.reasoning_effort is not None) == bool(dialect.reasoning), dialect.name
        extra = request.extra_body or {}
        assert not {"reasoning_effort", "thinking"} & extra.keys(), "no hand-written control"


def test_controls_round_trip_through_dialect_files_and_bad_ones_are_named() -> None:
    glm = get_dialect("glm")
    assert dialect_from_toml(dialect_to_toml(glm)).reasoning == glm.reasoning
    text = dialect_to_toml(glm)
    with pytest.raises(DialectFileError, match=r"reasoning\[1\].*unknown effort\(s\) extreme"):
        dialect_from_toml(text.replace("max = { type", "extreme = { type"))
    with pytest.raises(DialectFileError, match=r"reasoning\[0\].*not a regular expression"):
        dialect_from_toml(text.replace('models = "glm-(', 'models = "glm-(('))
    without = text.split("\n[[reasoning]]", 1)[0] + "\n"  # a file may leave it out
    assert dialect_from_toml(without).reasoning == ()
    with pytest.raises(DialectFileError, match="reasoning: expected"):
        dialect_from_toml('reasoning = "high"\n' + without)


def test_a_control_is_checked_and_frozen() -> None:
    with pytest.raises(ValueError, match="unknown effort"):
        ReasoningControl("reasoning_effort", {"turbo": "turbo"})
    with pytest.raises(ValueError, match="at least one effort"):
        ReasoningControl("reasoning_effort", {})
    control = ReasoningControl("thinking", {"high": {"type": "enabled"}})
    with pytest.raises(TypeError):
        control.values["high"]["type"] = "disabled"  # type: ignore[index]
    # The body gets its own copy: editing it leaves the record alone.
    dialect = dataclasses.replace(get_dialect("glm"), reasoning=(control,))
    body = _body(dialect, "glm-4.7", "high")
    body["thinking"]["type"] = "disabled"
    assert _body(dialect, "glm-4.7", "high")["thinking"] == {"type": "enabled"}
