"""A 5xx tells the partner to retry, never what failed inside: no exception text, host or port
in the problem; the log keeps it under the trace id the problem carries."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient

from gateway.api import create_app
from gateway.registry import ContractRegistry
from gateway.sdk import Connector, Emitted, Inbound, Receiver, WebhookRejected
from gateway.settings import Settings
from tests.conftest import KeyFactory
from tests.support.broker import delete_routing_topology
from tests.support.payloads import headers, return_request
from tests.support.server import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
LOOKUP_FAILED = (
    "cannot read shipment shp_1: Cannot connect to host 127.0.0.1:9003 ssl:default "
    "[Connect call failed ('127.0.0.1', 9003)]"
)
TABLE = """
connectors:
  carrier:
    use: tests.api.test_problem_details:CarrierLookupDown
routes:
  - {id: tracking, message: tracking-event.v1, to: [carrier]}
"""


class CarrierLookupDown(Connector, Receiver):
    """A carrier whose webhook needs a lookup in the carrier's API, which cannot be reached."""

    async def receive(self, inbound: Inbound) -> Sequence[Emitted]:
        raise WebhookRejected(503, LOOKUP_FAILED)


class Logged(logging.Handler):
    """What the gateway logs, kept (litestar's logging set-up replaces the root's handlers,
    pytest's among them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def about(self, trace_id: str) -> str:
        return "\n".join(m for m in self.messages if trace_id in m)


@pytest.fixture
def logged() -> Iterator[Logged]:
    handler = Logged()
    logger = logging.getLogger("gateway")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_a_webhook_whose_lookup_fails_answers_503_without_the_address(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    amqp: AbstractRobustConnection,
    logged: Logged,
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(TABLE)
    app = create_app(dataclasses.replace(settings, routes_file=routes), registry)
    try:
        async with AsyncTestClient(app) as client:
            response = await client.post(
                "/v1/webhooks/carrier", content=b"{}", headers={"traceparent": TRACEPARENT}
            )
    finally:
        await delete_routing_topology(amqp, settings, TABLE)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "30"
    problem = response.json()
    assert problem["type"] == "urn:returns-gateway:problem:service-unavailable"
    assert problem["detail"] == "a system the gateway depends on could not be reached; retry later"
    for internal in ("127.0.0.1", "9003", "Cannot connect", "shp_1", "carrier:"):
        assert internal not in response.text
    assert problem["trace_id"] == TRACE_ID
    assert LOOKUP_FAILED in logged.about(TRACE_ID)


async def test_redis_down_answers_503_without_its_error_text(
    settings: Settings,
    registry: ContractRegistry,
    amqp: AbstractRobustConnection,
    logged: Logged,
    make_key: KeyFactory,
) -> None:
    key = await make_key()  # keys are PostgreSQL's: the request reaches its first Redis call
    port = free_port()
    unreachable = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{port}/0")
    async with AsyncTestClient(create_app(unreachable, registry)) as client:
        response = await client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    for internal in ("127.0.0.1", str(port), "Redis", "Error", "connect"):
        assert internal not in problem["detail"]
    assert str(port) not in response.text
    assert len(problem["trace_id"]) == 32
    assert str(port) in logged.about(problem["trace_id"])  # the operator still sees where
