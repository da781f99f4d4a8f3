"""One return through every system, on the real broker and Redis, with each system's sandbox:
the gateway, a connector runtime per system and the webhooks, as the demo wires them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from gateway.demo._run import nordwind_180
from gateway.demo._stack import Stack, running_stack
from gateway.demo._watch import return_ids_in
from gateway.edi import check_interchange
from gateway.sandbox import Fault
from gateway.settings import Settings
from tests.support.lifecycle import UNAPPROVED_ROAD
from tests.support.payloads import return_request
from tests.support.waiting import wait_until


def mentioning(stack: Stack, role: str, return_id: str, collection: str) -> list[dict[str, Any]]:
    return [r for r in stack.sandboxes[role].state.all(collection) if return_id in set(return_ids_in(r))]


def case_status(stack: Stack, return_id: str) -> str | None:
    cases = mentioning(stack, "crm", return_id, "Case") or [
        r for r in stack.sandboxes["crm"].state.all_records() if return_id in set(return_ids_in(r))
    ]
    return cases[0].get("Status") if cases else None


def own_partner() -> str:
    """A partner of the test's own: what the lifecycle counts per partner (quantities already
    returned against an ERP document) is in the run's database, shared by every test."""
    return f"acme-{uuid.uuid4().hex[:8]}"


async def status_of(stack: Stack, return_id: str) -> str:
    response = await stack.http.get(
        f"{stack.gateway_url}/v1/returns/{return_id}", headers={"Authorization": f"Bearer {stack.api_key}"}
    )
    return str(response.json()["status"])


async def follow_one_return(stack: Stack, erp_collection: str) -> str:
    """Submit one return (twice, same key), play the carrier and the warehouse (each webhook
    twice; the warehouse finds line 1 defective), and wait until the return is closed."""
    return_id = await play_one_return(stack)
    await reaches(stack, return_id, "closed")
    await wait_until(lambda: case_status(stack, return_id) == "Closed", within=10, what="the case to close")
    return return_id


async def play_one_return(stack: Stack) -> str:
    """Submit one return and play the outside world up to its inspection."""
    key, payload = uuid.uuid4().hex, return_request(requested_date="2024-02-20")  # inside every window
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
        ("wms", *wms.inspect_return(receiver["referenceNum"], grades={1: "DEF"})),  # type: ignore[attr-defined]
    ]
    for role, body, headers in webhooks:
        accepted = await stack.webhook(role, body, headers)
        assert accepted.status_code == 202, accepted.text
        resent = await stack.webhook(role, body, headers)  # systems resend: one event still
        assert resent.status_code == 202 and resent.json()["accepted"] == [], resent.text
    return return_id


async def reaches(stack: Stack, return_id: str, status: str) -> None:
    async def there() -> bool:
        return await status_of(stack, return_id) == status

    try:
        await wait_until(there, within=30, what=f"the return to be {status}")
    except AssertionError:
        steps = [
            (e["action"], e.get("to_status"), e.get("detail")) for e in await timeline_of(stack, return_id)
        ]
        raise AssertionError(
            f"{return_id} is {await status_of(stack, return_id)}, not {status}: {steps}"
        ) from None


