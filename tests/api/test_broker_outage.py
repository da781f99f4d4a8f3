"""The broker vanishes: the client gets 503 + Retry-After, nothing is recorded, the retry publishes once."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from litestar.testing import AsyncTestClient

from gateway.api import create_app
from gateway.broker import events_exchange_name
from gateway.registry import ContractRegistry
from gateway.settings import Settings
from tests.conftest import AMQP_URL, KeyFactory
from tests.support.broker import capture
from tests.support.payloads import headers, return_request
from tests.support.tcp_proxy import TcpProxy, proxy_to
from tests.support.waiting import wait_until


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    async with proxy_to(AMQP_URL, default_port=5672) as proxy:
        yield proxy


def _through(proxy: TcpProxy, settings: Settings) -> Settings:
    url = urlsplit(AMQP_URL)
    proxied = proxy.through(url._replace(path=url.path or "/", query="reconnect_interval=0.2").geturl())
    return dataclasses.replace(settings, amqp_url=proxied)


async def _ready(client: AsyncTestClient) -> bool:  # type: ignore[type-arg]
    return (await client.get("/health/ready")).status_code == 200


async def test_broker_cut_answers_503_and_retry_after_recovery_publishes_once(
    proxy: TcpProxy,
    settings: Settings,
    registry: ContractRegistry,
    redis,
    amqp,
    make_key: KeyFactory,  # type: ignore[no-untyped-def]
) -> None:
    app = create_app(_through(proxy, settings), registry)
    key = await make_key()
    async with AsyncTestClient(app) as client:
        events = await capture(amqp, events_exchange_name(settings), settings.amqp_name("capture", "events"))
        before = await client.post("/v1/returns", json=return_request(), headers=headers(key))
        assert before.status_code == 202

        await proxy.cut()
        await wait_until(lambda: _not(_ready(client)), what="the gateway to notice the broker is gone")
        readiness = (await client.get("/health/ready")).json()
        assert readiness == {"status": "unavailable", "broker": False, "redis": True, "database": True}

        payload, retry_headers = return_request(), headers(key)
        refused = await client.post("/v1/returns", json=payload, headers=retry_headers)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["type"] == "urn:returns-gateway:problem:service-unavailable"

        await proxy.restore()
        await wait_until(lambda: _ready(client), within=20, what="the gateway to reconnect")
        retried = await client.post("/v1/returns", json=payload, headers=retry_headers)
        assert retried.status_code == 202, retried.text
        assert "idempotent-replayed" not in retried.headers
        replayed = await client.post("/v1/returns", json=payload, headers=retry_headers)
        assert replayed.headers["idempotent-replayed"] == "true"

        marker = await client.post("/v1/returns", json=return_request(), headers=headers(key))
        ids = await events.ids_through(marker.json()["id"])
        assert ids.count(retried.json()["id"]) == 1
        assert len(ids) == 3


async def test_gateway_started_without_broker_refuses_then_accepts_once_it_appears(
    proxy: TcpProxy,
    settings: Settings,
    registry: ContractRegistry,
    redis,
    amqp,
    make_key: KeyFactory,  # type: ignore[no-untyped-def]
) -> None:
    await proxy.cut()
    app = create_app(_through(proxy, settings), registry)
    key = await make_key()
    async with AsyncTestClient(app) as client:
        assert not await _ready(client)
        payload, request_headers = return_request(), headers(key)
        assert (await client.post("/v1/returns", json=payload, headers=request_headers)).status_code == 503
        await proxy.restore()
        await wait_until(lambda: _ready(client), within=20, what="the first connection")
        accepted = await client.post("/v1/returns", json=payload, headers=request_headers)
        assert accepted.status_code == 202
        record = await client.get(accepted.headers["location"], headers=headers(key))
        assert record.status_code == 200


async def _not(check) -> bool:  # type: ignore[no-untyped-def]
    return not await check
