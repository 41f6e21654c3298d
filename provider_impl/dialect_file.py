"""A provider's dialect record as a TOML file: export one, load one, register it.

``provider-impl providers --export openai`` prints the record; edit it (a new
``name``, base URL, key variable, model), save it, and pass it as
``--dialect-file FILE`` to ``emulator``, ``record``, ``replay`` and
``conformance``: the new provider is served, recorded and checked like a
built-in one, without touching the package (docs/DIALECTS.md).

Every key of :class:`~provider_impl.dialects.ProviderDialect` appears in an
export; a file may leave out any key that has a default. Unknown keys, wrong
types and unknown error kinds are refused with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args

from provider_impl.dialects import (
    CONTENT_FORMS,
    REQUEST_OPTIONS,
    RESPONSE_FORMATS,
    ConformanceFeatures,
    ModelLimits,
    ProviderCapabilities,
    ProviderDialect,
    ReasoningControl,
    ToolCallIdFormat,
    register_dialect,
)
from provider_impl.errors import ErrorKind

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DialectFileError", "dialect_from_toml", "dialect_to_toml", "load_dialect_file"]

_TABLES: dict[str, type[Any]] = {
    "capabilities": ProviderCapabilities,
    "features": ConformanceFeatures,
    "tool_call_ids": ToolCallIdFormat,  # optional: a missing table is None
}
_ERROR_KINDS = frozenset(get_args(ErrorKind))
# Fields written as arrays of tables ([[name]]), after everything else.
_ARRAYS: dict[str, type[Any]] = {"reasoning": ReasoningControl, "model_limits": ModelLimits}


class DialectFileError(ValueError):
    """A dialect file that cannot become a record; the message names the key."""


# -- writing -------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        # A TOML basic string: JSON's escapes are TOML's for these characters.
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, (frozenset, set, tuple, list)):
        items = sorted(value) if isinstance(value, (frozenset, set)) else list(value)
        return "[" + ", ".join(_toml_value(v) for v in items) + "]"
    if isinstance(value, Mapping):  # an inline table
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else _toml_value(name)


def dialect_to_toml(dialect: ProviderDialect) -> str:
    """The record as TOML text that :func:`dialect_from_toml` reads back equal
    (with ``contract`` spelled out)."""
    lines = [f"# provider-impl dialect record: {dialect.name}"]
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for f in dataclasses.fields(dialect):
        value = getattr(dialect, f.name)
        if f.name in _ARRAYS:
            continue  # arrays of tables come last
        if f.name in _TABLES and value is None:
            continue
        if f.name in _TABLES:
            tables.append(
                (f.name, {g.name: getattr(value, g.name) for g in dataclasses.fields(value)})
            )
        elif isinstance(value, Mapping):
            # An empty model_names or prompt_arg_templates reads back as the default.
            if value or f.name == "error_codes":
                tables.append((f.name, dict(value)))
        elif f.name == "contract":
            # Written resolved, so a renamed copy keeps following the same contract.
            lines.append(f"contract = {_toml_value(dialect.contract_name)}")
        elif value is not None:
            lines.append(f"{f.name} = {_toml_value(value)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{name}]")
        lines.extend(f"{_key(k)} = {_toml_value(v)}" for k, v in table.items())
    for array in _ARRAYS:
        for item in getattr(dialect, array):
            lines.append("")
            lines.append(f"[[{array}]]")
            lines.extend(
                f"{g.name} = {_toml_value(getattr(item, g.name))}"
                for g in dataclasses.fields(item)
                if getattr(item, g.name) is not None
            )
    return "\n".join(lines) + "\n"


# -- reading -------------------------------------------------------------------


def _expect(where: str, value: Any, annotation: str) -> Any:
    """``value`` checked against a field's annotation (as written in dialects.py)."""
    kinds = [a.strip() for a in annotation.split("|")]
    if value is None and "None" in kinds:
        return None
    for kind in kinds:
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "frozenset[str]" and isinstance(value, list):  # noqa: SIM102
            if all(isinstance(v, str) for v in value):
                return frozenset(value)
        if kind == "Mapping[str, Any]" and isinstance(value, Mapping):
            return value
    wanted = " or ".join(
        k.replace("frozenset[str]", "a list of strings").replace("Mapping[str, Any]", "a table")
        for k in kinds
    )
    raise DialectFileError(f"{where}: expected {wanted}, got {value!r}")


