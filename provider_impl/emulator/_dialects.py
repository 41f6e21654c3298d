"""The emulator's wire formats by name, and the renderer for a provider record.

Each wire format is a module of ``wires/`` (one per provider family), built on
the shared base in ``_wire.py``. A provider record names its wire format in
``ProviderDialect.wire``; the emulator serves the record with that renderer
under its own prefix.
"""

from __future__ import annotations

from provider_impl.dialects import BUILTIN, ProviderDialect

from ._wire import Ctx, Dialect, ErrorResponse, Frame, IdGen, prefix_for
from .wires.claude_proxy import USAGE_LIMIT_RESET, ClaudeProxyDialect
from .wires.gemini import GeminiDialect, unsigned_call
from .wires.glm import GlmDialect
from .wires.mistral import MistralDialect
from .wires.openai import OpenAiDialect
from .wires.openrouter import OpenRouterDialect

__all__ = [
    "PROVIDER_PREFIXES",
    "USAGE_LIMIT_RESET",
    "WIRES",
    "Ctx",
    "Dialect",
    "ErrorResponse",
    "Frame",
    "IdGen",
    "prefix_for",
    "renderer_for",
    "unsigned_call",
]

#: The built-in providers' prefixes (a dialect file's provider gets one the same way).
PROVIDER_PREFIXES: dict[str, str] = {d.name: prefix_for(d) for d in BUILTIN}

#: Wire format name -> its renderer class.
WIRES: dict[str, type[Dialect]] = {
    cls.wire: cls
    for cls in (
        OpenAiDialect,
        GeminiDialect,
        MistralDialect,
        GlmDialect,
        ClaudeProxyDialect,
        OpenRouterDialect,
    )
}


def renderer_for(record: ProviderDialect) -> Dialect:
    """The emulator's renderer for a provider record (its ``wire`` format)."""
    try:
        cls = WIRES[record.wire]
    except KeyError:
        raise ValueError(
            f"provider {record.name!r}: unknown wire format {record.wire!r}; "
            f"the emulator speaks {', '.join(WIRES)}"
        ) from None
    return cls(record)
