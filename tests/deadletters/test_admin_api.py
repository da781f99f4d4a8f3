"""The admin API's dead-letter desk on the real broker and Redis: browse, replay, correct, discard."""

from __future__ import annotations

import msgspec
import pytest

from gateway.broker.headers import (
    ATTEMPT,
    DEAD_REASON,
    FAILURE_HEADERS,
    FIRST_FAILURE,
    LAST_ERROR,
    REPLAY_OF,
    REPLAYED_AT,
)
from gateway.deadletters import corrected_message_id
from tests.conftest import Gateway, KeyFactory
from tests.deadletters.conftest import Desk, envelope
from tests.support.payloads import return_request

BASE = "/v1/admin/dead-letters"


async def test_list_shows_each_reason_and_the_depth_and_takes_nothing(desk: Desk) -> None:
    first = await desk.dead.publish("records", attempts=4)
    second = await desk.dead.publish(
        "records", error="RetryableDeliveryFailure", detail="503 from target", status_code=503
    )
    poison = await desk.dead.poison("records")

    for _ in range(2):  # browsing twice sees the same queue: nothing was taken, nothing reordered
        response = await desk.client.get(BASE, params={"connector": "records"}, headers=desk.admin)
        assert response.status_code == 200, response.text
        (queue,) = response.json()["data"]
        assert queue["connector"] == "records" and queue["depth"] == 3
        listed = queue["dead_letters"]
        assert [d["message_id"] for d in listed] == [
            first["message_id"],
            second["message_id"],
            poison["message_id"],
        ]
        assert [d["position"] for d in listed] == [0, 1, 2]
    assert await desk.dead.depth(desk.dead.dlq("records")) == 3

    runtime = listed[0]
    assert runtime["dead_lettered_by"] == "runtime"
    assert runtime["message_type"] == "return-request.v1" and runtime["partner"] == "acme"
    assert runtime["correlation_id"] == first["correlation_id"]
    assert runtime["reason"] == {
        "connector": "records",
        "error": "PermanentDeliveryFailure",
        "detail": "target answered 422: unknown SKU",
        "status_code": 422,
        "attempts": 4,
        "first_failure_at": "2026-11-23T10:00:01+00:00",
        "last_failure_at": "2026-11-23T10:05:00+00:00",
    }
    assert listed[1]["reason"]["error"] == "RetryableDeliveryFailure"

    broker = listed[2]  # no x-rgw-dead-reason: synthesized from x-death
    assert broker["dead_lettered_by"] == "broker"
    reason = broker["reason"]
    assert reason["connector"] == "records" and reason["error"] == "DeliveryLimitExceeded"
    assert reason["attempts"] == 2  # delivery_limit 1: delivered twice, then dead-lettered
    assert "delivery limit" in reason["detail"] and reason["status_code"] is None
    assert reason["first_failure_at"] and reason["first_failure_at"] == reason["last_failure_at"]


async def test_list_every_connector_with_its_depth_and_a_limit(desk: Desk) -> None:
    for _ in range(3):
        await desk.dead.publish("records")
    response = await desk.client.get(BASE, params={"limit": 2}, headers=desk.admin)
    assert response.status_code == 200, response.text
    by_connector = {q["connector"]: q for q in response.json()["data"]}
    assert sorted(by_connector) == ["crm", "records"]
    assert by_connector["records"]["depth"] == 3 and len(by_connector["records"]["dead_letters"]) == 2
    assert by_connector["crm"] == {
        "connector": "crm",
        "queue": desk.dead.dlq("crm"),
        "depth": 0,
        "dead_letters": [],
    }
    assert await desk.dead.depth(desk.dead.dlq("records")) == 3


async def test_show_gives_envelope_headers_and_reason_and_takes_nothing(desk: Desk) -> None:
    await desk.dead.publish("records")
    env = await desk.dead.publish("records", detail="mapping failed: no plant for DE")
    response = await desk.client.get(f"{BASE}/records/{env['message_id']}", headers=desk.admin)
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["connector"] == "records" and shown["message_id"] == env["message_id"]
    assert shown["position"] == 1
    assert shown["envelope"] == env and shown["body"] is None
    assert shown["reason"]["detail"] == "mapping failed: no plant for DE"
    assert (
        shown["headers"][ATTEMPT] == 3 and shown["headers"][LAST_ERROR] == "mapping failed: no plant for DE"
    )
    assert msgspec.json.decode(shown["headers"][DEAD_REASON])["error"] == "PermanentDeliveryFailure"
    assert shown["properties"]["message_id"] == env["message_id"]
    assert "x-delivery-count" not in shown["headers"]  # on a dead-letter queue it only counts browses
    assert shown["properties"]["type"] == "return-request.v1"
    assert await desk.dead.depth(desk.dead.dlq("records")) == 2


