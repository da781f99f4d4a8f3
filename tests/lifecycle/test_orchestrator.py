"""The orchestrator on the real broker and Redis: events published to the events exchange, the
lifecycle's runtime consuming them, its commands and status events captured as they leave."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from psycopg_pool import AsyncConnectionPool

from gateway.broker import events_exchange_name
from gateway.envelope import Envelope, trace_context
from gateway.lifecycle import LifecycleStore, Orchestrator
from gateway.lifecycle._store import APPROVALS, inspections_of
from gateway.registry import ContractRegistry
from gateway.routing import parse_routing_table
from gateway.runtime import ConnectorRuntime, declare_topology
from gateway.sdk import Delivery, RuntimeContext
from gateway.settings import Settings
from gateway.worker import connector_runtime
from tests.support.broker import CapturedQueue, capture, delete_routing_topology
from tests.support.lifecycle import UNAPPROVED_ROAD
from tests.support.payloads import return_request
from tests.support.waiting import wait_until

TABLE = """
connectors:
  lifecycle:
    use: gateway.lifecycle:Orchestrator
    max_attempts: 3
    retry_delays_ms: [200, 400]
routes:
"""
TABLE += "".join(
    f"  - {{id: r{i}, message: {m}, to: [lifecycle]}}\n"
    for i, m in enumerate(sorted(Orchestrator.handles or ()))
)
_REGISTRY = ContractRegistry.from_folder(Path(__file__).resolve().parents[2] / "contracts")


def example(contract: str, name: str) -> dict[str, Any]:
    found = {e.name: e for e in _REGISTRY.require(contract, "v1").valid_examples}
    return copy.deepcopy(found[name].payload)


@dataclasses.dataclass
class Lifecycle:
    settings: Settings
    channel: aio_pika.abc.AbstractChannel
    store: LifecycleStore
    out: CapturedQueue
    runtime: ConnectorRuntime
    partner: str = dataclasses.field(default_factory=lambda: f"acme-{uuid.uuid4().hex[:8]}")
    """The test's own partner: the quantities returned against its documents are its own."""

    async def publish(
        self, message_type: str, payload: dict[str, Any], return_id: str, message_id: str | None = None
    ) -> str:
        """Publish one canonical event about ``return_id``, validated against its contract first."""
        contract, _, version = message_type.rpartition(".")
        assert _REGISTRY.require(contract, version).violations(payload) == [], payload
        envelope = Envelope(
            message_id=message_id or f"msg_{uuid.uuid4().hex}",
            correlation_id=return_id,
            contract=contract,
            version=version,
            partner=self.partner,
            occurred_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
            trace=trace_context(None, None),
            payload=msgspec.Raw(msgspec.json.encode(payload)),
        )
        exchange = await self.channel.get_exchange(events_exchange_name(self.settings))
        await exchange.publish(
            aio_pika.Message(msgspec.json.encode(envelope), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=message_type,
        )
        return envelope.message_id

    async def status(self, return_id: str) -> str | None:
        state = await self.store.get(return_id)
        return None if state is None else state.status

    async def reaches(self, return_id: str, status: str) -> None:
        async def there() -> bool:
            return await self.status(return_id) == status

        try:
            await wait_until(there, within=15, what=f"{return_id} to be {status}")
        except AssertionError:
            timeline = [(e.action, e.to_status, e.detail) for e in await self.store.timeline(return_id)]
            raise AssertionError(
                f"{return_id} is {await self.status(return_id)}, not {status}: {timeline}"
            ) from None

    def emitted(self, message_type: str, return_id: str) -> list[dict[str, Any]]:
        """Payloads of ``message_type`` the lifecycle published about ``return_id``."""
        found = []
        for message in self.out.messages:
            envelope = msgspec.json.decode(message.body)
            if message.routing_key == message_type and envelope["correlation_id"] == return_id:
                found.append(envelope["payload"])
        return found

    async def one(self, message_type: str, return_id: str) -> dict[str, Any]:
        """The one ``message_type`` the lifecycle published about ``return_id`` (waits for it)."""
        await wait_until(
            lambda: bool(self.emitted(message_type, return_id)), within=10, what=f"{message_type} out"
        )
        [payload] = self.emitted(message_type, return_id)
        return payload

    async def statuses(self, return_id: str) -> list[str]:
        return [e.to_status for e in await self.store.timeline(return_id) if e.action == "status_changed"]


@pytest.fixture
async def lifecycle(
    settings: Settings,
    redis: aioredis.Redis,
    database: AsyncConnectionPool,
    amqp: AbstractRobustConnection,
) -> AsyncIterator[Lifecycle]:
    table = parse_routing_table(TABLE)
    await declare_topology(settings, table)
    channel = await amqp.channel(publisher_confirms=True)
    out = await capture(amqp, events_exchange_name(settings), settings.amqp_name("capture", "events"))
    runtime = connector_runtime(
        Orchestrator("lifecycle"),
        settings=settings,
        spec=table.connectors["lifecycle"],
        redis=redis,
        database=database,
    )
    await runtime.start()
    try:
        yield Lifecycle(settings, channel, LifecycleStore(database, settings), out, runtime)
    finally:
        await runtime.stop()
        await runtime.connector.aclose()
        await delete_routing_topology(amqp, settings, TABLE)


def documents(return_id: str, *, shipped: float = 3, missing: bool = False) -> dict[str, Any]:
    return {
        "return_id": return_id,
        "system": "netsuite",
        "checked_at": "2024-02-20T09:00:00Z",
        "documents": [
            {
                "kind": "invoice",
                "number": "90031877",
                "system_id": "9003",
                "date": "2024-02-06",
                "lines": [{"line_number": 1, "sku": "SSD-SAM-PM893-1T92", "quantity": shipped}],
            },
        ],
        "missing": [{"kind": "order", "number": "4500118832"}] if missing else [],
    }


def authorization(decision: dict[str, Any]) -> dict[str, Any]:
    """What the ERP answers a decision with: the RMA."""
    return {
        "return_id": decision["return_id"],
        "external_id": decision["external_id"],
        "decision": decision["decision"],
        "rma_number": "RMA40007",
        "decided_at": decision["decided_at"],
        "decided_by": decision["decided_by"],
        "expires_on": "2024-03-21",
        "erp_documents": [
            {
                "system": "netsuite",
                "document_type": "returnAuthorization",
                "id": "40007",
                "number": "RMA40007",
            }
        ],
        "lines": [{k: v for k, v in line.items() if k != "rule"} for line in decision["lines"]],
    }


def receipt(return_id: str) -> dict[str, Any]:
    payload = example("receipt", "ssd-received-into-quarantine")
    payload["return_id"] = return_id
    return payload


def inspection(return_id: str) -> dict[str, Any]:
    payload = example("inspection-result", "ssd-split-by-condition")  # defective, no fault, new
    payload["return_id"] = return_id
    return payload


def tracking(return_id: str, status: str) -> dict[str, Any]:
    return {
        "event_id": f"trk_{uuid.uuid4().hex}",
        "return_id": return_id,
        "carrier": "UPS",
        "tracking_code": "1Z999AA10123456784",
        "status": status,
        "occurred_at": "2024-02-21T08:00:00Z",
    }


def posted(draft: dict[str, Any]) -> dict[str, Any]:
    return {
        **draft,
        "document_status": "posted",
        "credit_memo_number": "CM7001",
        "posting_date": "2024-03-20",
        "erp_documents": [
            {"system": "netsuite", "document_type": "creditMemo", "id": "7001", "number": "CM7001"}
        ],
    }


async def opened(lifecycle: Lifecycle, **changes: Any) -> str:
    return_id = f"ret_{uuid.uuid4().hex}"
    payload = return_request(**{"requested_date": "2024-02-20", **changes})
    await lifecycle.publish("return-request.v1", payload, return_id)
    await lifecycle.reaches(return_id, "requested")
    return return_id


async def authorized(lifecycle: Lifecycle) -> tuple[str, dict[str, Any]]:
    return_id = await opened(lifecycle)
    await lifecycle.publish("return-documents.v1", documents(return_id), return_id)
    await lifecycle.reaches(return_id, "authorized")
    decision = await lifecycle.one("return-decision.v1", return_id)
    await lifecycle.publish("return-authorization.v1", authorization(decision), return_id)
    await wait_until(lambda: _has_rma(lifecycle, return_id), within=10, what="the RMA to be recorded")
    return return_id, decision


async def _has_rma(lifecycle: Lifecycle, return_id: str) -> bool:
    state = await lifecycle.store.get(return_id)
    return state is not None and state.rma_number == "RMA40007"


async def test_a_return_travels_the_whole_road_and_every_step_is_on_its_timeline(
    lifecycle: Lifecycle,
) -> None:
    return_id, decision = await authorized(lifecycle)
    assert decision["decision"] == "authorized"
    assert decision["decided_by"] == {"type": "system", "id": "lifecycle"}
    assert decision["rule"]["id"] == "auto-authorize"
    assert decision["request"]["external_id"].startswith("RMA-")

    await lifecycle.publish("tracking-event.v1", tracking(return_id, "pre_transit"), return_id)
    await lifecycle.reaches(return_id, "label_issued")
    await lifecycle.publish("tracking-event.v1", tracking(return_id, "in_transit"), return_id)
    await lifecycle.reaches(return_id, "in_transit")
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await lifecycle.reaches(return_id, "received")
    task = await lifecycle.one("inspection-task.v1", return_id)  # the goods are here: inspect them
    assert _REGISTRY.require("inspection-task", "v1").violations(task) == []
    assert (task["site"], task["rma_number"], task["trigger"]["event"]) == ("DC-HAM", "RMA40007", "receipt")
    assert task["rule"]["id"] == "inspect-warranty"  # the request's reason is 'defective'
    assert [(ln["location"], ln["checks"]) for ln in task["lines"]] == [
        ("QRN-01-A", ["condition", "serial_numbers", "function_test", "completeness"])
    ] * 2
    queue = inspections_of(lifecycle.partner)
    assert return_id in [r for r, _ in await lifecycle.store.queued(queue)]
    await lifecycle.publish("inspection-result.v1", inspection(return_id), return_id)
    await lifecycle.reaches(return_id, "dispositioned")
    assert return_id not in [r for r, _ in await lifecycle.store.queued(queue)]
    draft = await lifecycle.one("credit-memo.v1", return_id)
    assert _REGISTRY.require("credit-memo", "v1").violations(draft) == []
    assert draft["document_status"] == "draft" and draft["rma_number"] == "RMA40007"
    assert draft["totals"]["total"] == {"amount": "579.00", "currency": "EUR"}  # no-fault unit not credited
    disposition = await lifecycle.one("disposition.v1", return_id)  # the inventory action, for the ERP
    assert _REGISTRY.require("disposition", "v1").violations(disposition) == []
    assert [(d["disposition_code"], d.get("target_location")) for d in disposition["lines"]] == [
        ("return_to_vendor", None),
        ("restock", "STOCK-A"),
        ("restock", "STOCK-A"),
    ]
    claim = await lifecycle.one("supplier-claim.v1", return_id)  # the defective unit goes back to Samsung
    assert _REGISTRY.require("supplier-claim", "v1").violations(claim) == []
    assert claim["vendor"] == {"account_number": "V-20417"}
    assert [(ln["sku"], ln["quantity"], ln["amount_claimed"]["amount"]) for ln in claim["lines"]] == [
        ("SSD-SAM-PM893-1T92", 1, "231.60")  # 80 % of 289.50
    ]
    await lifecycle.publish("credit-memo.v1", posted(draft), return_id)
    await lifecycle.reaches(return_id, "closed")

    assert await lifecycle.statuses(return_id) == UNAPPROVED_ROAD
    in_table = await lifecycle.store.documents(return_id)  # the documents table
    assert ("netsuite", "returnAuthorization", "40007", "RMA40007") in in_table and len(in_table) >= 2
    timeline = await lifecycle.store.timeline(return_id)
    rules = {e.rule["id"] for e in timeline if e.rule}
    assert {
        "auto-authorize",
        "inspect-warranty",
        "vendor-pays-defects",
        "restock-no-fault",
        "restock-as-new",
    } <= (rules)
    posted_documents = {(d["system"], d.get("number")) for e in timeline for d in e.documents}
    assert {
        ("netsuite", "RMA40007"),
        ("netsuite", "CM7001"),
        ("wms", "WR-HAM-240318-0007"),
    } <= posted_documents
    await wait_until(
        lambda: len(lifecycle.emitted("return-status-changed.v1", return_id)) == 10, what="ten status events"
    )
    changes = lifecycle.emitted("return-status-changed.v1", return_id)
    assert [c["to_status"] for c in changes] == await lifecycle.statuses(return_id)
    for change in changes:
        assert _REGISTRY.require("return-status-changed", "v1").violations(change) == []
    assert {o.value for o in lifecycle.runtime.outcomes} == {"ack"}


async def test_the_receipt_after_a_delivery_scan_refines_the_same_inspection_task(
    lifecycle: Lifecycle,
) -> None:
    return_id, _ = await authorized(lifecycle)
    await lifecycle.publish("tracking-event.v1", tracking(return_id, "delivered"), return_id)
    first = await lifecycle.one("inspection-task.v1", return_id)
    assert first["trigger"]["event"] == "carrier_delivery" and "location" not in first["lines"][0]
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await wait_until(
        lambda: len(lifecycle.emitted("inspection-task.v1", return_id)) == 2,
        within=10,
        what="the refined task",
    )
    refined = lifecycle.emitted("inspection-task.v1", return_id)[1]
    assert _REGISTRY.require("inspection-task", "v1").violations(refined) == []
    assert refined["task_number"] == first["task_number"] and refined["due_by"] == first["due_by"]
    assert refined["trigger"]["event"] == "receipt" and refined["site"] == "DC-HAM"
    assert [ln["location"] for ln in refined["lines"]] == ["QRN-01-A", "QRN-01-A"]
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)  # another receipt: no third task
    await wait_until(lambda: _late(lifecycle, return_id, 2), within=10, what="the second receipt")
    assert len(lifecycle.emitted("inspection-task.v1", return_id)) == 2


