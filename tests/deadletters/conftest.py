"""Dead letters made without running a connector: the topology from a small routing table,
then messages published to ``<ns>.dead`` exactly as the runtime writes them, or dead-lettered
by the broker itself over a quorum queue's delivery limit."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from litestar.testing import AsyncTestClient

from gateway.api import create_app
from gateway.broker import declare_edge_topology
from gateway.broker.headers import ATTEMPT, DEAD_REASON, FIRST_FAILURE, LAST_ERROR, DeadReason
from gateway.database import upgrade
from gateway.registry import ContractRegistry
from gateway.routing import (
    connector_queue,
    dead_exchange,
    dead_letter_queue,
    declare_routing_topology,
    parse_routing_table,
    redeliver_exchange,
)
from gateway.routing._topology import QUORUM
from gateway.settings import Settings
from tests.conftest import KeyFactory
from tests.support.broker import delete_routing_topology
from tests.support.database import copy_of, new_database
from tests.support.payloads import return_request
from tests.support.waiting import wait_until

TABLE = """
connectors:
  records: {delivery_limit: 1, retry_delays_ms: [1000]}
  crm: {retry_delays_ms: [1000]}
routes:
  - {id: requests, message: return-request.v1, to: [records, crm]}
"""


def envelope(message_id: str | None = None, **payload_changes: Any) -> dict[str, Any]:
    """A return-request envelope as the gateway publishes it."""
    return {
        "message_id": message_id or f"msg_{uuid.uuid4().hex}",
        "correlation_id": f"ret_{uuid.uuid4().hex}",
        "contract": "return-request",
        "version": "v1",
        "partner": "acme",
        "occurred_at": "2026-11-23T10:00:00+00:00",
        "trace": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        "payload": return_request(**payload_changes),
    }


def _message(env: dict[str, Any], headers: dict[str, Any]) -> aio_pika.Message:
    return aio_pika.Message(
        msgspec.json.encode(env),
        headers={"x-contract": env["contract"], "x-partner": env["partner"], **headers},
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=env["message_id"],
        correlation_id=env["correlation_id"],
        type=f"{env['contract']}.{env['version']}",
        app_id="returns-gateway",
    )


@dataclass
class DeadLetters:
    """Makes and inspects dead letters in the test's namespace."""

    settings: Settings
    amqp: AbstractRobustConnection

    async def publish(
        self,
        connector: str,
        env: dict[str, Any] | None = None,
        *,
        error: str = "PermanentDeliveryFailure",
        detail: str = "target answered 422: unknown SKU",
        status_code: int | None = 422,
        attempts: int = 3,
    ) -> dict[str, Any]:
        """Dead-letter ``env`` for ``connector`` with the headers the runtime writes."""
        env = env or envelope()
        first, last = "2026-11-23T10:00:01+00:00", "2026-11-23T10:05:00+00:00"
        reason = DeadReason(
            connector=connector,
            error=error,
            detail=detail,
            status_code=status_code,
            attempts=attempts,
            first_failure_at=first,
            last_failure_at=last,
        )
        headers = {
            ATTEMPT: attempts,
            FIRST_FAILURE: first,
            LAST_ERROR: detail,
            DEAD_REASON: msgspec.json.encode(reason).decode(),
        }
        channel = await self.amqp.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(dead_exchange(self.settings), ensure=False)
        await exchange.publish(_message(env, headers), routing_key=connector, mandatory=True)
        await channel.close()
        return env

    async def poison(self, connector: str, env: dict[str, Any] | None = None) -> dict[str, Any]:
        """Let the broker dead-letter ``env`` itself: delivered and returned past the delivery limit."""
        env = env or envelope()
        before = await self.depth(dead_letter_queue(self.settings, connector))
        channel = await self.amqp.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(redeliver_exchange(self.settings), ensure=False)
        await exchange.publish(_message(env, {}), routing_key=connector, mandatory=True)
        queue = await channel.get_queue(connector_queue(self.settings, connector), ensure=False)

        async def returned_until_dead() -> bool:
            message = await queue.get(no_ack=False, fail=False)
            if message is not None:
                await message.reject(requeue=True)  # as a connector process dying on it would
            return await self.depth(dead_letter_queue(self.settings, connector)) > before

        await wait_until(returned_until_dead, what="the broker to dead-letter the poison message")
        await channel.close()
        return env

    async def depth(self, queue_name: str) -> int:
        """Ready messages, counted exactly (a passive declare of a quorum queue may answer stale)."""
        channel = await self.amqp.channel()
        queue = await channel.declare_queue(queue_name, durable=True, arguments=QUORUM)
        await channel.close()
        return queue.declaration_result.message_count or 0

    async def drain(self, queue_name: str) -> list[AbstractIncomingMessage]:
        """Take every message waiting in ``queue_name``."""
        channel = await self.amqp.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append(message)
        await channel.close()
        return found

    def dlq(self, connector: str) -> str:
        return dead_letter_queue(self.settings, connector)

    def queue(self, connector: str) -> str:
        return connector_queue(self.settings, connector)


@pytest.fixture(scope="session")
def audit_template() -> Iterator[str]:
    """A database at the head revision that nothing stays connected to, to copy per test."""
    with new_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def settings(settings: Settings, audit_template: str) -> Iterator[Settings]:
    """The audit trail (``dead_letter_actions``) is the deployment's, not a partner's: each test
    here reads the whole of it, so each gets a database of its own, copied from the template."""
    with copy_of(audit_template) as url:
        yield dataclasses.replace(settings, database_url=url)


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(TABLE)
    return path


@pytest.fixture
async def topology(
    settings: Settings, amqp: AbstractRobustConnection, routes_file: Path
) -> AsyncIterator[DeadLetters]:
    """The routing topology declared straight on the broker (no gateway running)."""
    channel = await amqp.channel()
    events = await declare_edge_topology(channel, settings)
    await declare_routing_topology(channel, settings, parse_routing_table(TABLE), events)
    await channel.close()
    try:
        yield DeadLetters(dataclasses.replace(settings, routes_file=routes_file), amqp)
    finally:
        await delete_routing_topology(amqp, settings, TABLE)


@dataclass
class Desk:
    client: AsyncTestClient  # type: ignore[type-arg]
    admin: dict[str, str]
    """Authorization header of an ``admin`` key."""
    admin_key_id: str
    dead: DeadLetters


@pytest.fixture
async def desk(
    topology: DeadLetters,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    make_key: KeyFactory,
) -> AsyncIterator[Desk]:
    """The gateway with the routing table, and an admin key."""
    secret = await make_key("ops", scopes=("admin",))
    async with AsyncTestClient(
        create_app(topology.settings, registry), raise_server_exceptions=False
    ) as client:
        yield Desk(client, {"Authorization": f"Bearer {secret}"}, secret.split("_")[1], topology)
