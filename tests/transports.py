"""The transports the reliability tests run on (see ``conftest._async_transport``)."""

from __future__ import annotations

#: ``mode`` of a reliability test: the sync client (httpx, h11), the provider's own
#: async client on aiohttp (its default with the ``aiohttp`` extra), and on httpx's h11.
MODES = ("sync", "async", "async-h11")