async def test_a_redelivered_event_changes_nothing(
    lifecycle: Lifecycle, redis: aioredis.Redis, database: AsyncConnectionPool
) -> None:
    return_id, _ = await authorized(lifecycle)
    message_id = await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await lifecycle.reaches(return_id, "received")
    timeline = await lifecycle.store.timeline(return_id)

    # The same message again, as the broker redelivers it, and past the runtime's own ledger:
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id, message_id=message_id)
    orchestrator = Orchestrator("lifecycle")
    orchestrator.attach(RuntimeContext(settings=lifecycle.settings, redis=redis, database=database))
    again = msgspec.convert(
        {
            "message_id": message_id,
            "correlation_id": return_id,
            "contract": "receipt",
            "version": "v1",
            "partner": lifecycle.partner,
            "occurred_at": "2024-03-18T10:00:00Z",
            "payload": receipt(return_id),
        },
        Delivery,
    )
    try:  # applied already: nothing changes, nothing more is written to publish
        assert await orchestrator.handle(again) is None
        assert await orchestrator.handle(again) is None
    finally:
        await orchestrator.aclose()
    await wait_until(lambda: lifecycle.runtime.outcomes.total() >= 5, within=10, what="the duplicate")
    assert await lifecycle.store.timeline(return_id) == timeline
    assert await lifecycle.statuses(return_id) == ["requested", "validated", "authorized", "received"]


