"""What a dead letter about a return shows on that return, on the real broker and Redis: the
gateway (with the dead-letter desk), the lifecycle and a system connector, each run as the
platform runs it. An open exception on the status, a timeline line linking the dead letter,
and both cleared once the dead letter is replayed and delivered, or discarded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.api import create_app
from gateway.broker import events_exchange_name
from gateway.database import open_pool
from gateway.envelope import Envelope, trace_context
from gateway.lifecycle import LifecycleStore, Orchestrator
from gateway.records import ReturnRecord, ReturnStore
from gateway.registry import ContractRegistry
from gateway.routing import parse_routing_table
from gateway.runtime import ConnectorRuntime, build_connector
from gateway.settings import Settings
from gateway.worker import connector_runtime
from tests.conftest import KeyFactory
from tests.support.broker import CapturedQueue, capture, delete_routing_topology
from tests.support.payloads import headers, return_request
from tests.support.sandbox import Fault, SandboxState, running_sandbox
from tests.support.waiting import wait_until

TABLE = """
connectors:
  lifecycle:
    use: gateway.lifecycle:Orchestrator
    max_attempts: 3
    retry_delays_ms: [200, 400]
  crm:
    use: gateway.builtin.webhook:WebhookConnector
    target: {{base_url: "{base_url}", timeout_seconds: 5}}
    options: {{path: /records}}
    max_attempts: 2
    retry_delays_ms: [200]
routes:
  - {{id: cases, message: return-request.v1, to: [crm]}}
"""
TABLE += "".join(
    f"  - {{{{id: r{i}, message: {m}, to: [lifecycle]}}}}\n"
    for i, m in enumerate(sorted(Orchestrator.handles or ()))
)
DESK = "/v1/admin/dead-letters"
_REGISTRY = ContractRegistry.from_folder(Path(__file__).resolve().parents[2] / "contracts")


@dataclasses.dataclass
class Watch:
    client: AsyncTestClient  # type: ignore[type-arg]
    settings: Settings
    amqp: AbstractRobustConnection
    redis: aioredis.Redis
    database: AsyncConnectionPool
    crm: SandboxState
    events: CapturedQueue
    """Everything published to the events exchange."""
    requester: str
    operator: str
    """``admin`` (the dead-letter desk) and ``returns:approve`` (holds) in the tenant that decides."""
    returns: ReturnStore
    """The record of returns (PostgreSQL), on the pool the connectors are lent."""

    async def submit(self) -> str:
        response = await self.client.post(
            "/v1/returns", json=return_request(requested_date="2024-02-20"), headers=headers(self.requester)
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def get(self, path: str, key: str | None = None) -> Any:
        response = await self.client.get(path, headers={"Authorization": f"Bearer {key or self.requester}"})
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.client.post(
            path, json=body or {}, headers={"Authorization": f"Bearer {self.operator}"}
        )

    async def exceptions(self, return_id: str) -> list[dict[str, Any]]:
        return list((await self.get(f"/v1/returns/{return_id}"))["exceptions"])

    async def timeline(self, return_id: str) -> list[dict[str, Any]]:
        return list((await self.get(f"/v1/returns/{return_id}/timeline"))["data"])

    async def shows(self, return_id: str, count: int) -> list[dict[str, Any]]:
        """Wait until the return lists ``count`` open exceptions; answer them."""
        found: list[dict[str, Any]] = []

        async def listed() -> bool:
            found[:] = await self.exceptions(return_id)
            return len(found) == count

        await wait_until(listed, within=20, what=f"{count} open exception(s) on {return_id}")
        return found

    async def noted(self, return_id: str, action: str) -> dict[str, Any]:
        """Wait for the return's timeline line of ``action``; answer it."""
        found: list[dict[str, Any]] = []

        async def there() -> bool:
            found[:] = [e for e in await self.timeline(return_id) if e["action"] == action]
            return bool(found)

        await wait_until(there, within=20, what=f"'{action}' on the timeline of {return_id}")
        return found[-1]

    def status_events(self, return_id: str) -> list[dict[str, Any]]:
        """The ``return-status-changed`` payloads published about ``return_id``, in order."""
        found = []
        for message in self.events.messages:
            envelope = msgspec.json.decode(message.body)
            if message.routing_key == "return-status-changed.v1" and envelope["correlation_id"] == return_id:
                found.append(envelope["payload"])
        return found

    async def status(self, return_id: str) -> str:
        return str((await self.get(f"/v1/returns/{return_id}"))["status"])

    async def reaches(self, return_id: str, status: str) -> None:
        async def there() -> bool:
            return await self.status(return_id) == status

        await wait_until(there, within=20, what=f"{return_id} to be {status}")


