"""Generated hostile input against every route a partner or a system can reach, on the real
broker and Redis: whatever the body, type, encoding or headers, the answer is a 4xx
problem+json, never a 5xx, and nothing reaches the broker for a refused request."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection

from gateway.broker import events_exchange_name
from tests.conftest import Gateway, KeyFactory
from tests.support.broker import CapturedQueue, capture
from tests.support.payloads import headers, return_request
from tests.support.waiting import wait_until

SCOPES = ("returns:write", "returns:read", "returns:approve", "webhooks:manage")

RAW_BODIES = [
    b"",
    b"\xff\xfe{}",  # a byte-order mark of another encoding
    b'{"external_id": "\xff\xfe"}',  # invalid UTF-8 inside a string
    b'{"a": 1,}',
    b"[" * 70 + b"]" * 70,  # one level over the limit
    b"[" * 100_000,
    b'{"a":' * 5_000,
    b'"' + b"x" * 60_000 + b'"',
    b"\x00" * 64,
    b"1e999999",
    b'{"lines": [' + b",".join([b"{}"] * 5_000) + b"]}",
]

HEADER_VARIANTS: list[dict[str, str]] = [
    {},
    {"Idempotency-Key": ""},
    {"Idempotency-Key": "k" * 300},
    {"Idempotency-Key": "a\tb"},
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/xml"},
    {"Content-Type": "application/json; charset=latin-1"},
    {"Traceparent": "garbage"},
    {"Traceparent": "x" * 600},
]


def json_value(rng: random.Random, depth: int = 0) -> object:
    """JSON of a random shape, a few levels deep: mostly the wrong types for what a route reads."""
    kind = rng.randrange(8 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 10**30, 1.5, -0.0, 1e308])
    if kind == 3:
        return "".join(rng.choice("aé😀\u0000\"\\/ \n<>'") for _ in range(rng.randrange(40)))
    if kind == 4:
        return rng.choice(["", "ret_" + "0" * 32, "2026-13-45", "NaN", "x" * 5_000])
    if kind == 5:
        return {}
    if kind == 6:
        return [json_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ["external_id", "lines", "customer", "quantity", "decision", "url", "reason", "", "a" * 300]
    return {rng.choice(keys): json_value(rng, depth + 1) for _ in range(rng.randrange(6))}


def hostile_cases(seed: int, count: int = 40) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` bodies and headers: every raw body once, the rest generated JSON."""
    rng = random.Random(seed)
    cases = [(body, rng.choice(HEADER_VARIANTS)) for body in RAW_BODIES]
    while len(cases) < count:
        cases.append((json.dumps(json_value(rng)).encode(), rng.choice(HEADER_VARIANTS)))
    return cases


class Routes:
    """The routes under test, with a return of the caller's to aim the per-return ones at."""

    def __init__(self, return_id: str) -> None:
        self.paths = [
            "/v1/returns",
            f"/v1/returns/{return_id}/receipts",
            f"/v1/returns/{return_id}/inspections",
            f"/v1/returns/{return_id}/approval",
            f"/v1/returns/{return_id}/hold",
            f"/v1/returns/{return_id}/release",
            "/v1/webhook-endpoints",
            "/v1/webhooks/wms",
            "/v1/webhooks/carrier",
            "/v1/edi/x12",
            "/v1/edi/edifact",
        ]


@pytest.fixture
async def target(
    gateway: Gateway, make_key: KeyFactory, amqp: AbstractRobustConnection
) -> AsyncIterator[tuple[Gateway, str, Routes, CapturedQueue, str]]:
    key = await make_key("acme", SCOPES, rate_limit=100_000)
    events = await capture(
        amqp, events_exchange_name(gateway.settings), gateway.settings.amqp_name("capture", "events")
    )
    accepted = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert accepted.status_code == 202, accepted.text
    return_id = accepted.json()["id"]
    await wait_until(lambda: len(events.messages) == 1, what="the one return accepted")
    yield gateway, key, Routes(return_id), events, return_id


def _assert_refused(response_status: int, content_type: str, text: str, what: str) -> None:
    assert 400 <= response_status < 500, f"{what}: {response_status} {text[:300]}"
    assert content_type.startswith("application/problem+json"), f"{what}: {content_type}"


@pytest.mark.parametrize("route", range(11))
async def test_any_body_on_any_route_is_a_4xx_problem_and_publishes_nothing(
    target: tuple[Gateway, str, Routes, CapturedQueue, str], route: int
) -> None:
    gateway, key, routes, events, _ = target
    path = routes.paths[route]
    seen: list[int] = []
    for body, extra in hostile_cases(seed=route):
        sent = {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex, **extra}
        response = await gateway.client.post(path, content=body, headers=sent)
        seen.append(response.status_code)
        what = f"{path} with {extra} and {body[:120]!r}"
        _assert_refused(response.status_code, response.headers.get("content-type", ""), response.text, what)
    assert seen
    assert len(events.messages) == 1  # only the return the fixture submitted


async def test_hostile_credentials_are_a_401_problem(
    target: tuple[Gateway, str, Routes, CapturedQueue, str],
) -> None:
    gateway, _, routes, events, _ = target
    garbage = [
        b"",
        b"Bearer",
        b"Bearer " + b"x" * 5_000,
        b"Basic Zm9vOmJhcg==",
        "Bearer rgw_éé".encode("latin-1"),
    ]
    for authorization in garbage:
        for path in routes.paths[:7]:
            sent = {"Authorization": authorization} if authorization else {}
            response = await gateway.client.post(path, content=b"{}", headers=sent)
            assert response.status_code == 401, f"{path} {authorization[:20]!r}: {response.status_code}"
            _assert_refused(response.status_code, response.headers["content-type"], response.text, path)
    assert len(events.messages) == 1