async def test_an_early_event_waits_and_a_late_one_is_only_noted(lifecycle: Lifecycle) -> None:
    return_id, _ = await authorized(lifecycle)
    await lifecycle.publish("inspection-result.v1", inspection(return_id), return_id)  # before the receipt
    await wait_until(lambda: _parked(lifecycle, return_id), within=10, what="the inspection to wait")
    assert await lifecycle.status(return_id) == "authorized"

    await lifecycle.publish("tracking-event.v1", tracking(return_id, "delivered"), return_id)
    await lifecycle.reaches(return_id, "dispositioned")  # received, then the waiting inspection
    task = await lifecycle.one("inspection-task.v1", return_id)  # asked for at the carrier's delivery
    assert _REGISTRY.require("inspection-task", "v1").violations(task) == []
    assert task["trigger"] == {
        "event": "carrier_delivery",
        "document": {"system": "carrier", "document_type": "tracking", "id": "1Z999AA10123456784"},
    }
    assert [(ln["quantity"], ln["serial_numbers"]) for ln in task["lines"]] == [
        (2, ["S5KANE0R401234", "S5KANE0R401239"]),
        (1, ["S5KANE0R401240"]),
    ]
    await lifecycle.publish("tracking-event.v1", tracking(return_id, "in_transit"), return_id)  # late scan
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)  # the WMS receipt comes after
    await wait_until(lambda: _late(lifecycle, return_id, 2), within=10, what="the late scan and receipt")
    assert len(lifecycle.emitted("inspection-task.v1", return_id)) == 1  # one task per return
    assert await lifecycle.statuses(return_id) == [
        "requested",
        "validated",
        "authorized",
        "received",
        "inspected",
        "dispositioned",
    ]