@pytest.fixture
async def watch(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    database: AsyncConnectionPool,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> AsyncIterator[Watch]:
    database = await open_pool(settings.database, max_size=4)
    with running_sandbox() as (base_url, crm):
        text = TABLE.format(base_url=base_url)
        routes = tmp_path / "routes.yaml"
        routes.write_text(text)
        routed = dataclasses.replace(settings, routes_file=routes)
        table = parse_routing_table(text)
        runtimes: list[ConnectorRuntime] = []
        try:
            async with AsyncTestClient(create_app(routed, registry), raise_server_exceptions=False) as client:
                for name, spec in table.connectors.items():
                    runtime = connector_runtime(
                        build_connector(name, spec),
                        settings=routed,
                        spec=spec,
                        redis=redis,
                        database=database,
                    )
                    await runtime.start()
                    runtimes.append(runtime)
                events = await capture(
                    amqp, events_exchange_name(settings), settings.amqp_name("capture", "events")
                )
                yield Watch(
                    client,
                    routed,
                    amqp,
                    redis,
                    database,
                    crm,
                    events,
                    requester=await make_key("acme"),
                    operator=await make_key(
                        "operations", ("admin", "returns:read", "returns:approve"), rate_limit=10_000
                    ),
                    returns=ReturnStore(database, routed),
                )
        finally:
            for runtime in runtimes:
                await runtime.stop()
                await runtime.connector.aclose()
            await delete_routing_topology(amqp, settings, text)
            await database.close()


def _link(connector: str, message_id: str) -> str:
    return f"{DESK}/{connector}/{message_id}"


async def test_a_system_s_dead_letter_is_an_open_exception_until_its_replay_is_delivered(
    watch: Watch,
) -> None:
    watch.crm.faults.append(Fault(status=400))  # the CRM refuses the case once
    return_id = await watch.submit()
    [exception] = await watch.shows(return_id, 1)
    record = await watch.returns.get(return_id)
    assert record is not None
    assert exception["connector"] == "crm" and exception["message_id"] == record.message_id
    assert exception["message_type"] == "return-request.v1"
    assert exception["error"] == "PermanentDeliveryFailure" and exception["status_code"] == 400
    assert "answered 400" in exception["reason"] and exception["since"]
    assert exception["href"] == _link("crm", record.message_id)
    assert await watch.status(return_id) == "requested"  # a case not opened stops no return

    failed = await watch.noted(return_id, "delivery_failed")
    assert failed["dead_letter"] == {
        "connector": "crm",
        "message_id": record.message_id,
        "href": _link("crm", record.message_id),
    }
    shown = await watch.get(exception["href"], watch.operator)  # the link leads to the dead letter
    assert shown["correlation_id"] == return_id

    replayed = await watch.post(f"{exception['href']}/replay", {"note": "CRM fixed"})
    assert replayed.status_code == 202, replayed.text
    await watch.shows(return_id, 0)
    replay = await watch.noted(return_id, "dead_letter_replayed")
    assert replay["actor"]["type"] == "user" and replay["actor"]["id"].startswith("key:")
    assert replay["dead_letter"]["href"] == exception["href"] and "CRM fixed" in replay["detail"]
    resolved = await watch.noted(return_id, "dead_letter_resolved")
    assert resolved["actor"] == {"type": "system", "id": "crm"} and "delivered" in resolved["detail"]
    assert watch.crm.effects == {record.message_id: 1}
    assert await watch.status(return_id) == "requested"


async def test_a_discarded_dead_letter_is_resolved_by_whoever_discarded_it(watch: Watch) -> None:
    watch.crm.faults.append(Fault(status=422))
    return_id = await watch.submit()
    [exception] = await watch.shows(return_id, 1)
    discarded = await watch.post(f"{exception['href']}/discard", {"reason": "case opened by hand in the CRM"})
    assert discarded.status_code == 200, discarded.text
    await watch.shows(return_id, 0)
    resolved = await watch.noted(return_id, "dead_letter_resolved")
    assert resolved["actor"]["type"] == "user" and resolved["actor"]["id"].startswith("key:")
    assert "discarded" in resolved["detail"] and "case opened by hand in the CRM" in resolved["detail"]
    assert resolved["dead_letter"]["message_id"] == exception["message_id"]


async def _accepted_but_unworkable(watch: Watch) -> tuple[str, dict[str, Any]]:
    """A return the gateway accepted whose request the lifecycle cannot apply (here: one without
    lines, as a lifecycle defect would see it): its record, and the request on the broker."""
    return_id, message_id = f"ret_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
    request = return_request(requested_date="2024-02-20")
    now = dt.datetime.now(dt.UTC)
    record = ReturnRecord(
        id=return_id,
        partner="acme",
        external_id=request["external_id"],
        status="requested",
        contract="return-request",
        contract_version="v1",
        accepted_at=now,
        updated_at=now,
        message_id=message_id,
        request=msgspec.Raw(msgspec.json.encode(request)),
    )
    assert await watch.returns.put(record)
    broken = {k: v for k, v in request.items() if k != "lines"}
    envelope = Envelope(
        message_id=message_id,
        correlation_id=return_id,
        contract="return-request",
        version="v1",
        partner="acme",
        occurred_at=now,
        trace=trace_context(None, None),
        payload=msgspec.Raw(msgspec.json.encode(broken)),
    )
    channel = await watch.amqp.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(events_exchange_name(watch.settings))
    await exchange.publish(
        aio_pika.Message(msgspec.json.encode(envelope), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key="return-request.v1",
    )
    await channel.close()
    return return_id, request


async def test_a_request_dead_lettered_at_the_lifecycle_holds_the_return_until_its_replay_opens_it(
    watch: Watch,
) -> None:
    return_id, request = await _accepted_but_unworkable(watch)
    await watch.reaches(return_id, "on_hold")
    [exception] = await watch.exceptions(return_id)
    assert (exception["connector"], exception["message_type"]) == ("lifecycle", "return-request.v1")
    assert "lines" in exception["reason"]

    timeline = await watch.timeline(return_id)
    assert timeline[0]["action"] == "accepted" and timeline[0]["actor"] == {"type": "partner", "id": "acme"}
    [held] = [e for e in timeline if e.get("to_status") == "on_hold"]
    assert held["dead_letter"]["href"] == exception["href"] and "lines" in held["detail"]
    [waiting] = [
        h for h in (await watch.get("/v1/holds", watch.operator))["data"] if h["return_id"] == return_id
    ]
    assert waiting["held_by"] == {"type": "system", "id": "lifecycle"} and "replay" in waiting["reason"]
    release = await watch.post(f"/v1/returns/{return_id}/release", {"reason": "go on"})
    assert release.status_code == 409, release.text  # only a replay of the request can open it
    state = await LifecycleStore(watch.database, watch.settings).get(return_id)
    assert state is not None and state.external_id == request["external_id"]

    replayed = await watch.post(f"{exception['href']}/replay", {"payload": request})  # corrected
    assert replayed.status_code == 202, replayed.text
    await watch.reaches(return_id, "requested")
    await watch.shows(return_id, 0)
    statuses = [e["to_status"] for e in await watch.timeline(return_id) if e["action"] == "status_changed"]
    assert statuses == ["on_hold", "requested"]
    assert (await watch.noted(return_id, "dead_letter_replayed"))["dead_letter"]["message_id"] == (
        exception["message_id"]
    )
    assert not [
        h for h in (await watch.get("/v1/holds", watch.operator))["data"] if h["return_id"] == return_id
    ]
    await wait_until(lambda: len(watch.status_events(return_id)) == 2, what="two status events")
    held_event, opened_event = watch.status_events(return_id)  # partners follow it like any other
    assert (held_event["from_status"], held_event["to_status"]) == (None, "on_hold")
    assert held_event["external_id"] == request["external_id"] and "lines" in held_event["reason"]
    assert (opened_event["from_status"], opened_event["to_status"]) == ("on_hold", "requested")
    for event in (held_event, opened_event):
        assert _REGISTRY.require("return-status-changed", "v1").violations(event) == []


async def test_a_held_return_whose_request_is_discarded_says_so_where_it_waits(watch: Watch) -> None:
    return_id, _ = await _accepted_but_unworkable(watch)
    await watch.reaches(return_id, "on_hold")
    [exception] = await watch.exceptions(return_id)
    discarded = await watch.post(f"{exception['href']}/discard", {"reason": "sent twice by the portal"})
    assert discarded.status_code == 200, discarded.text
    await watch.shows(return_id, 0)
    [waiting] = [
        h for h in (await watch.get("/v1/holds", watch.operator))["data"] if h["return_id"] == return_id
    ]
    assert "discarded" in waiting["reason"] and "sent twice by the portal" in waiting["reason"]
    assert "replay" not in waiting["reason"]
    assert await watch.status(return_id) == "on_hold"  # never opened: a person decides what follows
