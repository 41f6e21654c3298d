"""Provider dialects as data: one record per provider (docs/DIALECTS.md).

Everything that differs between providers lives in a ``ProviderDialect``; the
rest of the library reads flags and names from it and never asks which
provider it is talking to. Adding a provider means adding one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from provider_impl.errors import ErrorKind, UsageError
from provider_impl.types import REASONING_EFFORTS

__all__ = [
    "BUILTIN",
    "CLAUDE_SUBSCRIPTION",
    "CONTENT_FORMS",
    "DIALECTS",
    "GEMINI",
    "GLM",
    "MISTRAL",
    "OPENAI",
    "OPENROUTER",
    "REQUEST_OPTIONS",
    "RESPONSE_FORMATS",
    "ConformanceFeatures",
    "HasDialect",
    "ModelLimits",
    "ProviderCapabilities",
    "ProviderDialect",
    "ReasoningControl",
    "ToolCallIdFormat",
    "get_dialect",
    "register_dialect",
    "resolve_dialect",
    "thawed",
]


@dataclass(frozen=True, slots=True)
class ProviderCapabilities:
    """What an endpoint can do. The defaults are what ``custom()`` assumes of an
    OpenAI-compatible endpoint it knows nothing else of (streaming and tools, text
    only, a 128k window, a 16k output cap); a record states where it differs."""

    streaming: bool = True
    tool_calling: bool = True
    vision: bool = False
    extended_thinking: bool = False
    max_context_tokens: int = 128_000
    max_output_tokens: int = 16_384


@dataclass(frozen=True, slots=True)
class ConformanceFeatures:
    """What a provider's real API does, as the conformance properties need to know it.

    One set of properties serves every provider; these flags say which of them
    apply (langchain's standard-tests style), and which scenarios a provider can
    produce at all.
    """

    # Reasoning text is streamed (GLM reasoning_content, Mistral thinking parts,
    # Gemini thoughts); OpenAI and the Claude proxy only count it, if at all.
    streams_thinking: bool = False
    # Usage reports reasoning tokens for a reasoning model.
    reports_reasoning_tokens: bool = False
    # A 429 says how long to wait (retry-after header or Google's RetryInfo).
    retry_after: bool = True
    # The context-length error states the limit and the prompt's size.
    context_numbers: bool = True
    # Stream chunks carry an id.
    message_id: bool = True
    # Its 401 body carries an error code (Mistral's is {"message", "request_id"} only).
    auth_error_code: bool = True
    # It can end a reply with a content-filter finish reason.
    content_filter: bool = False
    # A stream reports usage (the Claude proxy's streams never do; its whole replies do).
    stream_usage: bool = True
    # It honours the output cap and says so with a length finish reason (the
    # Claude proxy ignores max_tokens and always says "stop").
    output_cap: bool = True
    # A prompt can outgrow the context window and be refused for it (through the
    # Claude proxy the argument limit comes first: it is refused before sending).
    context_length_error: bool = True
    # Its rate limit is an HTTP 429; False: the limit arrives inside a 200 reply
    # (the Claude CLI's usage-limit sentence, see ``usage_limit_prefix``).
    rate_limit_status: bool = True


def _frozen(value: Any) -> Any:
    """``value`` with every mapping made a read-only one (records are shared)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def thawed(value: Any) -> Any:
    """``value`` with every mapping that is not a dict made one, at any depth: a
    record's frozen value (``_frozen``) as the JSON data a body holds.

    Containers with nothing to change are returned as they are, so a body built
    from plain JSON data is the same objects as before.
    """
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            p = thawed(v)
            if p is not v:
                if out is None:
                    out = dict(value)
                out[k] = p
        return value if out is None else out
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [thawed(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


@dataclass(frozen=True, slots=True)
class ReasoningControl:
    """How ``CompletionRequest.reasoning_effort`` goes on the wire for some models.

    ``values`` maps each effort the models accept to the JSON value sent under the
    top-level key ``param``; an effort it leaves out is refused with
    ``InvalidRequest`` before any I/O. ``models`` is a regular expression a model
    name must match from its start; ``None`` matches every model.
    """

    param: str
    values: Mapping[str, Any]
    models: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.param, str) or not self.param:
            raise UsageError(
                f"ReasoningControl.param must be a non-empty string, got {self.param!r}"
            )
        if not isinstance(self.values, Mapping) or not self.values:
            raise UsageError("ReasoningControl.values must map at least one effort to a value")
        unknown = sorted(str(k) for k in self.values if k not in REASONING_EFFORTS)
        if unknown:
            raise UsageError(
                f"ReasoningControl.values: unknown effort(s) {', '.join(unknown)}; "
                f"known: {', '.join(REASONING_EFFORTS)}"
            )
        if self.models is not None:
            try:
                re.compile(self.models)
            except re.error as err:
                raise UsageError(
                    f"ReasoningControl.models: not a regular expression: {err}"
                ) from None
        object.__setattr__(self, "values", _frozen(self.values))

    def matches(self, model: str) -> bool:
        return self.models is None or re.match(self.models, model) is not None

    @property
    def efforts(self) -> tuple[str, ...]:
        """The accepted efforts, least effort first."""
        return tuple(e for e in REASONING_EFFORTS if e in self.values)


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """The output cap and context window of the models whose name matches ``models``
    (a regular expression matched from the name's start). A model no entry matches
    gets the record's ``capabilities`` (``ProviderDialect.limits_for``)."""

    models: str
    max_output_tokens: int
    max_context_tokens: int

    def __post_init__(self) -> None:
        try:
            re.compile(self.models)
        except (re.error, TypeError) as err:
            raise UsageError(f"ModelLimits.models: not a regular expression: {err}") from None
        for name in ("max_output_tokens", "max_context_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"ModelLimits.{name} must be a positive integer, got {value!r}")

    def matches(self, model: str) -> bool:
        return re.match(self.models, model) is not None


#: The wire forms a content part can take, by part kind (``ProviderDialect.content_parts``
#: maps a kind to one of its forms; payload.py builds each).
CONTENT_FORMS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "text": frozenset({"text"}),
        # {"type": "image_url", "image_url": {"url": <URL or data URL>, "detail"?}}
        "image": frozenset({"image_url"}),
        # input_audio: {"data": <base64>, "format": ...}; input_audio_base64: the base64 alone
        "audio": frozenset({"input_audio", "input_audio_base64"}),
        # file: {"file": {"file_data": <data URL>, "filename"} or {"file_id"}};
        # file_or_url: the same, with a URL allowed as file_data;
        # document_url: {"document_url": <URL or data URL>, "document_name"?} or
        # {"type": "file", "file_id"}
        "file": frozenset({"file", "file_or_url", "document_url"}),
    }
)

#: The typed options of ``CompletionRequest`` a record may map to a body key.
REQUEST_OPTIONS: tuple[str, ...] = ("response_format", "seed", "logprobs", "top_logprobs", "n")

#: The ``response_format`` types a record may list in ``response_formats``.
RESPONSE_FORMATS: frozenset[str] = frozenset({"text", "json_object", "json_schema"})


@dataclass(frozen=True, slots=True)
class ToolCallIdFormat:
    """The tool-call ids an endpoint accepts back in a conversation: exactly
    ``length`` characters, each one of ``alphabet`` (Mistral: 9 of [a-zA-Z0-9])."""

    alphabet: str
    length: int

    def __post_init__(self) -> None:
        if not isinstance(self.alphabet, str) or len(set(self.alphabet)) < 2:
            raise UsageError("ToolCallIdFormat.alphabet must hold at least two distinct characters")
        if not isinstance(self.length, int) or isinstance(self.length, bool) or self.length < 1:
            raise UsageError(
                f"ToolCallIdFormat.length must be a positive integer, got {self.length!r}"
            )

    def matches(self, call_id: str) -> bool:
        return len(call_id) == self.length and all(c in self.alphabet for c in call_id)


#: Letters and digits, the alphabet of Mistral's ids.
ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _same(efforts: tuple[str, ...]) -> Mapping[str, Any]:
    """Efforts sent under their own names."""
    return {e: e for e in efforts}


@dataclass(frozen=True, slots=True)
class ProviderDialect:
    """What one provider's OpenAI-compatible endpoint accepts and sends."""

    name: str
    base_url: str
    default_model: str
    capabilities: ProviderCapabilities
    # Environment variable holding the key; None when the endpoint needs no real key.
    api_key_env: str | None
    # Sent when no key is configured (a local proxy that ignores auth).
    default_api_key: str | None = field(default=None, repr=False)
    auth_header: str = "Authorization"
    auth_scheme: str | None = "Bearer"
    # The JSON name of the output cap: OpenAI wants max_completion_tokens.
    max_tokens_param: str = "max_tokens"
    # Send stream_options.include_usage when streaming (Mistral rejects it with 422).
    stream_usage_option: bool = True
    # Keys this provider refuses (422/400); the builder leaves them out even when
    # the request asks for them (only an explicit extra_body can send one).
    forbidden_params: frozenset[str] = frozenset()
    # The highest temperature the provider accepts.
    max_temperature: float = 2.0
    # Provider error codes (GLM's "1261", Mistral's "1300") -> error kind.
    error_codes: Mapping[str, ErrorKind] = field(default_factory=lambda: MappingProxyType({}))
    # The endpoint accepts and ignores parameters it does not know (a local proxy)
    # instead of refusing them.
    ignores_unknown_params: bool = False
    # Which cost-table prefix prices this provider's models.
    cost_provider: str | None = None
    # The provider id the genai-prices package knows it by (Gemini: google, GLM: zai);
    # None: the pricing key.
    prices_provider: str | None = None
    # The wire format the bundled emulator speaks for it (one of emulator.WIRES).
    wire: str = "openai"
    # Which request/reply contract (provider_impl/schemas/<contract>.json) it follows.
    contract: str | None = None
    features: ConformanceFeatures = field(default_factory=ConformanceFeatures)
    # Thinking tokens are in total_tokens but not in completion_tokens, and no
    # reasoning_tokens is sent (Gemini): total - prompt - completion is the reasoning.
    reasoning_outside_completion: bool = False
    # The default read timeout in seconds (the Claude proxy gives its CLI 300 s).
    read_timeout: float = 60.0
    # A 5xx is worth retrying. False for the Claude proxy: its 500 is the CLI's own
    # failure, and each attempt starts another CLI run.
    retry_server_errors: bool = True
    # Model names the endpoint knows, as a word a name contains -> the name to send
    # (a name that is already one of the values is sent as it is). Empty: any name is
    # sent unchanged. Otherwise a name matching none is refused (the Claude proxy runs
    # every name it does not know as Opus).
    model_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The endpoint hands the whole conversation to a program as ONE command-line
    # argument: each message's text in its role's template ("{content}"; roles not
    # listed are dropped), joined by the separator and trimmed. Linux refuses an
    # argument of more bytes than MAX_ARG_STRLEN (131,072, its NUL included).
    prompt_arg_max_bytes: int | None = None
    prompt_arg_templates: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    prompt_arg_separator: str = "\n"
    # A whole reply (or a stream's whole text) that is this prefix followed by a Unix
    # time is a rate limit lasting until then (the Claude CLI's usage-limit answer).
    usage_limit_prefix: str | None = None
    # How reasoning_effort is sent, per family of models: the first control whose
    # ``models`` matches the request's model wins. Empty: the endpoint has no
    # reasoning control, and a request that sets one is refused.
    reasoning: tuple[ReasoningControl, ...] = ()
    # Tool calls go back with the thought signature they came with, as
    # tool_calls[].extra_content.google.thought_signature (Gemini; Gemini 3 answers
    # a follow-up without it with 400). Other dialects never receive it.
    sends_thought_signatures: bool = False
    # Content parts it takes, by part kind (text, image, audio, file) -> wire form (one
    # of CONTENT_FORMS). A kind left out is refused with InvalidRequest naming the part.
    # Without "text", content is sent as a string only (text parts are joined).
    content_parts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The audio formats an audio part may have; empty: any.
    audio_formats: frozenset[str] = frozenset()
    # Typed request options it takes -> the body key each goes under (Mistral sends
    # seed as random_seed). An option left out is refused (n=1 is simply not sent).
    request_options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The response_format types it takes (text, json_object, json_schema).
    response_formats: frozenset[str] = frozenset()
    # Output caps and context windows per family of models: the first entry whose
    # ``models`` matches wins; any other model gets ``capabilities``' numbers.
    model_limits: tuple[ModelLimits, ...] = ()
    # Tool-call ids it refuses unless they have this shape (Mistral: 400 "Tool call id
    # was ... but must be a-z, A-Z, 0-9, with a length of 9"); None: any non-empty id.
    # A conversation handed over from another provider gets its ids rewritten to it.
    tool_call_ids: ToolCallIdFormat | None = None
    # What a handed-over tool call that carries no signature of its own gets in its
    # place (Gemini 3 refuses an unsigned call; Google documents a placeholder for
    # calls another model made). Only read where sends_thought_signatures is set.
    foreign_thought_signature: str | None = None
    # The assistant-message key under which earlier reasoning goes back (GLM's
    # reasoning_content); None: the endpoint has no such key, and reasoning is dropped.
    reasoning_history_field: str | None = None

    def reasoning_for(self, model: str) -> ReasoningControl | None:
        """The reasoning control for ``model``, or None when it has none."""
        return next((c for c in self.reasoning if c.matches(model)), None)

    def limits_for(self, model: str) -> ModelLimits:
        """The output cap and context window for ``model``: its ``model_limits`` entry,
        else the record's ``capabilities`` (the documented fallback)."""
        found = next((m for m in self.model_limits if m.matches(model)), None)
        if found is not None:
            return found
        caps = self.capabilities
        return ModelLimits(".*", caps.max_output_tokens, caps.max_context_tokens)

    @property
    def pricing_key(self) -> str:
        return self.cost_provider or self.name

    @property
    def prices_key(self) -> str:
        return self.prices_provider or self.pricing_key

    @property
    def contract_name(self) -> str:
        return self.contract or self.name

    @property
    def checks_key(self) -> bool:
        """Whether a wrong key is refused (a local proxy with a dummy key checks none)."""
        return self.api_key_env is not None


# Shared by several records below.
#: Every effort, sent under its own name as ``reasoning_effort``.
_EFFORT_BY_NAME = (ReasoningControl("reasoning_effort", _same(REASONING_EFFORTS)),)
#: Every typed request option, under its own name.
_EVERY_OPTION: Mapping[str, str] = MappingProxyType({o: o for o in REQUEST_OPTIONS})

OPENAI = ProviderDialect(
    name="openai",
    base_url="https://api.openai.com/v1",
    default_model="gpt-4o",
    api_key_env="OPENAI_API_KEY",
    capabilities=ProviderCapabilities(vision=True),
    max_tokens_param="max_completion_tokens",
    features=ConformanceFeatures(reports_reasoning_tokens=True, content_filter=True),
    # platform.openai.com/docs/api-reference/chat/create: reasoning_effort.
    # "max" as well: the measurements saw both endpoints accept it.
    reasoning=_EFFORT_BY_NAME,
    # platform.openai.com/docs/api-reference/chat/create: content parts, options.
    content_parts=MappingProxyType(
        {"text": "text", "image": "image_url", "audio": "input_audio", "file": "file"}
    ),
    audio_formats=frozenset({"wav", "mp3"}),
    request_options=_EVERY_OPTION,
    response_formats=RESPONSE_FORMATS,
    # platform.openai.com/docs/models (output cap, context window), most specific first.
    model_limits=(
        ModelLimits(r"gpt-4\.1", 32_768, 1_047_576),
        ModelLimits(r"gpt-5", 128_000, 400_000),
        ModelLimits(r"o[134](-mini)?([^a-z0-9]|$)", 100_000, 200_000),
        ModelLimits(r"gpt-4o", 16_384, 128_000),
        ModelLimits(r"gpt-4-turbo", 4_096, 128_000),
    ),
)

GEMINI = ProviderDialect(
    name="gemini",
    base_url="https://generativelanguage.googleapis.com/v1beta/openai",
    default_model="gemini-2.5-flash",
    api_key_env="GEMINI_API_KEY",
    capabilities=ProviderCapabilities(
        vision=True, max_context_tokens=1_000_000, max_output_tokens=65_536
    ),
    wire="gemini",
    features=ConformanceFeatures(streams_thinking=True, message_id=False, content_filter=True),
    reasoning_outside_completion=True,
    # ai.google.dev/gemini-api/docs/openai: mapped onto thinking levels / budgets.
    reasoning=(ReasoningControl("reasoning_effort", _same(REASONING_EFFORTS[:5])),),
    # ai.google.dev/gemini-api/docs/thought-signatures (OpenAI compatibility).
    sends_thought_signatures=True,
    # ai.google.dev/gemini-api/docs/openai: images and audio as parts; seed, n and
    # response_format (json_schema too); no logprobs there.
    content_parts=MappingProxyType({"text": "text", "image": "image_url", "audio": "input_audio"}),
    request_options=MappingProxyType(
        {"response_format": "response_format", "seed": "seed", "n": "n"}
    ),
    response_formats=RESPONSE_FORMATS,
    prices_provider="google",
    model_limits=(
        ModelLimits(r"gemini-2\.0-flash", 8_192, 1_048_576),
        ModelLimits(r"gemini-(2\.5|3)", 65_536, 1_048_576),
    ),
    # ai.google.dev/gemini-api/docs/thought-signatures (FAQ: calls another model made).
    foreign_thought_signature="skip_thought_signature_validator",
)

MISTRAL = ProviderDialect(
    name="mistral",
    base_url="https://api.mistral.ai/v1",
    default_model="mistral-large-latest",
    api_key_env="MISTRAL_API_KEY",
    capabilities=ProviderCapabilities(vision=True, max_output_tokens=32_768),
    stream_usage_option=False,
    forbidden_params=frozenset({"stream_options", "max_completion_tokens"}),
    max_temperature=1.5,
    error_codes=MappingProxyType({"1300": "rate_limited", "3051": "context_length"}),
    wire="mistral",
    features=ConformanceFeatures(streams_thinking=True, auth_error_code=False),
    # docs.mistral.ai/capabilities/reasoning/adjustable (mistral-small, mistral-medium-3.5).
    # "max" as well: the measurements saw both endpoints accept it.
    reasoning=_EFFORT_BY_NAME,
    # docs.mistral.ai (vision, audio, document QnA; chat completion API): images as
    # image_url, audio as the base64 text itself, documents as document_url; the seed
    # is random_seed; no logprobs.
    content_parts=MappingProxyType(
        {
            "text": "text",
            "image": "image_url",
            "audio": "input_audio_base64",
            "file": "document_url",
        }
    ),
    request_options=MappingProxyType(
        {"response_format": "response_format", "seed": "random_seed", "n": "n"}
    ),
    response_formats=RESPONSE_FORMATS,
    # Its own ids are 9 alphanumerics, and it refuses any other (400, code 3280).
    tool_call_ids=ToolCallIdFormat(ALPHANUMERIC, 9),
)

GLM = ProviderDialect(
    name="glm",
    base_url="https://api.z.ai/api/paas/v4",
    default_model="glm-4.7",
    api_key_env="ZAI_API_KEY",
    capabilities=ProviderCapabilities(max_context_tokens=200_000, max_output_tokens=128_000),
    # Not a documented Z.ai field; unknown fields get 400 code 1210.
    forbidden_params=frozenset({"parallel_tool_calls"}),
    max_temperature=1.0,
    wire="glm",
    # docs.z.ai (thinking mode): earlier reasoning goes back as reasoning_content.
    reasoning_history_field="reasoning_content",
    # docs.z.ai: GLM-5.2 and later take reasoning_effort (none ... max); the older
    # models can only switch thinking on or off.
    reasoning=(
        ReasoningControl(
            "reasoning_effort",
            _same(REASONING_EFFORTS),
            models=r"glm-(5\.([2-9]|[1-9][0-9])|[6-9]|[1-9][0-9])([^0-9]|$)",
        ),
        ReasoningControl(
            "thinking",
            {e: {"type": "disabled" if e == "none" else "enabled"} for e in REASONING_EFFORTS},
        ),
    ),
    features=ConformanceFeatures(
        streams_thinking=True,
        reports_reasoning_tokens=True,
        retry_after=False,
        context_numbers=False,
        content_filter=True,
    ),
    # docs.z.ai chat completion: text models take text parts; seed; response_format
    # text or json_object only (no json_schema); no n, no logprobs.
    content_parts=MappingProxyType({"text": "text"}),
    request_options=MappingProxyType({"response_format": "response_format", "seed": "seed"}),
    response_formats=frozenset({"text", "json_object"}),
    prices_provider="zai",
    model_limits=(ModelLimits(r"glm-4\.5", 98_304, 131_072),),
    error_codes=MappingProxyType(
        {
            "1000": "auth",
            "1001": "auth",
            "1002": "auth",
            "1003": "auth",
            "1004": "auth",
            "1113": "provider",  # account in arrears: retrying will not help
            "1210": "invalid_request",
            "1211": "invalid_request",  # model not found
            "1214": "invalid_request",
            "1261": "context_length",
            "1301": "invalid_request",  # prompt flagged as sensitive
            "1302": "rate_limited",
            "1303": "rate_limited",
            "1305": "rate_limited",
        }
    ),
)

# claude-max-api-proxy 1.0.0 (docs/CLAUDE_PROXY.md): it reads only model,
# messages, stream and user, and runs the Claude Code CLI once per request.
CLAUDE_SUBSCRIPTION = ProviderDialect(
    name="claude_subscription",
    base_url="http://localhost:3456/v1",
    # A name the proxy knows: it runs as Sonnet (an unknown name runs as Opus).
    default_model="claude-sonnet-4",
    api_key_env=None,
    capabilities=ProviderCapabilities(
        tool_calling=False, max_context_tokens=200_000, max_output_tokens=128_000
    ),
    default_api_key="dummy-key",
    ignores_unknown_params=True,
    cost_provider="anthropic",
    wire="claude_proxy",
    # It never streams usage: asking for it changes nothing.
    stream_usage_option=False,
    # The proxy kills the CLI after 300 s and then answers with an error.
    read_timeout=330.0,
    retry_server_errors=False,
    model_names=MappingProxyType(
        {"opus": "claude-opus-4", "sonnet": "claude-sonnet-4", "haiku": "claude-haiku-4"}
    ),
    prompt_arg_max_bytes=131_072,
    prompt_arg_templates=MappingProxyType(
        {
            "system": "<system>\n{content}\n</system>\n",
            "user": "{content}",
            "assistant": "<previous_response>\n{content}\n</previous_response>\n",
        }
    ),
    usage_limit_prefix="Claude AI usage limit reached|",
    features=ConformanceFeatures(
        stream_usage=False,
        output_cap=False,
        context_length_error=False,
        rate_limit_status=False,
    ),
)

# A gateway: Claude, Gemini, GPT and open models behind one OpenAI-style endpoint.
# Facts from its API reference (docs: api-reference, parameters, streaming, errors,
# usage accounting, reasoning tokens) and from the real exchanges in
# cassettes/real/openrouter/.
OPENROUTER = ProviderDialect(
    name="openrouter",
    base_url="https://openrouter.ai/api/v1",
    # The model most of the real exchanges ask for.
    default_model="anthropic/claude-sonnet-4.6",
    api_key_env="OPENROUTER_API_KEY",
    capabilities=ProviderCapabilities(
        vision=True, extended_thinking=True, max_context_tokens=200_000, max_output_tokens=64_000
    ),
    # The documented output cap (max_completion_tokens is accepted too).
    max_tokens_param="max_tokens",
    # Usage comes with every reply; stream_options.include_usage is deprecated
    # and has no effect (docs: usage accounting).
    stream_usage_option=False,
    # "If the chosen model doesn't support a request parameter ... the parameter
    # is ignored" (docs: parameters); unknown ones are not refused either.
    ignores_unknown_params=True,
    # Its error.code repeats the HTTP status, which decides the kind; an in-band
    # {"error": ...} chunk stays a StreamError. 402: out of credits, retrying
    # will not help.
    error_codes=MappingProxyType({"402": "provider"}),
    # It reports its own charge (usage.cost); the cost table has no gateway prices.
    cost_provider=None,
    wire="openrouter",
    # docs: multimodal (images, audio, PDFs as file_data: a data URL or a URL), parameters.
    content_parts=MappingProxyType(
        {"text": "text", "image": "image_url", "audio": "input_audio", "file": "file_or_url"}
    ),
    audio_formats=frozenset({"wav", "mp3"}),
    request_options=_EVERY_OPTION,
    response_formats=RESPONSE_FORMATS,
    # Assistant messages take the reasoning they came with back (docs: reasoning tokens).
    reasoning_history_field="reasoning",
    features=ConformanceFeatures(
        # reasoning / reasoning_details deltas (real grok, glm, minimax streams).
        streams_thinking=True,
        reports_reasoning_tokens=True,
        # The docs say a 429 *may* carry Retry-After; the real 429s carry no hint.
        retry_after=False,
        # finish_reason is normalized to stop/length/tool_calls/content_filter/error.
        content_filter=True,
    ),
)

BUILTIN: tuple[ProviderDialect, ...] = (
    OPENAI,
    GEMINI,
    MISTRAL,
    GLM,
    CLAUDE_SUBSCRIPTION,
    OPENROUTER,
)

_REGISTRY: dict[str, ProviderDialect] = {d.name: d for d in BUILTIN}

#: Every known provider by name: the built-in ones and any registered since
#: (``register_dialect``, ``--dialect-file``). A live, read-only view.
DIALECTS: Mapping[str, ProviderDialect] = MappingProxyType(_REGISTRY)


def register_dialect(dialect: ProviderDialect) -> ProviderDialect:
    """Add a provider (or replace one of the same name) for this process."""
    if not isinstance(dialect, ProviderDialect):
        raise TypeError(f"expected a ProviderDialect, got {type(dialect).__name__}")
    _REGISTRY[dialect.name] = dialect
    return dialect


def get_dialect(name: str) -> ProviderDialect:
    """The dialect record for a provider name; ``UsageError`` for an unknown one."""
    try:
        return DIALECTS[name]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise UsageError(
            f"unknown provider {name!r}; known providers: {known}", field="provider"
        ) from None


class HasDialect(Protocol):
    """Anything that speaks one dialect, e.g. an ``OpenAiCompatibleProvider``."""

    @property
    def dialect(self) -> ProviderDialect: ...


def resolve_dialect(provider: str | ProviderDialect | HasDialect) -> ProviderDialect:
    """A dialect from a name, a dialect or a provider instance."""
    if isinstance(provider, ProviderDialect):
        return provider
    if isinstance(provider, str):
        return get_dialect(provider)
    dialect = getattr(provider, "dialect", None)
    if isinstance(dialect, ProviderDialect):
        return dialect
    raise TypeError(
        f"provider must be a name, a ProviderDialect or a provider, not {type(provider).__name__}"
    )