async def _parked(lifecycle: Lifecycle, return_id: str) -> bool:
    return any(e.action == "parked" for e in await lifecycle.store.timeline(return_id))


async def _late(lifecycle: Lifecycle, return_id: str, count: int = 1) -> bool:
    return sum(e.action == "late_event" for e in await lifecycle.store.timeline(return_id)) >= count


async def test_an_event_on_a_rejected_return_is_refused_into_the_dead_letters(lifecycle: Lifecycle) -> None:
    return_id = await opened(lifecycle, requested_date="2027-01-01")  # outside every window
    await lifecycle.publish("return-documents.v1", documents(return_id), return_id)
    await lifecycle.reaches(return_id, "rejected")
    rejection = await lifecycle.one("return-authorization.v1", return_id)
    assert rejection["decision"] == "rejected" and rejection["rejection_reason"] == "outside_return_window"
    assert _REGISTRY.require("return-authorization", "v1").violations(rejection) == []

    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await wait_until(lambda: lifecycle.runtime.outcomes.get(_dead()) == 1, within=10, what="the refusal")
    assert await lifecycle.status(return_id) == "rejected"


def _dead() -> Any:
    from gateway.runtime import Outcome

    return Outcome.DEAD


async def test_a_failed_posting_parks_the_return_and_the_replayed_posting_resumes_it(
    lifecycle: Lifecycle,
) -> None:
    return_id, _ = await authorized(lifecycle)
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await lifecycle.publish("inspection-result.v1", inspection(return_id), return_id)
    await lifecycle.reaches(return_id, "dispositioned")
    draft = await lifecycle.one("credit-memo.v1", return_id)
    failure = {
        "return_id": return_id,
        "connector": "erp",
        "message_id": "msg_credit.lifecycle.credit",
        "message_type": "credit-memo.v1",
        "error": "PermanentDeliveryFailure",
        "detail": "NetSuite has no invoice 90031877 to credit",
        "status_code": 400,
        "attempts": 1,
        "dead_lettered_at": "2024-03-20T10:00:00Z",
    }
    await lifecycle.publish("delivery-failed.v1", failure, return_id)
    await lifecycle.reaches(return_id, "posting_failed")
    state = await lifecycle.store.get(return_id)
    assert state is not None and state.resume == "dispositioned"
    [entry] = [e for e in await lifecycle.store.timeline(return_id) if e.to_status == "posting_failed"]
    assert entry.dead_letter == {"connector": "erp", "message_id": "msg_credit.lifecycle.credit"}

    await lifecycle.publish("credit-memo.v1", posted(draft), return_id)  # the replay got through
    await lifecycle.reaches(return_id, "closed")
    assert (await lifecycle.statuses(return_id))[-3:] == ["posting_failed", "credited", "closed"]


