"""POST /v1/returns on the real broker and Redis: accepted once, replayed, refused clearly."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from gateway.broker import events_exchange_name
from tests.conftest import Gateway, KeyFactory
from tests.support.broker import capture
from tests.support.payloads import RETURN_REQUEST, headers, return_request
from tests.support.waiting import wait_until


@pytest.fixture
async def events(gateway: Gateway, amqp):  # type: ignore[no-untyped-def]
    return await capture(
        amqp, events_exchange_name(gateway.settings), gateway.settings.amqp_name("capture", "events")
    )


async def test_accepted_return_is_published_once_with_its_envelope(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("acme")
    payload = return_request()
    response = await gateway.client.post(
        "/v1/returns",
        content=json.dumps(payload),
        headers={**headers(key), "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "requested"
    assert body["partner"] == "acme"
    assert body["external_id"] == payload["external_id"]
    assert response.headers["location"] == f"/v1/returns/{body['id']}"
    assert "idempotent-replayed" not in response.headers
    assert "request" not in body  # a receipt; the request is at the Location

    await wait_until(lambda: len(events.messages) >= 1, what="the return on the bound queue")
    message = events.messages[0]
    envelope = msgspec.json.decode(message.body)
    assert envelope["correlation_id"] == body["id"]
    assert envelope["contract"] == "return-request" and envelope["version"] == "v1"
    assert envelope["partner"] == "acme"
    assert envelope["payload"] == payload
    assert envelope["trace"]["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert message.message_id == envelope["message_id"]
    assert message.correlation_id == body["id"]
    assert message.delivery_mode == 2  # persistent
    assert message.routing_key == "return-request.v1"
    assert message.headers["x-partner"] == "acme"

    fetched = await gateway.client.get(
        body["location"] if "location" in body else response.headers["location"],
        headers={"Authorization": f"Bearer {key}"},
    )
    assert fetched.status_code == 200
    assert fetched.json() == {**body, "request": payload, "exceptions": []}
    # Nothing else arrives: exactly one message for one accepted return.
    await asyncio.sleep(0)
    assert len(events.messages) == 1


async def test_same_key_same_payload_replays_the_first_response(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key()
    request_headers = headers(key)
    payload = return_request()
    first = await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
    # Same payload, different key order and whitespace: still the same request.
    again = await gateway.client.post(
        "/v1/returns", content=json.dumps(dict(reversed(payload.items())), indent=2), headers=request_headers
    )
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    marker = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert marker.status_code == 202
    ids = await events.ids_through(marker.json()["id"])
    assert ids.count(first.json()["id"]) == 1


async def test_same_key_different_payload_is_422(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key()
    request_headers = headers(key)
    assert (
        await gateway.client.post("/v1/returns", json=return_request(), headers=request_headers)
    ).status_code == 202
    reused = await gateway.client.post("/v1/returns", json=return_request(), headers=request_headers)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"] == "urn:returns-gateway:problem:idempotency-key-reused"


async def test_keys_are_scoped_per_partner(gateway: Gateway, make_key: KeyFactory) -> None:
    acme, globex = await make_key("acme"), await make_key("globex")
    shared_key = "order-1234-return"
    a = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(acme, shared_key))
    b = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(globex, shared_key))
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


async def test_concurrent_requests_with_one_key_publish_once(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key()
    request_headers = headers(key)
    payload = return_request()
    responses = await asyncio.gather(
        *(gateway.client.post("/v1/returns", json=payload, headers=request_headers) for _ in range(12))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) >= 1
    assert set(statuses) <= {202, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 202}) == 1
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["type"] == "urn:returns-gateway:problem:idempotency-key-in-flight"
    marker = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert len(await events.ids_through(marker.json()["id"])) == 2


async def test_same_external_id_under_another_key_is_a_duplicate(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    key = await make_key()
    payload = return_request()
    first = await gateway.client.post("/v1/returns", json=payload, headers=headers(key))
    second = await gateway.client.post("/v1/returns", json=payload, headers=headers(key))
    assert first.status_code == 202
    assert second.status_code == 409
    assert second.json()["return_id"] == first.json()["id"]


@pytest.mark.parametrize("example", RETURN_REQUEST.invalid_examples, ids=lambda e: e.name)
async def test_every_invalid_example_answers_422_with_its_pointers(
    gateway: Gateway, make_key: KeyFactory, example
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key()
    response = await gateway.client.post("/v1/returns", json=example.payload, headers=headers(key))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422 and problem["type"] == "urn:returns-gateway:problem:contract-violation"
    assert {e["pointer"] for e in problem["errors"]} == set(example.expected_pointers)
    assert all(e["detail"] for e in problem["errors"])


async def test_refused_payload_does_not_burn_the_key(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key()
    request_headers = headers(key)
    bad = await gateway.client.post("/v1/returns", json={"lines": []}, headers=request_headers)
    assert bad.status_code == 422
    good = await gateway.client.post("/v1/returns", json=return_request(), headers=request_headers)
    assert good.status_code == 202


@pytest.mark.parametrize(
    ("change", "status", "slug"),
    [
        ({"content": b"{not json", "content_type": "application/json"}, 400, "malformed-request"),
        ({"content": b"\xff\xfe", "content_type": "application/json"}, 400, "malformed-request"),
        ({"content": b"{}", "content_type": "text/plain"}, 415, "unsupported-media-type"),
        ({"content": b"{}", "content_type": None}, 415, "unsupported-media-type"),
        ({"content": b" " * 2_000_000, "content_type": "application/json"}, 413, "payload-too-large"),
        ({"content": b"[1, 2]", "content_type": "application/json"}, 422, "contract-violation"),
        ({"content": b"null", "content_type": "application/json"}, 422, "contract-violation"),
    ],
)
async def test_bad_bodies_get_a_problem_never_a_500(
    gateway: Gateway, make_key: KeyFactory, change: dict, status: int, slug: str
) -> None:
    key = await make_key()
    request_headers = headers(key)
    if change["content_type"] is None:
        del request_headers["Content-Type"]
    else:
        request_headers["Content-Type"] = change["content_type"]
    response = await gateway.client.post("/v1/returns", content=change["content"], headers=request_headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:returns-gateway:problem:{slug}"


@pytest.mark.parametrize("idempotency_key", [None, "", "x" * 256, "has space"])
async def test_missing_or_invalid_idempotency_key_is_400(
    gateway: Gateway, make_key: KeyFactory, idempotency_key: str | None
) -> None:
    key = await make_key()
    request_headers = headers(key)
    if idempotency_key is None:
        del request_headers["Idempotency-Key"]
    else:
        request_headers["Idempotency-Key"] = idempotency_key
    response = await gateway.client.post("/v1/returns", json=return_request(), headers=request_headers)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
