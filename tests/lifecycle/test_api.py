"""The lifecycle's API on the real broker and Redis: the approvals queue with segregation of
duties and two approvers, decisions, the timeline, and receipts and inspections from portals."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.api import create_app
from gateway.broker import events_exchange_name
from gateway.lifecycle import Orchestrator
from gateway.registry import ContractRegistry
from gateway.routing import parse_routing_table
from gateway.settings import Settings
from gateway.worker import connector_runtime
from tests.conftest import KeyFactory
from tests.lifecycle.test_orchestrator import TABLE, Lifecycle, documents, example, inspection, receipt
from tests.support.broker import capture, delete_routing_topology
from tests.support.payloads import headers, return_request
from tests.support.waiting import wait_until


@dataclasses.dataclass
class Desk:
    client: AsyncTestClient  # type: ignore[type-arg]
    lifecycle: Lifecycle
    requester: str
    approver: str
    second_approver: str
    rival: str

    async def submit(self, price: str = "289.50") -> str:
        payload = return_request(requested_date="2024-02-20")
        for line in payload["lines"]:
            line["unit_price"]["amount"] = price
        response = await self.client.post("/v1/returns", json=payload, headers=headers(self.requester))
        assert response.status_code == 202, response.text
        return_id: str = response.json()["id"]
        await self.lifecycle.reaches(return_id, "requested")
        await self.lifecycle.publish("return-documents.v1", documents(return_id), return_id)  # as the ERP
        return return_id

    async def decide(self, key: str, return_id: str, **body: Any) -> Any:
        return await self.client.post(
            f"/v1/returns/{return_id}/approval", json=body, headers={"Authorization": f"Bearer {key}"}
        )

    async def get(self, key: str, path: str) -> Any:
        return await self.client.get(path, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
async def desk(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    database: AsyncConnectionPool,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> AsyncIterator[Desk]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(TABLE)
    routed = dataclasses.replace(settings, routes_file=routes)
    table = parse_routing_table(TABLE)
    app = create_app(routed, registry)
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        channel = await amqp.channel(publisher_confirms=True)
        out = await capture(amqp, events_exchange_name(settings), settings.amqp_name("capture", "events"))
        runtime = connector_runtime(
            Orchestrator("lifecycle"),
            settings=routed,
            spec=table.connectors["lifecycle"],
            redis=redis,
            database=database,
        )
        await runtime.start()
        try:
            from gateway.lifecycle import LifecycleStore

            lifecycle = Lifecycle(routed, channel, LifecycleStore(database, settings), out, runtime)
            yield Desk(
                client,
                lifecycle,
                requester=await make_key(
                    lifecycle.partner, ("returns:write", "returns:read", "returns:approve")
                ),
                approver=await make_key("operations", ("returns:read", "returns:approve")),
                second_approver=await make_key("operations", ("returns:read", "returns:approve")),
                rival=await make_key("rival", ("returns:write", "returns:read", "returns:approve")),
            )
        finally:
            await runtime.stop()
            await runtime.connector.aclose()
            await delete_routing_topology(amqp, settings, TABLE)


async def test_a_high_value_return_needs_two_approvers_and_never_its_requester(desk: Desk) -> None:
    return_id = await desk.submit(price="9000.00")  # 27,000 EUR: over the two-approver threshold
    await desk.lifecycle.reaches(return_id, "pending_approval")

    queue = (await desk.get(desk.approver, "/v1/approvals")).json()["data"]
    [waiting] = [w for w in queue if w["return_id"] == return_id]
    assert waiting["rule"]["id"] == "credit-over-20000"
    assert waiting["approvers_needed"] == 2 and waiting["approvals_given"] == 0
    assert waiting["estimated_credit"] == [{"amount": "27000.00", "currency": "EUR"}]
    assert waiting["age_seconds"] >= 0 and waiting["partner"] == desk.lifecycle.partner
    assert return_id not in [
        w["return_id"] for w in (await desk.get(desk.requester, "/v1/approvals")).json()["data"]
    ]
    assert (await desk.get(desk.rival, "/v1/approvals")).json()["data"] == []

    own = await desk.decide(desk.requester, return_id, decision="approve")
    assert own.status_code == 403 and "segregation of duties" in own.json()["detail"]
    assert own.headers["content-type"].startswith("application/problem+json")
    assert (await desk.decide(desk.rival, return_id, decision="approve")).status_code == 404
    bad = await desk.decide(desk.approver, return_id, decision="maybe", mood="good")
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {"/decision", "/mood"}

    first = await desk.decide(desk.approver, return_id, decision="approve", comment="known customer")
    assert first.status_code == 202, first.text
    assert first.json()["approvals_given"] == 1 and first.json()["complete"] is False
    await wait_until(lambda: _approvals(desk, return_id, 1), within=10, what="the first approval")
    again = await desk.decide(desk.approver, return_id, decision="approve")
    assert again.status_code == 409 and "another must" in again.json()["detail"]
    assert await desk.lifecycle.status(return_id) == "pending_approval"

    second = await desk.decide(desk.second_approver, return_id, decision="approve", comment="checked")
    assert second.json()["complete"] is True
    await desk.lifecycle.reaches(return_id, "authorized")
    decisions = await desk.lifecycle.store.decisions(return_id)  # the approvals table, append-only
    assert [(d.decision, d.comment) for d in decisions] == [
        ("approve", "known customer"),
        ("approve", "checked"),
    ]
    assert len({d.approver["id"] for d in decisions}) == 2 and decisions[0].rule is not None
    decision = await desk.lifecycle.one("return-decision.v1", return_id)
    assert [a.get("comment") for a in decision["approvals"]] == ["known customer", "checked"]
    assert decision["rule"]["id"] == "credit-over-20000"
    late = await desk.decide(desk.approver, return_id, decision="reject")
    assert late.status_code == 409  # nothing waits any more
    assert not [
        w
        for w in (await desk.get(desk.approver, "/v1/approvals")).json()["data"]
        if w["return_id"] == return_id
    ]


async def _approvals(desk: Desk, return_id: str, count: int) -> bool:
    state = await desk.lifecycle.store.get(return_id)
    return state is not None and len(state.approvals) == count


async def test_a_rejection_with_a_comment_ends_the_return_and_says_why(desk: Desk) -> None:
    return_id = await desk.submit(price="2000.00")  # one approver
    await desk.lifecycle.reaches(return_id, "pending_approval")
    response = await desk.decide(
        desk.approver,
        return_id,
        decision="reject",
        comment="not our goods",
        rejection_reason="item_not_returnable",
    )
    assert response.status_code == 202 and response.json()["complete"] is True
    await desk.lifecycle.reaches(return_id, "rejected")
    rejection = await desk.lifecycle.one("return-authorization.v1", return_id)
    assert rejection["rejection_reason"] == "item_not_returnable" and rejection["notes"] == "not our goods"
    shown = (await desk.get(desk.requester, f"/v1/returns/{return_id}")).json()
    assert shown["status"] == "rejected"


async def test_the_timeline_explains_every_step_and_only_to_those_allowed(desk: Desk) -> None:
    return_id = await desk.submit()
    await desk.lifecycle.reaches(return_id, "authorized")
    response = await desk.get(desk.requester, f"/v1/returns/{return_id}/timeline")
    assert response.status_code == 200, response.text
    timeline = response.json()
    assert timeline["status"] == "authorized" and timeline["policy"]["id"] == "nordlicht-default"
    actions = [(e["action"], e.get("to_status")) for e in timeline["data"]]
    assert actions[0] == ("status_changed", "requested")
    assert ("documents_checked", None) in actions and actions[-1] == ("status_changed", "authorized")
    authorized = timeline["data"][-1]
    assert authorized["rule"] == {"id": "auto-authorize", "version": timeline["policy"]["version"]}
    assert authorized["actor"] == {"type": "system", "id": "lifecycle"} and authorized["message_id"]
    assert [e["at"] for e in timeline["data"]] == sorted(e["at"] for e in timeline["data"])
    assert (await desk.get(desk.approver, f"/v1/returns/{return_id}/timeline")).status_code == 200
    assert (await desk.get(desk.rival, f"/v1/returns/{return_id}/timeline")).status_code == 404
    for method in ("put", "patch", "delete", "post"):
        attempt = await getattr(desk.client, method)(
            f"/v1/returns/{return_id}/timeline", headers={"Authorization": f"Bearer {desk.requester}"}
        )
        assert attempt.status_code == 405, method


async def test_receipts_and_inspections_from_a_portal_are_validated_idempotent_and_move_the_return(
    desk: Desk,
) -> None:
    return_id = await desk.submit()
    await desk.lifecycle.reaches(return_id, "authorized")
    body = receipt(return_id)
    del body["return_id"]  # the path names the return
    key = uuid.uuid4().hex
    first = await desk.client.post(
        f"/v1/returns/{return_id}/receipts", json=body, headers=headers(desk.requester, key)
    )
    assert first.status_code == 202, first.text
    again = await desk.client.post(
        f"/v1/returns/{return_id}/receipts", json=body, headers=headers(desk.requester, key)
    )
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    changed = dict(body, site="DC-MUC")
    reused = await desk.client.post(
        f"/v1/returns/{return_id}/receipts", json=changed, headers=headers(desk.requester, key)
    )
    assert reused.status_code == 422
    await desk.lifecycle.reaches(return_id, "received")
    to_do = await desk.get(desk.requester, "/v1/inspections")  # the handheld's list of what to inspect
    assert to_do.status_code == 200, to_do.text
    [waiting] = [i for i in to_do.json()["data"] if i["return_id"] == return_id]
    assert (waiting["site"], waiting["rule"]["id"], waiting["overdue"]) == (
        "DC-HAM",
        "inspect-warranty",
        False,
    )
    assert waiting["task_number"] == f"INS-{return_id[4:16].upper()}"
    assert (await desk.get(desk.requester, "/v1/inspections?site=DC-MUC")).json()["data"] == []
    assert (await desk.get(desk.rival, "/v1/inspections")).json()["data"] == []  # another partner's goods

    broken = dict(inspection(return_id), inspector={"type": "robot"})
    refused = await desk.client.post(
        f"/v1/returns/{return_id}/inspections", json=broken, headers=headers(desk.requester)
    )
    assert refused.status_code == 422
    assert {e["pointer"] for e in refused.json()["errors"]} == {"/inspector/type", "/inspector/id"}
    other = dict(inspection(return_id), return_id=f"ret_{uuid.uuid4().hex}")
    assert (
        await desk.client.post(
            f"/v1/returns/{return_id}/inspections", json=other, headers=headers(desk.requester)
        )
    ).status_code == 422
    assert (
        await desk.client.post(
            f"/v1/returns/{return_id}/inspections", json=inspection(return_id), headers=headers(desk.rival)
        )
    ).status_code == 404
    accepted = await desk.client.post(
        f"/v1/returns/{return_id}/inspections", json=inspection(return_id), headers=headers(desk.requester)
    )
    assert accepted.status_code == 202, accepted.text
    await desk.lifecycle.reaches(return_id, "dispositioned")
    assert (await desk.get(desk.requester, "/v1/inspections")).json()["data"] == []
    assert (await desk.lifecycle.one("credit-memo.v1", return_id))["document_status"] == "draft"
    assert example("receipt", "ssd-received-into-quarantine")["receipt_number"] in {
        d.get("number") for e in await desk.lifecycle.store.timeline(return_id) for d in e.documents
    }


async def _post(desk: Desk, key: str, path: str, body: Any) -> Any:
    return await desk.client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})


async def test_a_held_return_waits_with_its_events_until_a_person_releases_it(desk: Desk) -> None:
    return_id = await desk.submit()
    await desk.lifecycle.reaches(return_id, "authorized")
    hold = f"/v1/returns/{return_id}/hold"
    own = await _post(desk, desk.requester, hold, {"reason": "mine"})
    assert own.status_code == 403 and "segregation of duties" in own.json()["detail"]
    assert (await _post(desk, desk.rival, hold, {"reason": "not mine"})).status_code == 404
    unexplained = await _post(desk, desk.approver, hold, {"invoice_reference": {"number": "1"}})
    assert unexplained.status_code == 422
    assert {e["pointer"] for e in unexplained.json()["errors"]} >= {"/reason", "/invoice_reference"}
    early = await _post(desk, desk.approver, f"/v1/returns/{return_id}/release", {})
    assert early.status_code == 409  # nothing is held

    held = await _post(desk, desk.approver, hold, {"reason": "same serials returned twice: fraud review"})
    assert held.status_code == 202, held.text
    await desk.lifecycle.reaches(return_id, "on_hold")
    assert (await _post(desk, desk.approver, hold, {"reason": "again"})).status_code == 409
    [listed] = [
        h for h in (await desk.get(desk.approver, "/v1/holds")).json()["data"] if h["return_id"] == return_id
    ]
    assert listed["reason"].startswith("same serials") and listed["resumes_at"] == "authorized"
    assert listed["needs_invoice"] is False and listed["held_by"]["type"] == "user"
    assert (await desk.get(desk.rival, "/v1/holds")).json()["data"] == []

    await desk.lifecycle.publish("receipt.v1", receipt(return_id), return_id)  # the goods arrive meanwhile
    await wait_until(lambda: _waiting_events(desk, return_id), within=10, what="the receipt to wait")
    assert await desk.lifecycle.status(return_id) == "on_hold"

    stray = await _post(
        desk, desk.approver, f"/v1/returns/{return_id}/release", {"invoice_reference": {"number": "90031877"}}
    )
    assert stray.status_code == 422  # no credit waits for an invoice here
    assert [e["pointer"] for e in stray.json()["errors"]] == ["/invoice_reference"]
    released = await _post(desk, desk.approver, f"/v1/returns/{return_id}/release", {"reason": "cleared"})
    assert released.status_code == 202, released.text
    await desk.lifecycle.reaches(return_id, "received")  # back to authorized, then the waiting receipt
    statuses = await desk.lifecycle.statuses(return_id)
    assert statuses[-3:] == ["on_hold", "authorized", "received"]
    assert [
        h for h in (await desk.get(desk.approver, "/v1/holds")).json()["data"] if h["return_id"] == return_id
    ] == []


async def _waiting_events(desk: Desk, return_id: str) -> bool:
    state = await desk.lifecycle.store.get(return_id)
    return state is not None and bool(state.parked)


async def test_a_credit_without_an_invoice_is_held_until_released_with_one(desk: Desk) -> None:
    payload = return_request(requested_date="2024-02-20")
    del payload["references"]["invoice"]
    response = await desk.client.post("/v1/returns", json=payload, headers=headers(desk.requester))
    assert response.status_code == 202, response.text
    return_id = response.json()["id"]
    await desk.lifecycle.reaches(return_id, "requested")
    facts = documents(return_id)
    facts["documents"][0].update(kind="shipment", number="80071234")  # the ERP knows the shipment only
    await desk.lifecycle.publish("return-documents.v1", facts, return_id)
    await desk.lifecycle.reaches(return_id, "authorized")
    await desk.lifecycle.publish("receipt.v1", receipt(return_id), return_id)
    await desk.lifecycle.publish("inspection-result.v1", inspection(return_id), return_id)
    await desk.lifecycle.reaches(return_id, "on_hold")
    [listed] = [
        h for h in (await desk.get(desk.approver, "/v1/holds")).json()["data"] if h["return_id"] == return_id
    ]
    assert listed["needs_invoice"] is True and listed["resumes_at"] == "dispositioned"
    assert listed["held_by"] == {"type": "system", "id": "lifecycle"}

    release = f"/v1/returns/{return_id}/release"
    without = await _post(desk, desk.approver, release, {"reason": "go on"})
    assert without.status_code == 422
    assert [e["pointer"] for e in without.json()["errors"]] == ["/invoice_reference"]
    given = await _post(desk, desk.approver, release, {"invoice_reference": {"number": "90031877"}})
    assert given.status_code == 202, given.text
    await desk.lifecycle.reaches(return_id, "dispositioned")
    draft = await desk.lifecycle.one("credit-memo.v1", return_id)
    assert draft["invoice_reference"] == {"number": "90031877"} and draft["document_status"] == "draft"


async def test_the_approvals_list_reads_the_shared_queue_page_by_page(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.api.lifecycle as listing

    monkeypatch.setattr(listing, "QUEUE_PAGE", 1)  # one entry per Redis read: every page must be read
    first, second = await desk.submit(price="2000.00"), await desk.submit(price="2000.00")
    for return_id in (first, second):
        await desk.lifecycle.reaches(return_id, "pending_approval")
    listed = [w["return_id"] for w in (await desk.get(desk.approver, "/v1/approvals")).json()["data"]]
    assert first in listed and second in listed and listed.index(first) < listed.index(second)


async def test_json_nested_too_deep_is_a_400_on_approvals_and_holds(desk: Desk) -> None:
    return_id = await desk.submit(price="9000.00")
    await desk.lifecycle.reaches(return_id, "pending_approval")
    person = {"Authorization": f"Bearer {desk.approver}", "Content-Type": "application/json"}
    for action in ("approval", "hold", "release"):
        for body in (b"[" * 1000, b'{"comment":' + b"[" * 100 + b"]" * 100 + b"}"):
            response = await desk.client.post(
                f"/v1/returns/{return_id}/{action}", content=body, headers=person
            )
            assert response.status_code == 400, (action, response.text)
            assert response.json()["type"] == "urn:returns-gateway:problem:malformed-request"


async def test_a_hold_with_a_thousand_stray_fields_lists_fifty_and_counts_them_all(desk: Desk) -> None:
    return_id = await desk.submit()
    await desk.lifecycle.reaches(return_id, "authorized")
    body = {f"{n:04d}" + "x" * 1000: n for n in range(1000)}
    refused = await _post(desk, desk.approver, f"/v1/returns/{return_id}/hold", body)
    assert refused.status_code == 422, refused.text[:500]
    assert len(refused.content) < 64 * 1024
    problem = refused.json()
    assert len(problem["errors"]) == 50
    assert problem["total_violations"] == 1001 and problem["total_violations_exact"] is True  # and no reason
    assert all(len(e["pointer"]) <= 81 for e in problem["errors"])
