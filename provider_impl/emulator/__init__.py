"""A loopback server that speaks each provider's chat-completions dialect.

It answers ``POST <prefix>/chat/completions`` the way OpenAI, Gemini (OpenAI
compatibility), Mistral, GLM and a local claude-max-api-proxy do, quirks
included, with scripted deterministic responses chosen by the request header
``x-emulator-scenario`` and optional faults chosen by ``x-emulator-fault``;
``Emulator(drift=[...])`` changes the API server-wide (see ``DRIFTS``).
Standard library only (asyncio streams); one event loop serves every
connection.

    with Emulator() as emu:
        base = emu.base_url("mistral")   # http://127.0.0.1:PORT/mistral/v1
"""

from ._dialects import PROVIDER_PREFIXES
from ._faults import (
    FAULTS,
    H_FAIL_TIMES,
    H_FAULT,
    H_FAULT_AFTER,
    H_REQUEST_KEY,
    H_RETRY_AFTER,
    H_STALL_SECONDS,
    H_TRICKLE_MS,
)
from ._server import DRIFTS, H_SCENARIO, H_VARIANT, Emulator, EmulatorStats

__all__ = [
    "DRIFTS",
    "FAULTS",
    "H_FAIL_TIMES",
    "H_FAULT",
    "H_FAULT_AFTER",
    "H_REQUEST_KEY",
    "H_RETRY_AFTER",
    "H_SCENARIO",
    "H_STALL_SECONDS",
    "H_TRICKLE_MS",
    "H_VARIANT",
    "PROVIDER_PREFIXES",
    "Emulator",
    "EmulatorStats",
]