async def timeline_of(stack: Stack, return_id: str) -> list[dict[str, Any]]:
    response = await stack.http.get(
        f"{stack.gateway_url}/v1/returns/{return_id}/timeline",
        headers={"Authorization": f"Bearer {stack.api_key}"},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


#: Per ERP: the RMA, the credit memo and the supplier claim, each a record in its sandbox.
ERP_RECORDS = {
    "netsuite": ("returnAuthorization", "creditMemo", "vendorReturnAuthorization"),
    # Business Central's return document is the draft credit memo that posting the credit books.
    "business_central": ("salesCreditMemos", "salesCreditMemos", "purchaseCreditMemos"),
}


def assert_each_system_posted_once(stack: Stack, return_id: str, erp: str) -> None:
    rma, credit, claim = ERP_RECORDS[erp]
    for collection in {rma, credit}:
        assert len(mentioning(stack, "erp", return_id, collection)) == 1, collection
    # The claim names the vendor's documents, not ours; this stack ran one return, so one claim.
    assert len(stack.sandboxes["erp"].state.all(claim)) == 1
    if erp == "netsuite":  # the unit found new goes back into stock by an inventory adjustment
        [adjustment] = mentioning(stack, "erp", return_id, "inventoryAdjustment")
        assert [i["location"]["refName"] for i in adjustment["inventory"]["items"]] == ["STOCK-A"]
    else:  # posting the credit memo books the goods back: the new unit to stock, the defective one held
        bc = stack.sandboxes["erp"]
        [memo] = mentioning(stack, "erp", return_id, "salesCreditMemos")
        booked = sorted(bc.location_code(ln["locationId"]) for ln in memo["salesCreditMemoLines"])  # type: ignore[attr-defined]
        assert booked == ["QUARANTINE", "STOCK-A"]
        assert len(bc.state.all("itemLedgerEntries")) == len(memo["salesCreditMemoLines"])
    assert len(mentioning(stack, "wms", return_id, "receivers")) == 1
    assert len(stack.sandboxes["wms"].state.requests_to("POST", "/inventory/receivers")) == 1
    assert len(mentioning(stack, "carrier", return_id, "shipments")) == 1
    assert len(stack.sandboxes["carrier"].state.requests_to("POST", "/v2/shipments")) == 2  # create, buy
    assert len(mentioning(stack, "crm", return_id, "Case")) == 1
    [task] = mentioning(stack, "crm", return_id, "Task")  # the inspection team's, done by now
    assert (
        task["Status"] == "Completed"
        and task["WhatId"] == mentioning(stack, "crm", return_id, "Case")[0]["Id"]
    )
    for name, runtime in stack.runtimes.items():
        assert {o.value for o in runtime.outcomes} <= {"ack"}, (name, runtime.outcomes)


@pytest.mark.parametrize("erp", ["netsuite", "business_central"])
async def test_one_return_travels_the_whole_lifecycle_through_every_system_once(
    settings: Settings, redis: aioredis.Redis, amqp: AbstractRobustConnection, erp: str
) -> None:
    """The same flow with either ERP: swapping it is the routing table's entry, nothing else."""
    async with running_stack(settings, erp=erp, partner=own_partner()) as stack:
        return_id = await follow_one_return(stack, ERP_RECORDS[erp][0])
        assert_each_system_posted_once(stack, return_id, erp)
        assert f"use: {'connectors.erp.' + erp}" in stack.table_text

        timeline = await timeline_of(stack, return_id)
        statuses = [e["to_status"] for e in timeline if e["action"] == "status_changed"]
        assert statuses == UNAPPROVED_ROAD
        systems = {d["system"] for e in timeline for d in e.get("documents", [])}
        assert {erp, "wms", "carrier"} <= systems  # RMA and credit memo ids, receipt, tracking
        rules = {e["rule"]["id"] for e in timeline if e.get("rule")}
        assert {
            "auto-authorize",
            "inspect-warranty",
            "vendor-pays-defects",
            "restock-as-new",
            "samsung-warranty",
        } <= (rules)
        assert all(e["message_id"] and e["actor"]["id"] for e in timeline)


async def test_a_refused_credit_posting_parks_the_return_until_its_dead_letter_is_replayed(
    settings: Settings, redis: aioredis.Redis, amqp: AbstractRobustConnection
) -> None:
    async with running_stack(settings, erp="netsuite", partner=own_partner()) as stack:
        erp = stack.sandboxes["erp"]
        erp.state.faults.append(  # the ERP refuses the credit memo once (a closed period, say)
            Fault(status=400, method="POST", path="/services/rest/record/v1/invoice/", times=1)
        )
        return_id = await play_one_return(stack)
        await reaches(stack, return_id, "posting_failed")
        [parked] = [e for e in await timeline_of(stack, return_id) if e.get("to_status") == "posting_failed"]
        link = parked["dead_letter"]
        assert link["connector"] == "erp" and link["message_id"].endswith(".lifecycle.credit")
        assert link["href"] == f"/v1/admin/dead-letters/erp/{link['message_id']}"
        [letter] = await stack.dead_letters("erp")
        assert letter["message_id"] == link["message_id"]
        assert mentioning(stack, "erp", return_id, "creditMemo") == []
        [exception] = await exceptions_of(stack, return_id)  # the partner sees why, and where it waits
        assert (exception["message_type"], exception["status_code"]) == ("credit-memo.v1", 400)
        assert exception["href"] == link["href"] and exception["reason"]

        replayed = await stack.http.post(
            f"{stack.gateway_url}{link['href']}/replay",
            headers={"Authorization": f"Bearer {stack.admin_key}"},
        )
        assert replayed.status_code == 202, replayed.text
        await reaches(stack, return_id, "closed")
        await wait_until(lambda: _no_exception(stack, return_id), within=20, what="the exception to close")
        timeline = await timeline_of(stack, return_id)
        statuses = [e["to_status"] for e in timeline if e["action"] == "status_changed"]
        assert statuses[-4:] in (  # the posted credit and the copy's delivery may come in either order
            ["dispositioned", "posting_failed", "credited", "closed"],
            ["posting_failed", "dispositioned", "credited", "closed"],
        )
        assert {"dead_letter_replayed", "dead_letter_resolved"} <= {e["action"] for e in timeline}
        assert len(mentioning(stack, "erp", return_id, "creditMemo")) == 1
        assert await stack.dead_letters("erp") == []


async def exceptions_of(stack: Stack, return_id: str) -> list[dict[str, Any]]:
    response = await stack.http.get(
        f"{stack.gateway_url}/v1/returns/{return_id}", headers={"Authorization": f"Bearer {stack.api_key}"}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["exceptions"])


async def _no_exception(stack: Stack, return_id: str) -> bool:
    return await exceptions_of(stack, return_id) == []


async def test_a_return_sent_by_x12_is_acknowledged_then_answered_with_a_180_once_authorized(
    settings: Settings, redis: aioredis.Redis, amqp: AbstractRobustConnection
) -> None:
    async with running_stack(settings, erp="netsuite", partner=own_partner()) as stack:
        sent = await stack.send_x12(nordwind_180("E2E" + uuid.uuid4().hex[:6].upper()))
        assert sent.status_code == 200, sent.text
        assert "AK5*A" in sent.text and "AK9*A*1*1*1" in sent.text
        [(_, return_id)] = [item.split("=") for item in sent.headers["rgw-returns"].split(",")]
        await wait_until(
            lambda: bool(mentioning(stack, "erp", return_id, "returnAuthorization")),
            within=20,
            what="the RMA",
        )
        [rma] = mentioning(stack, "erp", return_id, "returnAuthorization")

        responses: list[str] = []

        async def answered() -> bool:
            responses[:] = await stack.x12_responses(return_id)
            return bool(responses)

        await wait_until(answered, within=20, what="the 180 response")
        [response] = responses
        segments = [s.strip().split("*") for s in response.split("~") if s.strip()]
        assert ["RDR", "RA"] in segments and ["N9", "RA", rma["tranId"]] in segments
        assert next(s for s in segments if s[0] == "BLI")[1:4] == ["BP", "NW-4711", "1"]
        assert check_interchange(response.encode()).transactions[0].result.accepted
