"""What the tests run over: the built-in ``PROVIDERS``, the reliability tests'
transports (``MODES``, see ``conftest._async_transport``), and ``TLS`` for plain
httpx calls to the emulator."""

from __future__ import annotations

import httpx

from provider_impl.dialects import DIALECTS

#: Every built-in provider, by name: what provider-parametrized tests run over.
PROVIDERS: tuple[str, ...] = tuple(sorted(DIALECTS))

#: One TLS context for the tests' own httpx clients (``verify=TLS``): each new
#: default one loads the CA bundle, about 20 ms a client, though the emulator
#: speaks plain HTTP. Each call still gets its own client and connection.
TLS = httpx.create_ssl_context()

#: ``mode`` of a reliability test: the sync client (httpx, h11), the provider's own
#: async client on aiohttp (its default with the ``aiohttp`` extra), and on httpx's h11.
MODES = ("sync", "async", "async-h11")
