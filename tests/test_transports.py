"""Which transport carries the provider's own async client (issue 13, part 1):
aiohttp when the extra is installed, a user's client always, httpx's h11 when
switched off. The reliability behaviours on each are in test_faults.py,
test_deadlines.py and test_concurrency.py (``mode`` "async" and "async-h11")."""

from __future__ import annotations

import httpx
import pytest

from provider_impl import CompletionRequest, Message, OpenAiCompatibleProvider
from provider_impl.emulator import Emulator
from provider_impl.provider import ASYNC_TRANSPORT_ENV

aio = pytest.importorskip("provider_impl.aio")
KEY = "sk-test-transports-0123456789"


def _provider(**kw: object) -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider.openai(api_key=KEY, **kw)  # type: ignore[arg-type]


async def test_the_default_async_client_runs_on_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ASYNC_TRANSPORT_ENV, raising=False)
    p = _provider()
    client = p._async_client()
    assert isinstance(client, aio.AiohttpClient)
    assert isinstance(client.lean_transport, aio.AiohttpTransport)
    await p.aclose()
    assert client.is_closed


@pytest.mark.parametrize("how", ["argument", "environment"])
async def test_the_switch_turns_aiohttp_off(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "argument":
        monkeypatch.setenv(ASYNC_TRANSPORT_ENV, "aiohttp")  # the argument wins over it
        p = _provider(async_transport="httpx")
    else:
        monkeypatch.setenv(ASYNC_TRANSPORT_ENV, "httpx")
        p = _provider()
    client = p._async_client()
    assert type(client) is httpx.AsyncClient
    await p.aclose()


async def test_a_users_client_wins() -> None:
    mine = httpx.AsyncClient()
    p = _provider(async_http_client=mine, async_transport="aiohttp")
    assert p._async_client() is mine
    await p.aclose()
    assert not mine.is_closed  # not the provider's to close
    await mine.aclose()


def test_a_bad_switch_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="async_transport"):
        _provider(async_transport="curl")
    monkeypatch.setenv(ASYNC_TRANSPORT_ENV, "curl")
    with pytest.raises(ValueError, match=ASYNC_TRANSPORT_ENV):
        _provider()


async def test_a_proxy_from_the_environment_keeps_httpx_s_transport_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client given ``transport=`` ignores proxy variables; ours keeps them."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv(ASYNC_TRANSPORT_ENV, raising=False)
    p = _provider()
    client = p._async_client()
    assert isinstance(client, aio.AiohttpClient)
    assert client._mounts and client.lean_transport is None
    await p.aclose()


async def test_one_connection_carries_consecutive_calls_on_aiohttp() -> None:
    """A body read to its end gives the connection back to aiohttp's pool."""
    with Emulator() as emu:
        p = _provider(base_url=emu.base_url("openai"), async_transport="aiohttp")
        request = CompletionRequest(messages=[Message.user("hello there")])
        for _ in range(3):
            assert [e async for e in p.astream(request)]
            assert (await p.acomplete(request)).text
        await p.aclose()
        assert emu.stats.snapshot()["connections_opened"] == 1
