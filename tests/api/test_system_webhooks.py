"""Webhooks from systems on the real broker: an event is published once whatever its system id,
a failed first attempt does not turn the system's retry into a "duplicate", and a body the
receiver cannot read is a 4xx, never a 500."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient

from gateway.api import create_app
from gateway.broker import BrokerPublisher, events_exchange_name
from gateway.registry import ContractRegistry
from gateway.sdk import Connector, Emitted, Inbound, Receiver
from gateway.settings import Settings
from tests.conftest import KeyFactory
from tests.support.broker import CapturedQueue, capture, delete_routing_topology
from tests.support.payloads import headers, return_request
from tests.support.waiting import wait_until

TABLE = """
connectors:
  wms:
    use: tests.api.test_system_webhooks:EchoingWms
routes:
  - {id: receipts, message: receipt.v1, to: [wms]}
"""


class EchoingWms(Connector, Receiver):
    """A WMS whose webhook body is ``{"return_id", "event_id"}`` or anything else to read."""

    async def receive(self, inbound: Inbound) -> Sequence[Emitted]:
        body = json.loads(inbound.body)
        payload = {"return_id": body["return_id"], "note": body["note"]["text"]}  # may raise
        return [self.event("receipt.v1", payload, f"{self.name}.{body['event_id']}")]


@dataclasses.dataclass
class Webhooks:
    client: AsyncTestClient  # type: ignore[type-arg]
    events: CapturedQueue
    return_id: str

    async def send(self, event_id: str, **body: object) -> tuple[int, dict[str, object]]:
        content = json.dumps({"return_id": self.return_id, "event_id": event_id, **body}).encode()
        response = await self.client.post("/v1/webhooks/wms", content=content)
        return response.status_code, response.json()

    def published(self) -> list[str]:
        return [m.message_id or "" for m in self.events.messages if m.type == "receipt.v1"]


@pytest.fixture
async def webhooks(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> AsyncIterator[Webhooks]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(TABLE)
    app = create_app(dataclasses.replace(settings, routes_file=routes), registry)
    try:
        async with AsyncTestClient(app, raise_server_exceptions=False) as client:
            events = await capture(
                amqp, events_exchange_name(settings), settings.amqp_name("capture", "events")
            )
            key = await make_key()
            accepted = await client.post("/v1/returns", json=return_request(), headers=headers(key))
            assert accepted.status_code == 202, accepted.text
            yield Webhooks(client, events, accepted.json()["id"])
    finally:
        await delete_routing_topology(amqp, settings, TABLE)


async def test_an_event_with_a_very_long_system_id_is_published_once(webhooks: Webhooks) -> None:
    long_id = "I" * 300  # over AMQP's 255 bytes for a message id once prefixed
    status, first = await webhooks.send(long_id, note={"text": "inspected"})
    assert status == 202, first
    status, again = await webhooks.send(long_id, note={"text": "inspected"})  # the system resends
    assert status == 202, again
    [accepted] = first["accepted"]
    assert again == {"accepted": [], "duplicates": [accepted]}
    assert len(accepted.encode()) <= 255
    await wait_until(lambda: len(webhooks.published()) == 1, what="the event on the broker")
    assert webhooks.published() == [accepted]


async def test_a_failed_first_attempt_lets_the_retry_through(
    webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = BrokerPublisher.publish
    failures = [RuntimeError("the connection broke in an unexpected way")]

    async def failing_once(self: BrokerPublisher, *args: object, **kwargs: object) -> None:
        if failures:
            raise failures.pop()
        await original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BrokerPublisher, "publish", failing_once)
    status, _ = await webhooks.send("evt-1", note={"text": "received"})
    assert status >= 500  # the system is told to send it again
    status, retried = await webhooks.send("evt-1", note={"text": "received"})
    assert status == 202, retried
    assert retried["duplicates"] == [] and len(retried["accepted"]) == 1
    await wait_until(lambda: len(webhooks.published()) == 1, what="the event on the broker")


@pytest.mark.parametrize(
    "body",
    [
        {"note": 1},  # a number where the receiver reads an object
        {"note": "received"},  # a string where the receiver reads an object
        {},  # a field the receiver reads is missing
    ],
)
async def test_a_body_the_receiver_cannot_read_is_a_422(webhooks: Webhooks, body: dict[str, object]) -> None:
    content = json.dumps({"return_id": webhooks.return_id, "event_id": "e", **body}).encode()
    response = await webhooks.client.post("/v1/webhooks/wms", content=content)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert webhooks.published() == []


async def test_json_nested_too_deep_is_refused_before_the_receiver_reads_it(webhooks: Webhooks) -> None:
    response = await webhooks.client.post("/v1/webhooks/wms", content=b"[" * 1000)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
