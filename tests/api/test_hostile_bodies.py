"""Hostile bodies on the real broker and Redis: a huge refusal is explained within bounds and
off the event loop, and JSON nested too deep is a 400, never a 500."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from gateway.errors import LISTED_VIOLATIONS, ContractViolation, Violation
from gateway.intake.payloads import INLINE_BYTES, MAX_DEPTH, REST_FACTOR, ContractChecks, nesting_depth
from gateway.registry import COUNTED_VIOLATIONS
from gateway.settings import Settings
from tests.conftest import AMQP_URL, REDIS_URL, Gateway, KeyFactory
from tests.support.payloads import headers, return_request
from tests.support.server import running_gateway

MALFORMED = "urn:returns-gateway:problem:malformed-request"


def empty_lines(count: int) -> bytes:
    """A ``return-request`` of ``count`` empty lines and nothing else (three bytes a line)."""
    return b'{"lines":[' + b",".join([b"{}"] * count) + b"]}"


def dense_lines() -> bytes:
    """500 lines (the contract's maximum), each with every field wrong: far more violations
    than are counted, and a few hundred milliseconds of explaining."""
    line = (
        b'{"line_number":"one","sku":5,"quantity":"q","unit_of_measure":1,"unit_price":3,'
        b'"serial_numbers":[' + b",".join([b"1"] * 30) + b'],"unexpected":1}'
    )
    return b'{"lines":[' + b",".join([line] * 500) + b"]}"


async def test_a_huge_refused_body_gets_a_bounded_answer_quickly(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    key = await make_key()
    body = empty_lines(100_000)  # 300 KB
    started = time.monotonic()
    response = await gateway.client.post("/v1/returns", content=body, headers=headers(key))
    elapsed = time.monotonic() - started
    assert response.status_code == 422, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    assert len(response.content) < 64 * 1024
    assert elapsed < 5, f"{elapsed:.1f}s to refuse {len(body)} bytes"
    problem = response.json()
    assert problem["type"] == "urn:returns-gateway:problem:contract-violation"
    # 6 missing top-level fields and the array too long: lines past the maximum are not
    # explained one by one (nor are the first 500: the client must cut the array first).
    assert len(problem["errors"]) == problem["total_violations"] == 7
    assert problem["total_violations_exact"] is True
    assert problem["detail"] == "7 violation(s) of return-request v1"
    assert {
        "pointer": "/lines",
        "detail": "has 100000 items, more than the 500 allowed",
        "keyword": "maxItems",
    } in (problem["errors"])
    assert all(len(e["detail"]) <= 400 for e in problem["errors"])


async def test_past_the_counting_ceiling_the_total_is_a_lower_bound(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    key = await make_key()
    response = await gateway.client.post("/v1/returns", content=dense_lines(), headers=headers(key))
    assert response.status_code == 422, response.text[:500]
    assert len(response.content) < 64 * 1024
    problem = response.json()
    assert len(problem["errors"]) == LISTED_VIOLATIONS
    assert problem["total_violations"] == COUNTED_VIOLATIONS and problem["total_violations_exact"] is False
    assert problem["detail"] == f"at least {COUNTED_VIOLATIONS} violation(s) of return-request v1"


async def test_offending_values_are_quoted_as_excerpts(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key()
    long_key, long_value = "k" * 20_000, "x" * 200_000
    payload = return_request(external_id=long_value, **{long_key: 1})
    payload["lines"][0]["sku"] = long_value
    payload["lines"][0][long_key] = True
    response = await gateway.client.post("/v1/returns", json=payload, headers=headers(key))
    assert response.status_code == 422, response.text[:500]
    assert len(response.content) < 4096
    problem = response.json()
    assert problem["total_violations"] == len(problem["errors"]) == 4  # two too long, two not allowed
    for error in problem["errors"]:
        assert "x" * 81 not in error["detail"] and "k" * 81 not in error["detail"] + error["pointer"]
    pointers = {e["pointer"] for e in problem["errors"]}
    assert {"/external_id", "/lines/0/sku", "/" + "k" * 79 + "…", "/lines/0/" + "k" * 79 + "…"} == pointers


async def test_liveness_answers_while_huge_refusals_are_being_explained(
    settings: Settings, make_key: KeyFactory, amqp: AbstractRobustConnection
) -> None:
    """A real server (the test client runs one request at a time): two refusals that each take
    a few hundred milliseconds to explain (one after the other, each followed by the large-body
    lane's rest), and liveness probes sent meanwhile."""
    key = await make_key()
    env = {"RGW_NAMESPACE": settings.namespace, "RGW_AMQP_URL": AMQP_URL, "RGW_REDIS_URL": REDIS_URL}
    body = dense_lines()
    with running_gateway(env) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            hostile = [
                asyncio.create_task(client.post("/v1/returns", content=body, headers=headers(key)))
                for _ in range(2)
            ]
            latencies: list[float] = []
            started = time.monotonic()
            while not all(task.done() for task in hostile):
                sent = time.monotonic()
                live = await client.get("/health/live", timeout=10)
                latencies.append(time.monotonic() - sent)
                assert live.status_code == 200
            window = time.monotonic() - started
            assert [(await task).status_code for task in hostile] == [422] * 2
    assert len(latencies) >= 20, f"liveness answered {len(latencies)} times in {window:.2f}s"
    # Explained on the event loop, a probe would wait for whole explanations; in a worker thread
    # it answers within a few switches of the GIL. The machine is shared: judge nine probes in
    # ten, and every one by a deadline.
    latencies.sort()
    assert latencies[len(latencies) * 9 // 10] < 0.1, (latencies[-5:], window)
    assert latencies[-1] < 1.0, (latencies[-5:], window)


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        (b"[" * 1000, MALFORMED),  # 1 KB, never closed
        (deep(1000), MALFORMED),
        (b'{"lines":' + deep(MAX_DEPTH) + b"}", MALFORMED),  # one level too deep
        (
            b'{"notes":"' + b"[" * 1000 + b'"}',
            "urn:returns-gateway:problem:contract-violation",
        ),  # in a string
        (b'{"lines":' + deep(MAX_DEPTH - 1) + b"}", "urn:returns-gateway:problem:contract-violation"),
    ],
    ids=["unclosed", "closed", "one-too-deep", "brackets-in-a-string", "deepest-allowed"],
)
async def test_json_nested_too_deep_is_a_400_on_return_requests(
    gateway: Gateway, make_key: KeyFactory, body: bytes, slug: str
) -> None:
    key = await make_key()
    response = await gateway.client.post("/v1/returns", content=body, headers=headers(key))
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == slug, response.text
    if slug == MALFORMED:
        assert response.status_code == 400
        assert f"deeper than {MAX_DEPTH} levels" in response.json()["detail"]


@pytest.mark.parametrize("event", ["receipts", "inspections"])
async def test_json_nested_too_deep_is_a_400_on_return_events(
    gateway: Gateway, make_key: KeyFactory, event: str
) -> None:
    key = await make_key()
    accepted = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert accepted.status_code == 202, accepted.text
    path = f"/v1/returns/{accepted.json()['id']}/{event}"
    for body in (b"[" * 1000, deep(1000), b'{"lines":' + deep(100) + b"}"):
        response = await gateway.client.post(path, content=body, headers=headers(key))
        assert response.status_code == 400, response.text
        assert response.json()["type"] == MALFORMED


async def test_json_nested_too_deep_is_a_400_on_admin_and_endpoint_bodies(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    admin = {
        "Authorization": f"Bearer {await make_key('ops', ('admin',))}",
        "Content-Type": "application/json",
    }
    manager = {
        "Authorization": f"Bearer {await make_key('acme', ('webhooks:manage',))}",
        "Content-Type": "application/json",
    }
    calls = [
        ("/v1/admin/dead-letters/erp/msg_1/replay", admin, b'{"payload":' + b"[" * 1000 + b"}"),
        ("/v1/admin/dead-letters/erp/msg_1/replay", admin, b'{"payload":' + deep(200) + b"}"),
        ("/v1/admin/dead-letters/erp/replay", admin, b'{"note":' + deep(1000) + b"}"),
        ("/v1/admin/dead-letters/erp/msg_1/discard", admin, b'{"reason":' + deep(1000) + b"}"),
        ("/v1/webhook-endpoints", manager, b'{"url":' + deep(1000) + b"}"),
    ]
    for path, request_headers, body in calls:
        response = await gateway.client.post(path, content=body, headers=request_headers)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["type"] == MALFORMED


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"{}", 1),
        (b'{"a":[1,{"b":[]}],"c":{}}', 4),
        (b'["[[[[", "\\"[[", {"x": "]]]"}]', 2),
        (b"[" * 70, 70),
        (b'{"lines":[' + b",".join([b"{}"] * 1000) + b"]}", 3),
        (b"[" + b",".join([deep(9)] * 1000) + b"]", 10),
    ],
)
def test_nesting_depth_ignores_strings_and_counts_every_level(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth


async def test_after_a_large_refusal_the_lane_rests_while_ordinary_bodies_pass() -> None:
    checks = ContractChecks()
    large, small = INLINE_BYTES + 1, 1_000
    seen: list[str] = []
    started = time.monotonic()

    async def refused_large() -> None:
        with pytest.raises(ContractViolation):
            async with checks.admitted(large):
                seen.append("large refused: in")
                await asyncio.sleep(0.05)  # the work of reading and checking it
                raise ContractViolation("1 violation(s)", [Violation("", "no")])
        seen.append("large refused: answered")

    async def then(size: int, name: str) -> float:
        await asyncio.sleep(0.01)  # after the refused one took the lane
        async with checks.admitted(size):
            seen.append(f"{name}: in")
            return time.monotonic() - started

    _, small_in, large_in = await asyncio.gather(refused_large(), then(small, "small"), then(large, "large"))
    assert seen[:2] == ["large refused: in", "small: in"]  # the ordinary body went by during the rest
    assert small_in < 0.05 * REST_FACTOR  # never waited for the lane
    assert large_in >= 0.05 * (1 + REST_FACTOR)  # waited for the work and the rest
