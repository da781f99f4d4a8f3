"""The topology declared from a routing table, on the real broker: routes, retries, dead letters."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import aio_pika
import msgspec
import pytest
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient

from gateway.api import create_app
from gateway.registry import ContractRegistry
from gateway.routing import (
    connector_queue,
    dead_letter_queue,
    retry_exchange,
)
from gateway.settings import Settings
from tests.conftest import KeyFactory
from tests.support.broker import delete_routing_topology
from tests.support.payloads import headers, return_request
from tests.support.waiting import wait_until

TABLE = """
connectors:
  erp: {delivery_limit: 2, retry_delays_ms: [200, 5000]}
  wms: {}
  crm: {}
routes:
  - {id: all-requests, message: return-request.v1, to: [erp]}
  - {id: edi-to-wms, message: return-request.v1, when: {channel: [edi]}, to: [wms]}
  - id: big-partners-warranty-to-crm
    message: 'return-request.*'
    when: {partner: [globex, initech], reason_code: [warranty_claim, defective]}
    to: [crm, erp]
"""


@pytest.fixture
async def routed(
    tmp_path,
    settings: Settings,
    registry: ContractRegistry,
    redis,
    amqp: AbstractRobustConnection,  # type: ignore[no-untyped-def]
) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    path = tmp_path / "routes.yaml"
    path.write_text(TABLE)
    routed_settings = dataclasses.replace(settings, routes_file=path)
    async with AsyncTestClient(create_app(routed_settings, registry)) as client:
        yield client
    await delete_routing_topology(amqp, settings, TABLE)


async def _drain(amqp: AbstractRobustConnection, queue_name: str) -> list[str]:
    """Return ids of every message waiting in ``queue_name`` (acknowledging them)."""
    channel = await amqp.channel()
    queue = await channel.get_queue(queue_name, ensure=True)
    ids = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        ids.append(msgspec.json.decode(message.body)["correlation_id"])
    await channel.close()
    return ids


async def _submit(client: AsyncTestClient, key: str, **changes: object) -> str:  # type: ignore[type-arg]
    response = await client.post("/v1/returns", json=return_request(**changes), headers=headers(key))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_messages_reach_exactly_the_connectors_their_routes_name(
    routed: AsyncTestClient,
    make_key: KeyFactory,
    amqp: AbstractRobustConnection,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    acme, globex = await make_key("acme"), await make_key("globex")
    portal = await _submit(routed, acme, channel="portal", reason_code="defective")
    edi = await _submit(routed, acme, channel="edi", reason_code="defective")
    warranty = await _submit(routed, globex, channel="portal", reason_code="warranty_claim")
    remorse = await _submit(routed, globex, channel="portal", reason_code="no_longer_needed")

    erp: list[str] = []
    await wait_until(
        lambda: _extend(erp, amqp, connector_queue(settings, "erp"), 4), what="four returns at the ERP"
    )
    # The ERP is named by two routes for the warranty claim, and still gets it once.
    assert sorted(erp) == sorted([portal, edi, warranty, remorse])
    assert await _drain(amqp, connector_queue(settings, "wms")) == [edi]
    assert await _drain(amqp, connector_queue(settings, "crm")) == [warranty]


async def _extend(found: list[str], amqp: AbstractRobustConnection, queue: str, expected: int) -> bool:
    found.extend(await _drain(amqp, queue))
    return len(found) >= expected


async def test_message_no_condition_accepts_is_kept_in_unrouted(
    tmp_path,
    settings: Settings,
    registry: ContractRegistry,
    redis,
    amqp,
    make_key: KeyFactory,  # type: ignore[no-untyped-def]
) -> None:
    table = (
        "connectors: {wms: {}}\n"
        "routes: [{id: edi-only, message: return-request.v1, when: {channel: [edi]}, to: [wms]}]"
    )
    path = tmp_path / "routes.yaml"
    path.write_text(table)
    key = await make_key()
    async with AsyncTestClient(
        create_app(dataclasses.replace(settings, routes_file=path), registry)
    ) as client:
        portal = await _submit(client, key, channel="portal")
        unrouted: list[str] = []
        await wait_until(lambda: _extend(unrouted, amqp, settings.amqp_name("unrouted"), 1))
        assert unrouted == [portal]
        assert await _drain(amqp, connector_queue(settings, "wms")) == []
    await delete_routing_topology(amqp, settings, table)


async def test_retry_tier_returns_the_message_to_its_connector_after_the_delay(
    routed: AsyncTestClient,
    amqp: AbstractRobustConnection,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    retry = await channel.get_exchange(retry_exchange(settings))
    body = msgspec.json.encode({"correlation_id": "ret_retry"})
    await retry.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "erp.200")
    # Not back at once: it waits out its tier's TTL.
    assert await _drain(amqp, connector_queue(settings, "erp")) == []
    back: list[str] = []
    await wait_until(lambda: _extend(back, amqp, connector_queue(settings, "erp"), 1), within=10)
    assert back == ["ret_retry"]


async def test_rejected_and_poison_messages_are_dead_lettered_not_dropped(
    routed: AsyncTestClient,
    make_key: KeyFactory,
    amqp: AbstractRobustConnection,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    key = await make_key("acme")
    rejected = await _submit(routed, key, channel="portal")
    poison = await _submit(routed, key, channel="portal")
    channel = await amqp.channel()
    await channel.set_qos(prefetch_count=1)
    queue = await channel.get_queue(connector_queue(settings, "erp"))

    async def take() -> aio_pika.abc.AbstractIncomingMessage | None:
        return await queue.get(fail=False)

    seen: dict[str, int] = {}
    deadline = asyncio.get_running_loop().time() + 15
    while len(seen) < 2 or seen.get(poison, 0) < 3:
        assert asyncio.get_running_loop().time() < deadline, seen
        message = await take()
        if message is None:
            await asyncio.sleep(0.05)
            continue
        return_id = msgspec.json.decode(message.body)["correlation_id"]
        seen[return_id] = seen.get(return_id, 0) + 1
        if return_id == rejected:
            await message.reject(requeue=False)  # a permanent failure: dead-letter at once
        else:
            await message.nack(requeue=True)  # keeps crashing: the delivery limit must stop it
            if seen[return_id] >= 3:
                break

    dead: list[str] = []
    await wait_until(lambda: _extend(dead, amqp, dead_letter_queue(settings, "erp"), 2), within=15)
    assert sorted(dead) == sorted([rejected, poison])
    assert await _drain(amqp, connector_queue(settings, "erp")) == []


async def test_declaring_the_same_table_again_is_harmless(
    routed: AsyncTestClient,
    settings: Settings,
    registry: ContractRegistry,
    tmp_path,  # type: ignore[no-untyped-def, type-arg]
) -> None:
    path = tmp_path / "again.yaml"
    path.write_text(TABLE)
    async with AsyncTestClient(
        create_app(dataclasses.replace(settings, routes_file=path), registry)
    ) as again:
        assert (await again.get("/health/ready")).status_code == 200