async def test_a_request_that_cannot_be_checked_waits_in_the_approvals_queue(lifecycle: Lifecycle) -> None:
    return_id = await opened(lifecycle)
    await lifecycle.publish("return-documents.v1", documents(return_id, missing=True), return_id)
    await lifecycle.reaches(return_id, "validation_failed")
    assert return_id in [r for r, _ in await lifecycle.store.queued(APPROVALS)]
    approval = {
        "return_id": return_id,
        "decision": "approve",
        "approver": {"type": "user", "id": "key_ops"},
        "approver_partner": "operations",
        "decided_at": "2024-02-21T10:00:00Z",
        "comment": "order is old",
    }
    await lifecycle.publish("approval.v1", approval, return_id)
    await lifecycle.reaches(return_id, "authorized")
    assert return_id not in [r for r, _ in await lifecycle.store.queued(APPROVALS)]
    decision = await lifecycle.one("return-decision.v1", return_id)
    assert decision["decided_by"] == {"type": "user", "id": "key_ops"}
    assert decision["approvals"][0]["comment"] == "order is old"


def hold(return_id: str, action: str, partner: str = "operations", **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "return_id": return_id,
        "action": action,
        "decided_by": {"type": "user", "id": "key_ops1"},
        "decided_by_partner": partner,
        "decided_at": "2024-03-20T10:00:00Z",
        **extra,
    }
    if action == "hold":
        payload.setdefault("reason", "fraud review")
    return payload


