"""provider_impl: one OpenAI-compatible client for OpenAI, Gemini, Mistral, GLM,
OpenRouter and Claude (through a subscription proxy), with one normalized
stream of events.

The top level holds what a caller needs to make calls and handle their results
and failures. The rest lives in documented submodules:

* ``provider_impl.events`` — each stream event class (``TextDelta``, ``Done``, …);
* ``provider_impl.errors`` — the whole ``LlmError`` hierarchy (``ConnectionFailed``,
  ``RequestTimeout``, ``ResponseTooLarge``, ``ProviderError``, ``ErrorKind``);
* ``provider_impl.classify`` — ``classify_error``: an error body to its class;
* ``provider_impl.types`` — ``Choice``, ``TokenLogprob``, ``ContentPart``, ``ReasoningEffort``;
* ``provider_impl.dialects`` — ``ProviderDialect`` records, ``get_dialect``, ``resolve_dialect``;
* ``provider_impl.response`` — ``response_from_events``, ``with_parsed_json``;
* ``provider_impl.stream`` / ``provider_impl.sse`` / ``provider_impl.adapter`` — the
  sans-I/O core (``StreamParser``, ``SSEDecoder``, ``StreamAdapter``);
* ``provider_impl.fallback`` — ``CircuitBreaker``, ``ProviderSwitched``, budget errors;
* ``provider_impl.handoff`` — ``hand_off``, ``hand_off_request``;
* ``provider_impl.costs`` — ``estimate_cost``, ``COST_TABLE``;
* ``provider_impl.provider`` — ``ProviderOptions``, ``CustomOptions``.
"""

from provider_impl.errors import (
    AuthenticationFailed,
    ContextLengthExceeded,
    DeserializationError,
    InvalidRequest,
    LlmError,
    Overloaded,
    RateLimited,
    StreamError,
    TransportError,
    UsageError,
)
from provider_impl.events import StreamEvent
from provider_impl.fallback import FallbackProvider
from provider_impl.provider import OpenAiCompatibleProvider
from provider_impl.response import decode_response
from provider_impl.stream import decode_stream
from provider_impl.types import (
    AudioPart,
    CompletionRequest,
    CompletionResponse,
    FilePart,
    ImagePart,
    Message,
    ResponseFormat,
    StopReason,
    TextPart,
    ToolCall,
    ToolDefinition,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "AudioPart",
    "AuthenticationFailed",
    "CompletionRequest",
    "CompletionResponse",
    "ContextLengthExceeded",
    "DeserializationError",
    "FallbackProvider",
    "FilePart",
    "ImagePart",
    "InvalidRequest",
    "LlmError",
    "Message",
    "OpenAiCompatibleProvider",
    "Overloaded",
    "RateLimited",
    "ResponseFormat",
    "StopReason",
    "StreamError",
    "StreamEvent",
    "TextPart",
    "ToolCall",
    "ToolDefinition",
    "TransportError",
    "Usage",
    "UsageError",
    "__version__",
    "decode_response",
    "decode_stream",
]
