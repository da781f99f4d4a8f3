"""A system failing a third of its calls is not down: on the real broker and Redis, the NetSuite
connector delivers every message once through a sandbox that answers 30 % of every call (the
token grant's included) with 503 or 429, without a dead letter and without opening its circuit."""

from __future__ import annotations

import collections
import datetime as dt
import uuid
from typing import Any

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from connectors.erp.netsuite_sandbox import NetSuiteSandbox
from gateway.broker import events_exchange_name
from gateway.routing import parse_routing_table
from gateway.runtime import Outcome, build_connector, declare_topology
from gateway.sandbox import Fault, running
from gateway.settings import Settings
from gateway.worker import connector_runtime
from tests.support.broker import capture, delete_routing_topology, take_dead_letters
from tests.support.erp import decision, request
from tests.support.profiles import catalog
from tests.support.waiting import wait_until

RETURNS = 20
TABLE = """
connectors:
  erp:
    use: connectors.erp.netsuite:NetSuiteConnector
    target:
      base_url: "{base_url}"
      auth: {{type: oauth2_client_credentials, token_url: "{base_url}{token_path}",
             client_id_env: RGW_TEST_ERP_ID, client_secret_env: RGW_TEST_ERP_SECRET}}
    options: {{return_site: DC-HAM}}
    retry_delays_ms: [200, 500, 1000, 2000]
routes:
  - {{id: requests, message: return-request.v1, to: [erp]}}
  - {{id: decisions, message: return-decision.v1, to: [erp]}}
"""


def envelope(message_type: str, payload: dict[str, Any], return_id: str) -> tuple[str, bytes]:
    contract, _, version = message_type.rpartition(".")
    message_id = f"msg_{uuid.uuid4().hex}"
    body = {
        "message_id": message_id,
        "correlation_id": return_id,
        "contract": contract,
        "version": version,
        "partner": "acme",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "trace": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        "payload": payload,
    }
    return message_id, msgspec.json.encode(body)


async def test_a_third_of_every_call_failing_delivers_each_message_once_without_opening_the_circuit(
    settings: Settings,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RGW_TEST_ERP_ID", "sandbox-client")
    monkeypatch.setenv("RGW_TEST_ERP_SECRET", "sandbox-secret")
    sandbox = NetSuiteSandbox()
    sandbox.state.rng.seed(31)  # its first draw faults the first call, the token grant, with a 503
    sandbox.state.faults.extend(
        [Fault(status=503, rate=0.15), Fault(status=429, retry_after="1", rate=0.15)]  # on every call
    )
    with running(sandbox) as base_url:
        text = TABLE.format(base_url=base_url, token_path=sandbox.token_path)
        spec = parse_routing_table(text).connectors["erp"]
        await declare_topology(settings, parse_routing_table(text))
        events = await capture(amqp, events_exchange_name(settings), settings.amqp_name("capture", "events"))
        connector = build_connector("erp", spec, catalog())
        runtime = connector_runtime(connector, settings=settings, spec=spec, redis=redis)
        await runtime.start()
        try:
            channel = await amqp.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(events_exchange_name(settings))
            sent: list[str] = []
            for _ in range(RETURNS):
                return_id = f"ret_{uuid.uuid4().hex}"
                on = request(external_id=f"RMA-{uuid.uuid4().hex[:12]}")
                for message_type, payload in (
                    ("return-request.v1", on),
                    ("return-decision.v1", decision(on, return_id=return_id)),
                ):
                    message_id, body = envelope(message_type, payload, return_id)
                    await exchange.publish(aio_pika.Message(body, message_id=message_id), message_type)
                    sent.append(message_id)
            await wait_until(
                lambda: runtime.outcomes[Outcome.ACK] + runtime.outcomes[Outcome.DEAD] == len(sent),
                within=90,
                what="every message settled",
            )
            # A marker last: the capture queue is FIFO, so every answer (a duplicate too) is in before it.
            marker_id, marker = envelope("marker.v1", {}, "ret_marker")
            await exchange.publish(aio_pika.Message(marker, message_id=marker_id), "marker.v1")
            await events.ids_through("ret_marker")
            dead = await take_dead_letters(amqp, settings, "erp")
        finally:
            await runtime.stop()
            await connector.aclose()
            await delete_routing_topology(amqp, settings, text)

    assert runtime.outcomes[Outcome.DEAD] == 0 and dead == []
    assert runtime.circuit.opened == 0 and runtime.circuit.state == "closed"
    # Each message answered once: a return-documents per request, a return-authorization per decision.
    answers = [str(m.message_id) for m in events.messages if m.message_id not in {*sent, marker_id}]
    assert len(answers) == len(set(answers)) == len(sent)
    assert collections.Counter(a.rsplit(".", 1)[1] for a in answers) == {"documents": RETURNS, "rma": RETURNS}
    # One RMA per decision at NetSuite; the faults were there, on the token grant too.
    rmas = sandbox.state.all("returnAuthorization")
    assert len(rmas) == RETURNS and len({r["externalId"] for r in rmas}) == RETURNS
    seen = sandbox.state.requests
    assert 0.2 < sum(1 for s in seen if s.status in (503, 429)) / len(seen) < 0.4
    grants = [s.status for s in seen if s.path == sandbox.token_path]
    assert grants[0] == 503 and grants[-1] == 0  # refused at first, then tried again in-process