async def test_events_that_come_while_a_return_is_held_wait_for_its_release(lifecycle: Lifecycle) -> None:
    return_id = await opened(lifecycle)
    await lifecycle.publish(
        "return-hold.v1", hold(return_id, "hold", partner=lifecycle.partner), return_id
    )  # its own
    await wait_until(lambda: _noted(lifecycle, return_id, "hold_refused"), within=10, what="the refusal")
    await lifecycle.publish("return-hold.v1", hold(return_id, "hold"), return_id)
    await lifecycle.reaches(return_id, "on_hold")
    await lifecycle.publish(
        "return-documents.v1", documents(return_id), return_id
    )  # the ERP answers meanwhile
    await wait_until(lambda: _parked(lifecycle, return_id), within=10, what="the documents to wait")
    assert await lifecycle.status(return_id) == "on_hold"
    await lifecycle.publish("return-hold.v1", hold(return_id, "release"), return_id)
    await lifecycle.reaches(return_id, "authorized")  # released to requested, then the documents applied
    assert (await lifecycle.statuses(return_id))[-4:] == ["on_hold", "requested", "validated", "authorized"]


async def test_a_posted_credit_and_a_dead_letter_during_a_hold_do_not_end_it(lifecycle: Lifecycle) -> None:
    return_id, _ = await authorized(lifecycle)
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await lifecycle.publish("inspection-result.v1", inspection(return_id), return_id)
    await lifecycle.reaches(return_id, "dispositioned")
    draft = await lifecycle.one("credit-memo.v1", return_id)
    await lifecycle.publish("return-hold.v1", hold(return_id, "hold"), return_id)
    await lifecycle.reaches(return_id, "on_hold")
    failure = {
        "return_id": return_id,
        "connector": "erp",
        "message_id": "msg_claim.lifecycle.claim",
        "message_type": "supplier-claim.v1",
        "error": "PermanentDeliveryFailure",
        "detail": "vendor V-20417 is blocked",
        "attempts": 1,
        "dead_lettered_at": "2024-03-20T10:00:00Z",
    }
    await lifecycle.publish("delivery-failed.v1", failure, return_id)
    await wait_until(
        lambda: _noted(lifecycle, return_id, "delivery_failed"), within=10, what="the dead letter"
    )
    await lifecycle.publish("credit-memo.v1", posted(draft), return_id)  # posted before the hold took
    await wait_until(lambda: _parked(lifecycle, return_id), within=10, what="the posted credit to wait")
    assert await lifecycle.status(return_id) == "on_hold"
    await lifecycle.publish("return-hold.v1", hold(return_id, "release"), return_id)
    await lifecycle.reaches(return_id, "closed")
    assert (await lifecycle.statuses(return_id))[-4:] == ["on_hold", "dispositioned", "credited", "closed"]


async def _noted(lifecycle: Lifecycle, return_id: str, action: str) -> bool:
    return any(e.action == action for e in await lifecycle.store.timeline(return_id))


async def test_a_failed_claim_parks_the_return_until_its_replayed_copy_is_delivered(
    lifecycle: Lifecycle,
) -> None:
    return_id, _ = await authorized(lifecycle)
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await lifecycle.publish("inspection-result.v1", inspection(return_id), return_id)
    await lifecycle.reaches(return_id, "dispositioned")
    claim = f"{uuid.uuid4().hex}.lifecycle.claim.vendor-pays-defects"
    failure = {
        "return_id": return_id,
        "connector": "erp",
        "message_id": claim,
        "message_type": "supplier-claim.v1",
        "error": "PermanentDeliveryFailure",
        "detail": "vendor V-20417 is blocked",
        "attempts": 1,
        "dead_lettered_at": "2024-03-20T10:00:00Z",
    }
    await lifecycle.publish("delivery-failed.v1", failure, return_id)
    await lifecycle.reaches(return_id, "posting_failed")
    state = await lifecycle.store.get(return_id)
    assert state is not None and [r.message_id for r in state.open_dead_letters] == [claim]

    delivered = {
        "return_id": return_id,
        "connector": "erp",
        "message_id": claim,
        "message_type": "supplier-claim.v1",
        "action": "delivered",
        "replayed_as": claim,
        "actor": {"type": "system", "id": "erp"},
        "at": "2024-03-20T11:00:00Z",
    }
    await lifecycle.publish("dead-letter-action.v1", delivered, return_id)
    await lifecycle.reaches(return_id, "dispositioned")  # nothing else came back for a claim
    state = await lifecycle.store.get(return_id)
    assert state is not None and state.open_dead_letters == [] and state.resume is None
    [back] = [e for e in await lifecycle.store.timeline(return_id) if e.from_status == "posting_failed"]
    assert back.actor == {"type": "system", "id": "erp"} and back.dead_letter == {
        "connector": "erp",
        "message_id": claim,
    }
    draft = await lifecycle.one("credit-memo.v1", return_id)
    await lifecycle.publish("credit-memo.v1", posted(draft), return_id)
    await lifecycle.reaches(return_id, "closed")


