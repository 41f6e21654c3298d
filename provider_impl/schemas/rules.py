"""This project's own rules for a request body, apart from any provider's contract.

A provider's contract (``<provider>.json``, checked by ``schema_errors``) says
what the real endpoint accepts. These rules say what *our builder* must send
on top of that, and they come from the dialect record
(``provider_impl.dialects.ProviderDialect``), never from provider names:

* the output cap goes under ``max_tokens_param`` and never under the other
  well-known name (``max_tokens`` / ``max_completion_tokens``);
* a streaming request asks for usage (``stream_options.include_usage: true``)
  when ``stream_usage_option`` is set, and sends no ``stream_options`` at all
  when it is not;
* none of ``forbidden_params`` is sent;
* reasoning goes under the key, and with a value, that the record's
  ``reasoning`` control for the body's model says (GLM-5.2+: reasoning_effort,
  older GLM: thinking), never under another control's key;
* a tool call carries ``extra_content`` (Gemini's thought signature) only when
  ``sends_thought_signatures`` is set;
* a typed option (seed, n, logprobs, top_logprobs, response_format) goes under
  the key ``request_options`` names (Mistral: ``random_seed``) and never under
  its OpenAI name otherwise; a ``response_format`` has a type the record's
  ``response_formats`` holds;
* content parts have only the wire types of the record's ``content_parts``
  forms, and a dialect without a text form gets content as a string only.

An explicit ``extra_body`` may still send what these rules leave out (the
builder merges it last); such a body breaks the rules on purpose.

Pure Python: nothing here needs the optional ``jsonschema`` dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provider_impl.dialects import REQUEST_OPTIONS, ProviderDialect, get_dialect, thawed

__all__ = ["OUTPUT_CAP_NAMES", "rule_errors"]

#: The names providers use for the output cap; a dialect sends exactly one.
OUTPUT_CAP_NAMES: frozenset[str] = frozenset({"max_tokens", "max_completion_tokens"})


def _resolve(provider_or_dialect: str | ProviderDialect) -> ProviderDialect:
    if isinstance(provider_or_dialect, ProviderDialect):
        return provider_or_dialect
    if isinstance(provider_or_dialect, str):
        return get_dialect(provider_or_dialect)
    raise TypeError(
        "rule_errors needs a provider name or a ProviderDialect, "
        f"got {type(provider_or_dialect).__name__}"
    )


def _cap_errors(dialect: ProviderDialect, body: Mapping[str, Any]) -> list[str]:
    param = dialect.max_tokens_param
    errors = [
        f"$.{other}: the {dialect.name} dialect sends the output cap as {param}, never as {other}"
        for other in sorted(OUTPUT_CAP_NAMES - {param})
        if other in body
    ]
    cap = body.get(param)
    if param not in body:
        errors.append(f"$: the output cap {param} is missing (the builder always sends it)")
    elif isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        errors.append(f"$.{param}: the output cap must be a positive integer, got {cap!r}")
    return errors


def _stream_errors(dialect: ProviderDialect, body: Mapping[str, Any]) -> list[str]:
    options = body.get("stream_options")
    if not dialect.stream_usage_option:
        if "stream_options" in body:
            return [
                f"$.stream_options: the {dialect.name} dialect never sends stream_options "
                "(stream_usage_option is off)"
            ]
        return []
    if body.get("stream") is not True:
        if "stream_options" in body:
            return ["$.stream_options: the builder sends stream_options only with stream: true"]
        return []
    if not isinstance(options, Mapping) or options.get("include_usage") is not True:
        return [
            "$.stream_options.include_usage: a streaming request must set it to true "
            f"(the {dialect.name} dialect's stream_usage_option: every stream reports usage)"
        ]
    return []


def _reasoning_errors(dialect: ProviderDialect, body: Mapping[str, Any]) -> list[str]:
    model = body.get("model")
    control = dialect.reasoning_for(model) if isinstance(model, str) else None
    errors: list[str] = []
    for param in sorted({c.param for c in dialect.reasoning}):
        if param not in body:
            continue
        if control is None or control.param != param:
            sent_as = f"as {control.param}" if control is not None else "not at all"
            errors.append(
                f"$.{param}: the {dialect.name} dialect sends reasoning for model {model!r} "
                f"{sent_as}, never as {param}"
            )
        elif body[param] not in [thawed(v) for v in control.values.values()]:
            errors.append(
                f"$.{param}: {body[param]!r} is no value the {dialect.name} dialect sends "
                f"for model {model!r}"
            )
    return errors


def _signature_errors(dialect: ProviderDialect, body: Mapping[str, Any]) -> list[str]:
    if dialect.sends_thought_signatures:
        return []
    messages = body.get("messages")
    errors: list[str] = []
    for i, msg in enumerate(messages if isinstance(messages, list) else []):
        calls = msg.get("tool_calls") if isinstance(msg, Mapping) else None
        for j, call in enumerate(calls if isinstance(calls, list) else []):
            if isinstance(call, Mapping) and "extra_content" in call:
                errors.append(
                    f"$.messages[{i}].tool_calls[{j}].extra_content: the {dialect.name} dialect "
                    "never sends thought signatures (sends_thought_signatures is off)"
                )
    return errors


# The "type" each content form puts on the wire (document_url also sends file ids as "file").
_FORM_TYPES: Mapping[str, frozenset[str]] = {
    "text": frozenset({"text"}),
    "image_url": frozenset({"image_url"}),
    "input_audio": frozenset({"input_audio"}),
    "input_audio_base64": frozenset({"input_audio"}),
    "file": frozenset({"file"}),
    "file_or_url": frozenset({"file"}),
    "document_url": frozenset({"document_url", "file"}),
}


def _option_errors(dialect: ProviderDialect, body: Mapping[str, Any]) -> list[str]:
    table = dialect.request_options
    errors: list[str] = []
    for option in REQUEST_OPTIONS:
        key = table.get(option)
        if option in body and key != option and option not in dialect.forbidden_params:
            sent_as = f"as {key}, never as {option}" if key is not None else "never"
            errors.append(
                f"$.{option}: the {dialect.name} dialect sends {option} {sent_as} (request_options)"
            )
    rf = body.get(table.get("response_format", "response_format"))
    if isinstance(rf, Mapping) and "response_format" in table:
        kind = rf.get("type")
        if kind not in dialect.response_formats:
            errors.append(
                f"$.response_format.type: the {dialect.name} dialect sends no {kind!r} "
                "response format (not in response_formats)"
            )
    return errors


def _part_errors(dialect: ProviderDialect, body: Mapping[str, Any]) -> list[str]:
    forms = dialect.content_parts
    types = frozenset().union(*(_FORM_TYPES.get(f, frozenset()) for f in forms.values()))
    messages = body.get("messages")
    errors: list[str] = []
    for i, msg in enumerate(messages if isinstance(messages, list) else []):
        content = msg.get("content") if isinstance(msg, Mapping) else None
        if not isinstance(content, list):
            continue
        if "text" not in forms:
            errors.append(
                f"$.messages[{i}].content: the {dialect.name} dialect sends content as text "
                "only (content_parts has no text form)"
            )
            continue
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind not in types:
                errors.append(
                    f"$.messages[{i}].content[{j}].type: the {dialect.name} dialect sends no "
                    f"{kind!r} parts (content_parts: {', '.join(sorted(forms.values()))})"
                )
    return errors


def rule_errors(provider_or_dialect: str | ProviderDialect, body: Mapping[str, Any]) -> list[str]:
    """Every project rule ``body`` breaks, as sorted ``"<json path>: <message>"``.

    ``provider_or_dialect`` is a provider name (see ``provider_impl.dialects``)
    or a ``ProviderDialect`` (e.g. a custom one). An empty list means the body
    is what the builder would send for that dialect. Raises ``ValueError`` for
    an unknown provider name.
    """
    dialect = _resolve(provider_or_dialect)
    if not isinstance(body, Mapping):
        raise TypeError(f"a request body must be a mapping, got {type(body).__name__}")
    errors = (
        _cap_errors(dialect, body)
        + _stream_errors(dialect, body)
        + _reasoning_errors(dialect, body)
        + _signature_errors(dialect, body)
        + _option_errors(dialect, body)
        + _part_errors(dialect, body)
    )
    reported = {error.split(":", 1)[0] for error in errors}
    errors.extend(
        f"$.{key}: the {dialect.name} dialect forbids {key} (in forbidden_params)"
        for key in sorted(dialect.forbidden_params)
        if key in body and f"$.{key}" not in reported
    )
    return sorted(set(errors))
