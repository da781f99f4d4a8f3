"""Redis down, or the broker refusing a message: 503 problem+json, nothing recorded, retry works."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from litestar.testing import AsyncTestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gateway.api import create_app
from gateway.broker import events_exchange_name
from gateway.registry import ContractRegistry
from gateway.settings import Settings
from gateway.storage import REDIS_TIMEOUT_SECONDS
from tests.conftest import Gateway, KeyFactory
from tests.support.payloads import headers, return_request
from tests.support.server import free_port
from tests.support.tcp_proxy import proxy_to
from tests.support.waiting import wait_until


async def test_redis_unreachable_answers_503_never_500(
    settings: Settings, registry: ContractRegistry, make_key: KeyFactory, amqp
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key()  # keys are PostgreSQL's: without Redis, the key still authenticates
    unreachable = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with AsyncTestClient(create_app(unreachable, registry)) as client:
        response = await client.post("/v1/returns", json=return_request(), headers=headers(key))
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        ready = await client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["redis"] is False


async def test_redis_that_stops_answering_answers_503_within_the_timeout_then_recovers(
    settings: Settings, registry: ContractRegistry, make_key: KeyFactory, amqp
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key()
    async with proxy_to(settings.redis_url, default_port=6379) as proxy:
        proxied = dataclasses.replace(
            settings, redis_url=proxy.through(settings.redis_url), auth_cache_seconds=60.0
        )
        async with AsyncTestClient(create_app(proxied, registry), raise_server_exceptions=False) as client:
            authorized = {"Authorization": f"Bearer {key}"}
            unknown = await client.get("/v1/returns/ret_unknown", headers=authorized)
            assert unknown.status_code == 404, unknown.text  # the key is now in the gateway's cache

            # The request's first Redis call (its rate-limit count) gives up after the gateway's
            # Redis timeout, like every other: one pool, one timeout.
            await proxy.stall()
            started = time.monotonic()
            stalled = await asyncio.wait_for(
                client.get("/v1/returns/ret_unknown", headers=authorized), timeout=20
            )
            assert stalled.status_code == 503, stalled.text
            assert stalled.headers["content-type"] == "application/problem+json"
            assert time.monotonic() - started < REDIS_TIMEOUT_SECONDS + 2

            await proxy.resume()

            async def answers() -> bool:
                response = await client.get("/v1/returns/ret_unknown", headers=authorized)
                assert response.status_code in {404, 503}, response.text
                return response.status_code == 404

            await wait_until(answers, within=15, interval=0.2, what="the gateway to use Redis again")


async def test_broker_refusing_the_message_answers_503_and_the_retry_publishes(
    gateway: Gateway,
    make_key: KeyFactory,
    amqp,  # type: ignore[no-untyped-def]
) -> None:
    key = await make_key()
    # Take the exchange away under the gateway: the broker refuses the publish (404 on the channel).
    channel = await amqp.channel()
    await channel.exchange_delete(events_exchange_name(gateway.settings))
    payload, request_headers = return_request(), headers(key)
    refused = await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"] == "urn:returns-gateway:problem:service-unavailable"

    # Nothing was recorded: the same key is not replayed, and once the topology is back it succeeds.
    await channel.declare_exchange(
        events_exchange_name(gateway.settings),
        "topic",
        durable=True,
        arguments={"alternate-exchange": gateway.settings.amqp_name("unrouted")},
    )

    async def accepted() -> bool:
        response = await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
        assert response.status_code in {202, 503}, response.text
        return response.status_code == 202

    await wait_until(accepted, within=15, interval=0.3, what="the gateway's channel to recover")
    replay = await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
    assert replay.headers["idempotent-replayed"] == "true"


async def test_readiness_follows_the_database(settings: Settings, registry: ContractRegistry, amqp) -> None:  # type: ignore[no-untyped-def]
    """The record unreachable: not ready (an orchestrator stops routing to it), ready again once
    it answers; the probe answers either way, and quickly."""
    server = conninfo_to_dict(settings.database)
    async with proxy_to(
        f"tcp://{server.get('host', '127.0.0.1')}:{server.get('port', 5432)}", default_port=5432
    ) as proxy:
        proxied = dataclasses.replace(
            settings, database_url=make_conninfo(settings.database, host="127.0.0.1", port=str(proxy.port))
        )
        async with AsyncTestClient(create_app(proxied, registry), raise_server_exceptions=False) as client:
            ready = await client.get("/health/ready")
            assert ready.status_code == 200 and ready.json()["database"] is True, ready.text

            await proxy.cut()
            started = time.monotonic()
            gone = await client.get("/health/ready")
            assert gone.status_code == 503, gone.text
            assert gone.json() == {"status": "unavailable", "broker": True, "redis": True, "database": False}
            assert time.monotonic() - started < 5

            await proxy.restore()

            async def ready_again() -> bool:
                return (await client.get("/health/ready")).status_code == 200

            await wait_until(ready_again, within=30, what="ready once PostgreSQL answers again")