async def test_a_dead_letter_discarded_before_its_notice_arrived_opens_nothing(lifecycle: Lifecycle) -> None:
    return_id = await opened(lifecycle)
    discarded = {
        "return_id": return_id,
        "connector": "crm",
        "message_id": "msg_case",
        "message_type": "return-request.v1",
        "action": "discarded",
        "reason": "case opened by hand",
        "actor": {"type": "user", "id": "key:ops"},
        "at": "2024-03-20T11:00:00Z",
    }
    await lifecycle.publish("dead-letter-action.v1", discarded, return_id)
    await wait_until(lambda: _noted(lifecycle, return_id, "dead_letter_resolved"), what="the discard")
    failure = {
        "return_id": return_id,
        "connector": "crm",
        "message_id": "msg_case",
        "message_type": "return-request.v1",
        "error": "PermanentDeliveryFailure",
        "detail": "no account",
        "dead_lettered_at": "2024-03-20T10:00:00Z",
    }
    await lifecycle.publish("delivery-failed.v1", failure, return_id)
    await wait_until(lambda: _noted(lifecycle, return_id, "delivery_failed"), what="the late notice")
    state = await lifecycle.store.get(return_id)
    assert state is not None and state.open_dead_letters == [] and state.status == "requested"


async def test_documents_that_waited_for_a_release_count_what_earlier_returns_took(
    lifecycle: Lifecycle,
) -> None:
    await authorized(lifecycle)  # all three shipped units of the invoice, authorized
    second = await opened(lifecycle)
    await lifecycle.publish("return-hold.v1", hold(second, "hold"), second)
    await lifecycle.reaches(second, "on_hold")
    await lifecycle.publish("return-documents.v1", documents(second), second)  # the same invoice
    await wait_until(lambda: _parked(lifecycle, second), within=10, what="the documents to wait")
    await lifecycle.publish("return-hold.v1", hold(second, "release"), second)
    await lifecycle.reaches(second, "rejected")  # nothing of the invoice is left to return
    rejection = await lifecycle.one("return-authorization.v1", second)
    assert rejection["rejection_reason"] == "exceeds_returnable_quantity"


async def test_losing_redis_changes_nothing_of_a_return_and_the_next_event_applies(
    lifecycle: Lifecycle, redis: aioredis.Redis
) -> None:
    return_id, _ = await authorized(lifecycle)
    await lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await lifecycle.reaches(return_id, "received")
    queue = inspections_of(lifecycle.partner)
    state, timeline, queued = (
        await lifecycle.store.get(return_id),
        await lifecycle.store.timeline(return_id),
        await lifecycle.store.queued(queue),
    )
    assert return_id in [r for r, _ in queued]

    keys = [k async for k in redis.scan_iter(match=f"*{lifecycle.settings.namespace}*", count=500)]
    assert keys  # the runtime's ledger at least: what may be lost
    await redis.delete(*keys)  # this test's namespace, as a Redis restarted empty leaves it

    assert await lifecycle.store.get(return_id) == state
    assert await lifecycle.store.timeline(return_id) == timeline
    assert await lifecycle.store.queued(queue) == queued
    await lifecycle.publish("inspection-result.v1", inspection(return_id), return_id)
    await lifecycle.reaches(return_id, "dispositioned")
    assert return_id not in [r for r, _ in await lifecycle.store.queued(queue)]
    assert await lifecycle.statuses(return_id) == [
        "requested",
        "validated",
        "authorized",
        "received",
        "inspected",
        "dispositioned",
    ]
