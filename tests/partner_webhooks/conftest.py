"""Partner webhooks on the real broker and Redis: the API to register, a runtime delivering, and a
partner's receiver over real HTTP."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.broker import events_exchange_name
from gateway.database import upgrade
from gateway.registry import ContractRegistry
from gateway.runtime import ConnectorRuntime
from gateway.sandbox import running
from gateway.settings import PROJECT_ROOT, Settings
from tests.conftest import KeyFactory
from tests.connectors.conftest import routed_gateway, running_connector
from tests.support.broker import take_dead_letters
from tests.support.database import copy_of, new_database
from tests.support.receiver import PartnerReceiver

CONNECTOR = "partner-webhooks"
MESSAGE_TYPE = "return-status-changed.v1"
TABLE = """
connectors:
  partner-webhooks:
    use: gateway.partners.webhooks:PartnerWebhookConnector
    options: {{timeout_seconds: 2}}
    max_attempts: 3
    retry_delays_ms: [200, 500, 1000, 2000]
routes:
  - {{id: status-to-partners, message: return-status-changed.v1, to: [partner-webhooks]}}
"""
EVENT = msgspec.json.decode(
    (PROJECT_ROOT / "contracts/return-status-changed/v1/examples/valid/auto-authorized.json").read_bytes()
)
WEBHOOK_SCOPES = ("webhooks:manage",)
LOOPBACK = "127.0.0.1"
"""``RGW_WEBHOOK_ALLOWED_HOSTS`` of these tests: the outbound policy refuses loopback otherwise."""


def verify(secret: str, body: bytes, signature: str, *, tolerance: int = 300) -> bool:
    """The recipe the README gives partners, word for word."""
    fields = dict(part.split("=", 1) for part in signature.split(","))
    timestamp, given = int(fields["t"]), fields["v1"]
    if abs(time.time() - timestamp) > tolerance:
        return False  # too old (or from the future): a replay
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


@pytest.fixture(scope="session")
def endpoints_template() -> Iterator[str]:
    """A database at the head revision that nothing stays connected to, to copy per test."""
    with new_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def settings(settings: Settings, endpoints_template: str) -> Iterator[Settings]:
    """The test settings, with http endpoints on loopback allowed (where the receiver listens),
    and a database of the test's own: these tests register endpoints for fixed partners and
    re-encrypt every endpoint there is, which other tests' endpoints must not disturb."""
    with copy_of(endpoints_template) as url:
        yield dataclasses.replace(
            settings, webhook_allow_http=True, webhook_allowed_hosts=LOOPBACK, database_url=url
        )


@pytest.fixture
def receiver() -> Iterator[tuple[PartnerReceiver, str]]:
    sandbox = PartnerReceiver()
    with running(sandbox) as base_url:
        yield sandbox, base_url


@dataclass
class Harness:
    client: AsyncTestClient  # type: ignore[type-arg]
    runtime: ConnectorRuntime
    settings: Settings
    amqp: AbstractRobustConnection
    make_key: KeyFactory

    async def register(self, key: str, url: str) -> dict[str, Any]:
        response = await self.client.post("/v1/webhook-endpoints", json={"url": url}, headers=auth(key))
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def publish(self, partner: str, /, **changes: Any) -> dict[str, Any]:
        """A ``return-status-changed.v1`` envelope for ``partner`` as the orchestrator publishes it;
        ``changes`` to its payload."""
        payload = copy.deepcopy(EVENT)
        payload.update({"partner": partner, "event_id": str(uuid.uuid4()), **changes})
        envelope = {
            "message_id": f"msg_{uuid.uuid4().hex}",
            "correlation_id": payload["return_id"],
            "contract": "return-status-changed",
            "version": "v1",
            "partner": partner,
            "occurred_at": payload["changed_at"],
            "trace": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            "payload": payload,
        }
        channel = await self.amqp.channel(publisher_confirms=True)
        events = await channel.get_exchange(events_exchange_name(self.settings))
        await events.publish(
            aio_pika.Message(msgspec.json.encode(envelope), message_id=envelope["message_id"]), MESSAGE_TYPE
        )
        await channel.close()
        return envelope

    async def dead_letters(self) -> list[AbstractIncomingMessage]:
        return await take_dead_letters(self.amqp, self.settings, CONNECTOR)


def auth(key: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def harness(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    database: AsyncConnectionPool,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> AsyncIterator[Harness]:
    """A gateway routing ``return-status-changed.v1`` to the connector, and its runtime running."""
    async with (
        routed_gateway(tmp_path, settings, registry, amqp, TABLE) as routed,
        running_connector(routed, CONNECTOR, redis, database) as runtime,
    ):
        yield Harness(routed.client, runtime, routed.settings, amqp, make_key)