def _build(cls: type[Any], data: Mapping[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise DialectFileError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        at = f"{where}.{name}" if where else name
        if name not in data:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default and "None" in str(f.type).split(" | "):
                kwargs[name] = None  # TOML has no null: a missing key is None
            elif no_default:
                raise DialectFileError(f"{at}: missing (no default)")
            continue
        value = data[name]
        if name in _TABLES:
            if not isinstance(value, Mapping):
                raise DialectFileError(f"{at}: expected a table")
            kwargs[name] = _build(_TABLES[name], value, at)
        elif name == "error_codes":
            kwargs[name] = _error_codes(value, at)
        elif str(f.type) == "Mapping[str, str]":
            kwargs[name] = _text_table(value, at)
        elif name in _ARRAYS:
            kwargs[name] = _array(name, value, at)
        else:
            kwargs[name] = _expect(at, value, str(f.type))
    try:
        return cls(**kwargs)
    except ValueError as err:  # a record's own checks (ReasoningControl)
        raise DialectFileError(f"{where}: {err}" if where else str(err)) from None


def _array(name: str, value: Any, where: str) -> tuple[Any, ...]:
    """``[[reasoning]]`` tables (param, values: effort = JSON value, models optional) or
    ``[[model_limits]]`` tables (models, max_output_tokens, max_context_tokens)."""
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise DialectFileError(f"{where}: expected [[{name}]] tables")
    return tuple(_build(_ARRAYS[name], item, f"{where}[{i}]") for i, item in enumerate(value))


def _check_parts_and_options(dialect: ProviderDialect, source: str) -> None:
    """The content forms, options and response formats a record names must exist."""
    for kind, form in dialect.content_parts.items():
        if kind not in CONTENT_FORMS:
            known = ", ".join(CONTENT_FORMS)
            raise DialectFileError(
                f"{source}: content_parts.{kind}: unknown part kind; known: {known}"
            )
        if form not in CONTENT_FORMS[kind]:
            known = ", ".join(sorted(CONTENT_FORMS[kind]))
            raise DialectFileError(
                f"{source}: content_parts.{kind}: unknown wire form {form!r}; known: {known}"
            )
    for option in dialect.request_options:
        if option not in REQUEST_OPTIONS:
            raise DialectFileError(
                f"{source}: request_options.{option}: unknown option; "
                f"known: {', '.join(REQUEST_OPTIONS)}"
            )
    unknown = sorted(dialect.response_formats - RESPONSE_FORMATS)
    if unknown:
        raise DialectFileError(
            f"{source}: response_formats: unknown type(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(RESPONSE_FORMATS))}"
        )


def _error_codes(value: Any, where: str) -> Mapping[str, ErrorKind]:
    if not isinstance(value, Mapping):
        raise DialectFileError(f"{where}: expected a table of code = kind")
    for code, kind in value.items():
        if kind not in _ERROR_KINDS:
            known = ", ".join(sorted(_ERROR_KINDS))
            raise DialectFileError(f"{where}.{code}: unknown error kind {kind!r}; known: {known}")
    return MappingProxyType(dict(value))


def _text_table(value: Any, where: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise DialectFileError(f"{where}: expected a table of name = text")
    for key, text in value.items():
        if not isinstance(text, str):
            raise DialectFileError(f"{where}.{key}: expected text, got {text!r}")
    return MappingProxyType(dict(value))


def dialect_from_toml(text: str, *, source: str = "<dialect>") -> ProviderDialect:
    """A record from TOML text; :class:`DialectFileError` names what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise DialectFileError(f"{source}: not valid TOML: {err}") from None
    try:
        dialect: ProviderDialect = _build(ProviderDialect, data, "")
    except DialectFileError as err:
        raise DialectFileError(f"{source}: {err}") from None
    from provider_impl.emulator._dialects import WIRES

    _check_parts_and_options(dialect, source)
    if dialect.wire not in WIRES:
        raise DialectFileError(
            f"{source}: wire: unknown wire format {dialect.wire!r}; known: {', '.join(WIRES)}"
        )
    if not dialect.name.replace("_", "").replace("-", "").isalnum():
        raise DialectFileError(
            f"{source}: name: {dialect.name!r} must be letters, digits, '_' or '-' "
            "(it names a folder and a URL prefix)"
        )
    return dialect


def load_dialect_file(path: str | Path) -> ProviderDialect:
    """Read a dialect file and register its provider for this process."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DialectFileError(f"cannot read dialect file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise DialectFileError(f"dialect file {path} is not UTF-8") from None
    return register_dialect(dialect_from_toml(text, source=str(path)))
