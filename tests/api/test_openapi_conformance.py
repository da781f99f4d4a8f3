"""Schemathesis against the served OpenAPI: no 5xx for any input, every response as documented."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar.serialization import encode_json
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.api import create_app
from gateway.settings import Settings
from tests.conftest import AMQP_URL, REDIS_URL
from tests.support.server import cli, running_gateway

# X12 and EDIFACT interchanges (POST /v1/edi/x12, /v1/edi/edifact) are text, sent as they are generated.
schemathesis.serializer.alias("application/edi-x12", "text/plain")
schemathesis.serializer.alias("application/edifact", "text/plain")

# The document exactly as served at /schema/openapi.json.
schema = schemathesis.openapi.from_dict(
    msgspec.json.decode(encode_json(create_app(Settings()).openapi_schema.to_schema()))
)


@pytest.fixture(scope="module")
def live_gateway() -> Iterator[tuple[str, str]]:
    """A real gateway process in its own namespace, and an API key for it."""
    namespace = f"test{uuid.uuid4().hex[:10]}"
    env = {
        "RGW_NAMESPACE": namespace,
        "RGW_AMQP_URL": AMQP_URL,
        "RGW_REDIS_URL": REDIS_URL,
        "RGW_DEFAULT_RATE_LIMIT": "100000",
    }
    created = cli(
        env,
        "keys",
        "create",
        "--partner",
        "fuzz",
        "--scope",
        "returns:write",
        "--scope",
        "returns:read",
        "--rate-limit",
        "100000",
    )
    assert created.returncode == 0, created.stderr
    with running_gateway(env) as base_url:
        yield base_url, created.stdout.strip().splitlines()[-1]
    _cleanup(namespace)


def _cleanup(namespace: str) -> None:
    import asyncio

    import aio_pika
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{namespace}*", count=500))
    if keys:
        client.delete(*keys)
    client.close()

    async def drop_topology() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(f"{namespace}.unrouted")
            await channel.exchange_delete(f"{namespace}.events")
            await channel.exchange_delete(f"{namespace}.unrouted")

    asyncio.run(drop_topology())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case: schemathesis.Case, live_gateway: tuple[str, str]) -> None:
    base_url, key = live_gateway
    headers = {"Authorization": f"Bearer {key}"}
    if case.method == "POST" and not (case.headers or {}).get("Idempotency-Key"):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(
        base_url=base_url,
        headers=headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    # The gateway must never hang or die on fuzzed input.
    assert httpx.get(f"{base_url}/health/live", timeout=5).status_code == 200
