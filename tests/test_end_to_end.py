"""One return through every system, on the real broker and Redis, with each system's sandbox:
the gateway, a connector runtime per system and the webhooks, as the demo wires them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from gateway.demo._stack import Stack, running_stack
from gateway.demo._watch import return_ids_in
from gateway.settings import Settings
from tests.support.payloads import return_request
from tests.support.waiting import wait_until


def mentioning(stack: Stack, role: str, return_id: str, collection: str) -> list[dict[str, Any]]:
    return [r for r in stack.sandboxes[role].state.all(collection) if return_id in set(return_ids_in(r))]


def case_status(stack: Stack, return_id: str) -> str | None:
    cases = mentioning(stack, "crm", return_id, "Case") or [
        r for r in stack.sandboxes["crm"].state.all_records() if return_id in set(return_ids_in(r))
    ]
    return cases[0].get("Status") if cases else None


async def follow_one_return(stack: Stack, erp_collection: str) -> str:
    """Submit one return (twice, same key), play the carrier and the warehouse (each webhook
    twice), and wait until the CRM case says inspected; answers the return id."""
    key, payload = uuid.uuid4().hex, return_request()
    first = await stack.submit(payload, idempotency_key=key)
    assert first.status_code == 202, first.text
    return_id = first.json()["id"]
    again = await stack.submit(payload, idempotency_key=key)  # a client retry: replayed
    assert again.headers.get("idempotent-replayed") == "true"

    carrier, wms = stack.sandboxes["carrier"], stack.sandboxes["wms"]
    await wait_until(
        lambda: (
            any(s.get("tracker") for s in mentioning(stack, "carrier", return_id, "shipments"))
            and bool(mentioning(stack, "wms", return_id, "receivers"))
            and case_status(stack, return_id) is not None
        ),
        within=20,
        what="the bought label, the expected receipt and the case",
    )
    [shipment] = [s for s in mentioning(stack, "carrier", return_id, "shipments") if s.get("tracker")]
    [receiver] = mentioning(stack, "wms", return_id, "receivers")
    webhooks = [
        ("carrier", *carrier.tracker_event(shipment["id"], "in_transit")),  # type: ignore[attr-defined]
        ("carrier", *carrier.tracker_event(shipment["id"], "delivered")),  # type: ignore[attr-defined]
        ("wms", *wms.confirm_receipt(receiver["referenceNum"])),  # type: ignore[attr-defined]
        ("wms", *wms.inspect_return(receiver["referenceNum"])),  # type: ignore[attr-defined]
    ]
    for role, body, headers in webhooks:
        accepted = await stack.webhook(role, body, headers)
        assert accepted.status_code == 202, accepted.text
        resent = await stack.webhook(role, body, headers)  # systems resend: one event still
        assert resent.status_code == 202 and resent.json()["accepted"] == [], resent.text
    await wait_until(
        lambda: case_status(stack, return_id) == "Inspected", within=20, what="the case to say inspected"
    )
    assert len(mentioning(stack, "erp", return_id, erp_collection)) == 1
    return return_id


def assert_each_system_posted_once(stack: Stack, return_id: str, erp_collection: str) -> None:
    assert len(mentioning(stack, "erp", return_id, erp_collection)) == 1
    assert len(mentioning(stack, "wms", return_id, "receivers")) == 1
    assert len(stack.sandboxes["wms"].state.requests_to("POST", "/inventory/receivers")) == 1
    assert len(mentioning(stack, "carrier", return_id, "shipments")) == 1
    assert len(stack.sandboxes["carrier"].state.requests_to("POST", "/v2/shipments")) == 2  # create, buy
    crm = [r for r in stack.sandboxes["crm"].state.all_records() if return_id in set(return_ids_in(r))]
    assert len(crm) == 1
    for name, runtime in stack.runtimes.items():
        assert {o.value for o in runtime.outcomes} <= {"ack"}, (name, runtime.outcomes)


@pytest.mark.parametrize(
    ("erp", "erp_collection"), [("netsuite", "returnAuthorization"), ("business_central", "salesCreditMemos")]
)
async def test_one_return_reaches_every_system_exactly_once(
    settings: Settings, redis: aioredis.Redis, amqp: AbstractRobustConnection, erp: str, erp_collection: str
) -> None:
    """The same flow with either ERP: swapping it is the routing table's entry, nothing else."""
    async with running_stack(settings, erp=erp, partner="acme") as stack:
        return_id = await follow_one_return(stack, erp_collection)
        assert_each_system_posted_once(stack, return_id, erp_collection)
        assert f"use: {'connectors.erp.' + erp}" in stack.table_text