async def test_unknown_connector_or_message_is_404_and_changes_nothing(desk: Desk) -> None:
    env = await desk.dead.publish("records")
    for method, path, body in [
        ("GET", f"{BASE}?connector=nope", None),
        ("GET", f"{BASE}/nope/{env['message_id']}", None),
        ("POST", f"{BASE}/nope/{env['message_id']}/replay", None),
        ("POST", f"{BASE}/nope/replay", None),
        ("POST", f"{BASE}/nope/{env['message_id']}/discard", {"reason": "x"}),
    ]:
        response = await desk.client.request(method, path, json=body, headers=desk.admin)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:returns-gateway:problem:unknown-connector"
    for method, path, body in [
        ("GET", f"{BASE}/records/msg_missing", None),
        ("POST", f"{BASE}/records/msg_missing/replay", None),
        ("POST", f"{BASE}/records/msg_missing/discard", {"reason": "x"}),
    ]:
        response = await desk.client.request(method, path, json=body, headers=desk.admin)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["type"] == "urn:returns-gateway:problem:dead-letter-not-found"
    assert await desk.dead.depth(desk.dead.dlq("records")) == 1
    assert await desk.dead.drain(desk.dead.queue("records")) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", BASE),
        ("GET", f"{BASE}/records/msg_x"),
        ("POST", f"{BASE}/records/msg_x/replay"),
        ("POST", f"{BASE}/records/replay"),
        ("POST", f"{BASE}/records/msg_x/discard"),
        ("GET", "/v1/admin/audit"),
    ],
)
async def test_every_route_needs_an_admin_key(
    desk: Desk, make_key: KeyFactory, method: str, path: str
) -> None:
    anonymous = await desk.client.request(method, path, json={"reason": "x"})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    partner = await make_key("acme", scopes=("returns:write", "returns:read"))
    forbidden = await desk.client.request(
        method, path, json={"reason": "x"}, headers={"Authorization": f"Bearer {partner}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["type"] == "urn:returns-gateway:problem:permission-denied"


async def test_replay_puts_one_copy_on_that_connector_alone_with_failures_reset(desk: Desk) -> None:
    kept = await desk.dead.publish("records")
    env = await desk.dead.publish("records")
    response = await desk.client.post(
        f"{BASE}/records/{env['message_id']}/replay", json={"note": "ERP fixed"}, headers=desk.admin
    )
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["message_id"] == result["replayed_as"] == env["message_id"]
    assert result["payload_corrected"] is False and result["connector"] == "records"

    (copy,) = await desk.dead.drain(desk.dead.queue("records"))
    assert msgspec.json.decode(copy.body) == env
    assert copy.message_id == env["message_id"] and copy.correlation_id == env["correlation_id"]
    headers = dict(copy.headers or {})
    assert headers.pop("x-delivery-count") == 0  # the quorum queue's own count, fresh
    assert not set(headers) & {*FAILURE_HEADERS, DEAD_REASON, ATTEMPT, FIRST_FAILURE, LAST_ERROR}
    assert headers[REPLAY_OF] == env["message_id"] and headers[REPLAYED_AT]
    assert headers["x-contract"] == "return-request"  # everything else kept
    assert await desk.dead.drain(desk.dead.queue("crm")) == []  # only the connector named

    listed = await desk.client.get(BASE, params={"connector": "records"}, headers=desk.admin)
    (queue,) = listed.json()["data"]
    assert queue["depth"] == 1 and [d["message_id"] for d in queue["dead_letters"]] == [kept["message_id"]]


async def test_replaying_a_broker_dead_letter_drops_the_brokers_bookkeeping(desk: Desk) -> None:
    env = await desk.dead.poison("records")
    response = await desk.client.post(f"{BASE}/records/{env['message_id']}/replay", headers=desk.admin)
    assert response.status_code == 202, response.text
    (copy,) = await desk.dead.drain(desk.dead.queue("records"))
    assert not [h for h in copy.headers or {} if h.startswith(("x-death", "x-first-death", "x-last-death"))]
    assert await desk.dead.depth(desk.dead.dlq("records")) == 0


async def test_invalid_correction_is_refused_with_pointers_and_nothing_changes(desk: Desk) -> None:
    env = await desk.dead.publish("records")
    payload = return_request()
    payload["lines"][0]["quantity"] = -1
    del payload["customer"]
    response = await desk.client.post(
        f"{BASE}/records/{env['message_id']}/replay", json={"payload": payload}, headers=desk.admin
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:returns-gateway:problem:contract-violation"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert {"/lines/0/quantity", "/customer"} <= pointers

    assert await desk.dead.drain(desk.dead.queue("records")) == []
    shown = await desk.client.get(f"{BASE}/records/{env['message_id']}", headers=desk.admin)
    assert shown.status_code == 200 and shown.json()["envelope"] == env
    audit = await desk.client.get("/v1/admin/audit", headers=desk.admin)
    assert audit.json()["data"] == []


async def test_correction_goes_out_under_a_deterministic_new_message_id(desk: Desk) -> None:
    env = envelope()
    # The same message dead-lettered twice (a crash between the dead-letter publish and the ack).
    await desk.dead.publish("records", env)
    await desk.dead.publish("records", env)
    corrected = {**env["payload"], "notes": "unit price corrected by ops"}
    corrected["lines"][0]["unit_price"] = {"amount": "279.50", "currency": "EUR"}

    answers = []
    for _ in range(2):
        response = await desk.client.post(
            f"{BASE}/records/{env['message_id']}/replay",
            json={"payload": corrected, "note": "price fix"},
            headers=desk.admin,
        )
        assert response.status_code == 202, response.text
        answers.append(response.json())
    new_id = answers[0]["replayed_as"]
    assert answers[1]["replayed_as"] == new_id  # the same correction twice: one id, deduplicated downstream
    assert new_id != env["message_id"] and new_id.startswith(env["message_id"])
    assert new_id == corrected_message_id(env["message_id"], corrected)
    assert corrected_message_id(env["message_id"], {**corrected, "notes": "other"}) != new_id
    assert answers[0]["payload_corrected"] is True

    copies = await desk.dead.drain(desk.dead.queue("records"))
    assert len(copies) == 2
    for copy in copies:
        body = msgspec.json.decode(copy.body)
        assert body["message_id"] == copy.message_id == new_id
        assert body["payload"] == corrected
        assert {k: v for k, v in body.items() if k not in {"message_id", "payload"}} == {
            k: v for k, v in env.items() if k not in {"message_id", "payload"}
        }
        assert (copy.headers or {})[REPLAY_OF] == env["message_id"]
    assert await desk.dead.depth(desk.dead.dlq("records")) == 0


async def test_discard_needs_a_reason_then_removes_it_and_everything_is_audited(desk: Desk) -> None:
    replayed = await desk.dead.publish("records")
    env = await desk.dead.publish("records")
    path = f"{BASE}/records/{env['message_id']}/discard"
    for body in (None, {}, {"reason": ""}, {"reason": "   "}):
        response = await desk.client.post(path, json=body, headers=desk.admin)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert await desk.dead.depth(desk.dead.dlq("records")) == 2

    replay = await desk.client.post(
        f"{BASE}/records/{replayed['message_id']}/replay", json={"note": "target back"}, headers=desk.admin
    )
    assert replay.status_code == 202
    response = await desk.client.post(
        path, json={"reason": "duplicate RMA, credited by hand"}, headers=desk.admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["message_id"] == env["message_id"]
    assert await desk.dead.depth(desk.dead.dlq("records")) == 0
    assert (
        await desk.client.get(f"{BASE}/records/{env['message_id']}", headers=desk.admin)
    ).status_code == 404

    audit = await desk.client.get("/v1/admin/audit", params={"limit": 10}, headers=desk.admin)
    assert audit.status_code == 200, audit.text
    discard, replay_entry = audit.json()["data"]  # newest first
    actor = f"key:{desk.admin_key_id}"
    assert discard["action"] == "discard" and discard["actor"] == actor
    assert discard["message_id"] == env["message_id"] and discard["connector"] == "records"
    assert discard["reason"] == "duplicate RMA, credited by hand" and discard["replayed_as"] is None
    assert replay_entry["action"] == "replay" and replay_entry["actor"] == actor
    assert replay_entry["message_id"] == replay_entry["replayed_as"] == replayed["message_id"]
    assert replay_entry["note"] == "target back" and replay_entry["payload_corrected"] is False
    assert replay_entry["at"] <= discard["at"]


async def test_bulk_replay_answers_counts(desk: Desk) -> None:
    sent = [await desk.dead.publish("records") for _ in range(3)]
    response = await desk.client.post(f"{BASE}/records/replay", json={"note": "all"}, headers=desk.admin)
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["depth_at_start"] == result["replayed"] == 3
    assert result["message_ids"] == [e["message_id"] for e in sent]
    copies = await desk.dead.drain(desk.dead.queue("records"))
    assert [c.message_id for c in copies] == result["message_ids"]


async def test_without_a_routing_table_nothing_is_listed_and_a_connector_is_unknown(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    admin = {"Authorization": f"Bearer {await make_key('ops', scopes=('admin',))}"}
    listed = await gateway.client.get(BASE, headers=admin)
    assert listed.status_code == 200 and listed.json() == {"object": "list", "data": []}
    shown = await gateway.client.get(f"{BASE}/records/msg_x", headers=admin)
    assert shown.status_code == 404
    assert shown.json()["type"] == "urn:returns-gateway:problem:unknown-connector"
