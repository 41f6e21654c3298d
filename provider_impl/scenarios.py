"""Conformance scenarios as data: one definition each, run against every provider.

A scenario says what to ask (the request, streaming or not, which key and
retries), which providers it applies to (from their records' flags), what the
emulated model answers (its reply builder, or the error the emulator sends),
and what must come back (a stop reason, tool calls, text, or a typed error).
The emulator picks the scenario by the ``x-emulator-scenario`` header (which
real providers ignore); the conformance suite replays the recorded cassettes
and checks the expectations. This is the one home of every scenario.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from provider_impl.dialects import DIALECTS, ProviderDialect, get_dialect
from provider_impl.errors import (
    AuthenticationFailed,
    ContextLengthExceeded,
    InvalidRequest,
    LlmError,
    Overloaded,
    RateLimited,
    StreamError,
)
from provider_impl.reply_script import (
    UNICODE_SAMPLE,
    ReplyScript,
    ToolCallSpec,
    content_text,
    last_user_text,
    max_tokens_of,
    messages_of,
    prompt_tokens,
    request_tools,
    sample_arguments,
    split_words,
    stop_strings,
)
from provider_impl.types import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ReasoningEffort,
    StopReason,
    ToolCall,
    ToolDefinition,
)

__all__ = [
    "EMULATED_ERRORS",
    "SCENARIOS",
    "SCENARIO_HEADER",
    "Scenario",
    "get_scenario",
    "providers",
]

SCENARIO_HEADER = "x-emulator-scenario"


def providers() -> tuple[str, ...]:
    """Every provider known now: the built-in ones and any loaded dialect file."""
    return tuple(DIALECTS)


# Not key-shaped on purpose: it must be refused, and never trip a secret scan.
INVALID_KEY = "invalid-key-for-conformance"

# Both tools take one argument: the city.
_A_CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
WEATHER = ToolDefinition("get_weather", "Current weather for a city.", _A_CITY)
LOCAL_TIME = ToolDefinition("get_local_time", "Current local time in a city.", _A_CITY)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    request: CompletionRequest
    stream: bool = True
    # None: every provider. Otherwise which dialects can produce this outcome,
    # decided from the record's flags (never from its name).
    applies: Callable[[ProviderDialect], bool] | None = None
    # Additions to the request (a model that reasons, a rejected parameter), by
    # provider name or, for a provider without its own entry, by its wire format.
    extra_body: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model: Mapping[str, str] = field(default_factory=dict)
    # Sent as CompletionRequest.reasoning_effort wherever the dialect's record has a
    # reasoning control for the model (the others are asked without it).
    reasoning_effort: ReasoningEffort | None = None
    # Two turns: the first reply's tool calls go back as they came (the assistant
    # message), each answered with the result named here for its tool; the
    # expectations below are the second reply's. None: one request.
    tool_results: Mapping[str, str] | None = None
    api_key: str | None = None
    max_retries: int = 0
    expect_error: type[LlmError] | None = None
    expect_stop_reason: StopReason | None = None
    # The recorded request must be accepted by the provider's schema (False when the
    # scenario deliberately sends a parameter the provider rejects).
    schema_valid: bool = True
    # The expected error comes with an HTTP error status (False: inside a 200 reply).
    error_status: bool = True
    # -- what the emulated model answers --
    # The neutral script of a successful reply, from the request body and the
    # x-emulator-variant header.
    reply: Callable[[dict[str, Any], str], ReplyScript] | None = None
    # The error reply the emulator sends instead (a key of EMULATED_ERRORS).
    emulated_error: str | None = None
    # A stream breaks with an in-band error after this many frames (whole: a 500).
    in_band_error_after: int | None = None
    # HTTP chunks are cut inside multi-byte UTF-8 characters.
    split_utf8: bool = False
    # -- what must come back (besides expect_error / expect_stop_reason) --
    # How many tool calls the reply makes (their names are among the request's tools).
    expect_tool_calls: int = 0
    # Substrings the reply's text must contain.
    expect_text: tuple[str, ...] = ()
    # The reply reasons: thinking is streamed where the provider streams it.
    expect_thinking: bool = False

    def applies_to(self, provider: str) -> bool:
        return self.applies is None or self.applies(get_dialect(provider))

    def request_for(self, provider: str) -> CompletionRequest:
        """The request as sent to ``provider``, with its per-provider additions."""
        req = self.request
        dialect = get_dialect(provider)
        wire = dialect.wire
        extra = self.extra_body.get(provider, self.extra_body.get(wire))
        model = self.model.get(provider, self.model.get(wire))
        effort = self.reasoning_effort
        if effort is not None and dialect.reasoning_for(
            model or req.model or dialect.default_model
        ):
            req = dataclasses.replace(req, reasoning_effort=effort)
        if extra is None and model is None:
            return req
        merged = {**(req.extra_body or {}), **(extra or {})}
        return dataclasses.replace(req, model=model or req.model, extra_body=merged or None)

    def followup(self, request: CompletionRequest, reply: CompletionResponse) -> CompletionRequest:
        """The second turn of a two-turn scenario: ``reply``'s calls sent back with results.

        The calls go back as the client decoded them (ids, arguments and any
        thought signature), which is what a provider checks on the follow-up.
        """
        results = self.tool_results or {}
        answers = [
            Message.tool_result(c.id, results.get(c.name, f"no result for {c.name}"))
            for c in reply.tool_calls
        ]
        turn = Message.assistant(reply.text or None, tool_calls=reply.tool_calls)
        return dataclasses.replace(request, messages=[*request.messages, turn, *answers])

    def script_for(self, body: dict[str, Any], variant: str = "") -> ReplyScript:
        """What the emulated model says to ``body`` (a scenario with a reply)."""
        if self.reply is None:
            raise ValueError(f"scenario {self.name!r} answers with an error, not a reply")
        return self.reply(body, variant)


#: The error replies the emulator can send for a scenario (each wire format has them).
EMULATED_ERRORS = ("auth", "rate_limit", "context_length", "invalid_param", "overloaded")


# -- reply builders: what the emulated model says ------------------------------


def _start(body: dict[str, Any]) -> tuple[ReplyScript, str, str]:
    script = ReplyScript(prompt_tokens=max(1, prompt_tokens(body)))
    user = last_user_text(body)
    return script, user, f"Echo: {user}"


def _echo_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, _, echo = _start(body)
    script.text = split_words(echo)
    return script


def _interrupted_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, _, echo = _start(body)
    script.text = split_words(echo + " This reply is interrupted by a server error before it ends.")
    return script


def _multi_turn_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, user, _ = _start(body)
    msgs = messages_of(body)
    system = " ".join(
        content_text(m.get("content")) for m in msgs if m.get("role") in ("system", "developer")
    ).strip()
    n_user = sum(1 for m in msgs if m.get("role") == "user")
    script.text = split_words(
        f"You said {n_user} things in {len(msgs)} messages; "
        f"system: {system or '(none)'}; last: {user}"
    )
    # A multi-turn conversation reuses its prefix: report part of it as cached.
    script.cached_tokens = (script.prompt_tokens // 2) if len(msgs) > 2 else 0
    return script


def _tool_reply(calls: int) -> Callable[[dict[str, Any], str], ReplyScript]:
    """``calls`` calls: the first tools of the request (the first one again if it has one)."""

    def reply(body: dict[str, Any], variant: str) -> ReplyScript:
        script, user, _ = _start(body)
        tools = request_tools(body)
        if not tools:
            script.text = split_words("No tools were provided, so I cannot call one.")
            return script
        script.tool_preamble = split_words("I'll check that for you.")
        script.tool_thinking = split_words(f"The user asks: {user} I should call {tools[0][0]}.")
        for i in range(calls):
            name, params = tools[i % len(tools)]
            script.tool_calls.append(ToolCallSpec(name, sample_arguments(params, i // len(tools))))
        script.finish = "tool_calls"
        return script

    return reply


def _tool_result_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, _, _ = _start(body)
    results = [content_text(m.get("content")) for m in messages_of(body) if m.get("role") == "tool"]
    script.text = split_words(
        f"The tool returned: {results[-1]}"
        if results
        else "No tool result was found in the conversation."
    )
    return script


def _round_trip_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    """A tool call first; once the conversation ends with its result, an answer using it."""
    msgs = messages_of(body)
    if msgs and msgs[-1].get("role") == "tool":
        return _tool_result_reply(body, variant)
    return _tool_reply(1)(body, variant)


def _cut_short_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, _, echo = _start(body)
    words = split_words(echo + " and then a good deal more text that never gets finished")
    limit = max_tokens_of(body) or 5
    script.text = words[: max(1, min(limit, len(words) - 1))]
    script.max_completion_tokens = limit
    # Mistral's variant of the finish reason (x-emulator-variant: model_length).
    script.finish = "model_length" if variant == "model_length" else "length"
    return script


def _stop_sequence_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, _, echo = _start(body)
    full = f"{echo.rstrip('.!? ')}. Then: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and so on."
    stops = stop_strings(body)
    found = [i for i in (full.find(s) for s in stops) if i != -1]
    cut = min(found, default=len(full))
    if stops and not found:
        # The stop string was not in the natural text: generate it at the end.
        full = full + " " + stops[0]
        cut = len(full) - len(stops[0])
    script.text = split_words(full[:cut]) if cut else [""]
    return script


def _reasoning_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, user, echo = _start(body)
    script.thinking = split_words(
        f"The user wrote: {user} A short, direct answer that echoes it is best."
    )
    script.text = split_words(echo)
    return script


def _unicode_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, _, echo = _start(body)
    script.text = split_words(f"{echo} {UNICODE_SAMPLE}")
    return script


def _filtered_reply(body: dict[str, Any], variant: str) -> ReplyScript:
    script, _, _ = _start(body)
    script.text = split_words("I can help with part of that, but")
    script.finish = "content_filter"
    return script


def _ask(text: str, **kw: Any) -> CompletionRequest:
    kw.setdefault("max_tokens", 256)
    return CompletionRequest(messages=[Message.user(text)], **kw)


def _checks_key(d: ProviderDialect) -> bool:
    return d.checks_key


def _refuses_unknown_params(d: ProviderDialect) -> bool:
    return not d.ignores_unknown_params


def _filters_content(d: ProviderDialect) -> bool:
    return d.features.content_filter


def _calls_tools(d: ProviderDialect) -> bool:
    return d.capabilities.tool_calling


def _caps_output(d: ProviderDialect) -> bool:
    return d.features.output_cap


def _overflows_context(d: ProviderDialect) -> bool:
    return d.features.context_length_error


def _limits_by_status(d: ProviderDialect) -> bool:
    return d.features.rate_limit_status


def _limits_in_reply(d: ProviderDialect) -> bool:
    return d.usage_limit_prefix is not None


# A Gemini 3 model: it signs its tool calls and refuses a follow-up without the signature.
_SIGNING_MODEL = {"gemini": "gemini-3-flash-preview"}
_WEATHER_RESULT = {"get_weather": "18 degrees and sunny"}


_ROUND_TRIP = Scenario(
    "tool_round_trip",
    "Two turns: a tool call, then the call sent back as it came (Gemini 3: with its "
    "thought signature) with the tool's result; the reply uses the result.",
    _ask("What is the weather in Paris?", tools=[WEATHER], tool_choice="auto"),
    applies=_calls_tools,
    model=_SIGNING_MODEL,
    tool_results=_WEATHER_RESULT,
    expect_stop_reason=StopReason.END_TURN,
    reply=_round_trip_reply,
    expect_text=("18",),
)

_SCENARIOS = (
    Scenario(
        "text",
        "A short streamed reply.",
        _ask("Say hello to the conformance suite."),
        expect_stop_reason=StopReason.END_TURN,
        reply=_echo_reply,
    ),
    Scenario(
        "text_nonstream",
        "The same through complete(): one chat.completion body.",
        _ask("Say hello without streaming."),
        stream=False,
        expect_stop_reason=StopReason.END_TURN,
        reply=_echo_reply,
    ),
    Scenario(
        "system_multi_turn",
        "A system prompt first, then a three-turn conversation.",
        CompletionRequest(
            system="You are a terse assistant.",
            messages=[
                Message.user("My name is Ada."),
                Message.assistant("Hello Ada."),
                Message.user("What is my name?"),
            ],
            max_tokens=128,
            temperature=0.2,
        ),
        expect_stop_reason=StopReason.END_TURN,
        reply=_multi_turn_reply,
    ),
    Scenario(
        "tool_call",
        "One tool call; its arguments stream in the provider's style.",
        _ask("What is the weather in Paris?", tools=[WEATHER], tool_choice="auto"),
        applies=_calls_tools,
        expect_stop_reason=StopReason.TOOL_USE,
        reply=_tool_reply(1),
        expect_tool_calls=1,
    ),
    Scenario(
        "parallel_tool_calls",
        "Two tool calls in one turn.",
        _ask(
            "What are the weather and the local time in Paris?",
            tools=[WEATHER, LOCAL_TIME],
            tool_choice="auto",
            parallel_tool_calls=True,
        ),
        applies=_calls_tools,
        expect_stop_reason=StopReason.TOOL_USE,
        reply=_tool_reply(2),
        expect_tool_calls=2,
    ),
    Scenario(
        "tool_result_followup",
        "A tool's result sent back; the reply uses it.",
        CompletionRequest(
            messages=[
                Message.user("What is the weather in Paris?"),
                # Nine alphanumerics: the one id shape every provider (Mistral too) accepts.
                Message.assistant(
                    tool_calls=[ToolCall("call12345", "get_weather", {"city": "Paris"})]
                ),
                Message.tool_result("call12345", "18 degrees and sunny"),
            ],
            tools=[WEATHER],
            max_tokens=256,
        ),
        applies=_calls_tools,
        expect_stop_reason=StopReason.END_TURN,
        reply=_tool_result_reply,
        expect_text=("18",),
    ),
    _ROUND_TRIP,
    dataclasses.replace(
        _ROUND_TRIP,
        name="tool_round_trip_nonstream",
        description="The same two turns through complete().",
        request=_ask(
            "What is the weather in Paris? Use the tool.", tools=[WEATHER], tool_choice="auto"
        ),
        stream=False,
    ),
    Scenario(
        "max_tokens_length",
        "The output cap cuts the reply short.",
        _ask("Write a long essay about the sea.", max_tokens=16),
        applies=_caps_output,
        expect_stop_reason=StopReason.MAX_TOKENS,
        reply=_cut_short_reply,
    ),
    Scenario(
        "stop_sequence",
        "A stop sequence ends the reply early.",
        _ask("Count from 1 to 10, comma separated.", stop_sequences=["5"]),
        expect_stop_reason=StopReason.END_TURN,
        reply=_stop_sequence_reply,
    ),
    Scenario(
        "reasoning",
        "A model that reasons: thinking streamed where the provider streams it.",
        _ask("What is 17 times 23? Think it through.", max_tokens=2048),
        # Mistral's adjustable reasoning (docs.mistral.ai/capabilities/reasoning/adjustable).
        model={"openai": "o3-mini", "mistral": "mistral-small-latest"},
        reasoning_effort="high",
        # Gemini streams thought summaries only when asked (no typed field for that).
        extra_body={
            "gemini": {"extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}},
            # OpenRouter's unified switch; for Claude a thinking budget below max_tokens.
            "openrouter": {"reasoning": {"max_tokens": 1024}},
        },
        expect_stop_reason=StopReason.END_TURN,
        reply=_reasoning_reply,
        expect_thinking=True,
    ),
    Scenario(
        "unicode",
        "Multi-byte text, emoji and line separators inside JSON strings.",
        _ask(
            "Repeat: h\u00e9llo w\u00f6rld \u4f60\u597d "
            "\U0001f469\u200d\U0001f4bb \u2028 \u2029 \u0085"
        ),
        expect_stop_reason=StopReason.END_TURN,
        reply=_unicode_reply,
        split_utf8=True,
        expect_text=("h\u00e9llo", "\u4f60\u597d", "\U0001f469\u200d\U0001f4bb", "\u2028"),
    ),
    Scenario(
        "error_auth",
        "A wrong key is refused with the provider's 401.",
        _ask("This key is wrong."),
        applies=_checks_key,
        api_key=INVALID_KEY,
        expect_error=AuthenticationFailed,
        emulated_error="auth",
    ),
    Scenario(
        "error_rate_limit",
        "429 with the provider's retry hint.",
        _ask("Too many requests."),
        applies=_limits_by_status,
        expect_error=RateLimited,
        emulated_error="rate_limit",
    ),
    Scenario(
        "error_usage_limit",
        "The usage limit, answered as a 200 reply: 'Claude AI usage limit reached|<reset>'.",
        _ask("Too many requests this month."),
        stream=False,
        applies=_limits_in_reply,
        expect_error=RateLimited,
        error_status=False,
        emulated_error="rate_limit",
    ),
    Scenario(
        "error_context_length",
        "The prompt is longer than the context window.",
        _ask("Pretend this prompt is two million tokens long."),
        applies=_overflows_context,
        expect_error=ContextLengthExceeded,
        emulated_error="context_length",
    ),
    Scenario(
        "error_invalid_param",
        "A parameter the provider rejects (Mistral: max_completion_tokens).",
        _ask("This request carries a parameter the provider refuses."),
        applies=_refuses_unknown_params,
        extra_body={
            "openai": {"not_a_real_param": True},
            "gemini": {"not_a_real_param": True},
            "mistral": {"max_completion_tokens": 256},
            "glm": {"not_a_real_param": True},
        },
        expect_error=InvalidRequest,
        schema_valid=False,
        emulated_error="invalid_param",
    ),
    Scenario(
        "error_overloaded",
        "The provider is overloaded (503, 500 or 529).",
        _ask("The server is busy."),
        expect_error=Overloaded,
        emulated_error="overloaded",
    ),
    Scenario(
        "error_in_stream",
        "The stream starts, then fails in-band.",
        _ask("Start, then fail."),
        expect_error=StreamError,
        reply=_interrupted_reply,
        in_band_error_after=3,
    ),
    Scenario(
        "content_filter",
        "The reply is cut by the provider's content filter.",
        _ask("Say something the filter stops."),
        applies=_filters_content,
        expect_stop_reason=StopReason.CONTENT_FILTER,
        reply=_filtered_reply,
    ),
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in _SCENARIOS})


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown scenario {name!r}; known scenarios: {known}") from None
