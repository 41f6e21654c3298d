"""provider_impl: one OpenAI-compatible client for OpenAI, Gemini, Mistral, GLM and
Claude (through a subscription proxy), with one normalized stream of events.

The public API is re-exported here; everything else is private.
"""

from provider_impl.adapter import StreamAdapter
from provider_impl.costs import COST_TABLE, ModelCost, estimate_cost
from provider_impl.dialects import (
    DIALECTS,
    ProviderCapabilities,
    ProviderDialect,
    ReasoningControl,
    get_dialect,
)
from provider_impl.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ContextLengthExceeded,
    DeserializationError,
    ErrorKind,
    InvalidRequest,
    LlmError,
    Overloaded,
    ProviderError,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    StreamError,
    TransportError,
    classify_error,
)
from provider_impl.events import (
    Connected,
    ContentBlockStart,
    ContentBlockStop,
    Done,
    MessageDelta,
    MessageStart,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolUseComplete,
    ToolUseInputDelta,
)
from provider_impl.fallback import (
    CircuitBreaker,
    FallbackBudgetExceeded,
    FallbackProvider,
    NoProviderAvailable,
    ProviderSwitched,
)
from provider_impl.handoff import hand_off, hand_off_request
from provider_impl.provider import CustomOptions, OpenAiCompatibleProvider, ProviderOptions
from provider_impl.response import decode_response, response_from_events
from provider_impl.sse import ServerSentEvent, SSEDecoder
from provider_impl.stream import StreamParser, decode_stream
from provider_impl.types import (
    REASONING_EFFORTS,
    CompletionRequest,
    CompletionResponse,
    Message,
    ReasoningEffort,
    StopReason,
    ToolCall,
    ToolDefinition,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "COST_TABLE",
    "DIALECTS",
    "REASONING_EFFORTS",
    "AuthenticationFailed",
    "CircuitBreaker",
    "CompletionRequest",
    "CompletionResponse",
    "Connected",
    "ConnectionFailed",
    "ContentBlockStart",
    "ContentBlockStop",
    "ContextLengthExceeded",
    "CustomOptions",
    "DeserializationError",
    "Done",
    "ErrorKind",
    "FallbackBudgetExceeded",
    "FallbackProvider",
    "InvalidRequest",
    "LlmError",
    "Message",
    "MessageDelta",
    "MessageStart",
    "ModelCost",
    "NoProviderAvailable",
    "OpenAiCompatibleProvider",
    "Overloaded",
    "ProviderCapabilities",
    "ProviderDialect",
    "ProviderError",
    "ProviderOptions",
    "ProviderSwitched",
    "RateLimited",
    "ReasoningControl",
    "ReasoningEffort",
    "RequestTimeout",
    "ResponseTooLarge",
    "SSEDecoder",
    "ServerSentEvent",
    "StopReason",
    "StreamAdapter",
    "StreamError",
    "StreamEvent",
    "StreamParser",
    "TextDelta",
    "ThinkingDelta",
    "ToolCall",
    "ToolDefinition",
    "ToolUseComplete",
    "ToolUseInputDelta",
    "TransportError",
    "Usage",
    "__version__",
    "classify_error",
    "decode_response",
    "decode_stream",
    "estimate_cost",
    "get_dialect",
    "hand_off",
    "hand_off_request",
    "response_from_events",
]
