"""RabbitMQ restarted in the middle of a stream of returns: nothing lost, nothing posted twice.

The broker is really restarted (``rabbitmqctl stop_app`` / ``start_app``), so every
connection drops: the gateway answers 503 until it reconnects and partners retry with the
same idempotency key; the connector process reconnects and resumes its consumer.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid

import httpx
import pytest

from tests.connectors.conftest import Setup
from tests.support.payloads import headers, return_request
from tests.support.server import ConnectorProcess, running_gateway
from tests.support.waiting import wait_until

RETURNS = 1000
PARTNERS_IN_PARALLEL = 16
RESTART_AFTER = 300

pytestmark = pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


async def _restart_broker(stopped: asyncio.Event) -> None:
    try:
        await asyncio.to_thread(_rabbitmqctl, "stop_app")
        stopped.set()
    finally:
        await asyncio.to_thread(_rabbitmqctl, "start_app")
        await asyncio.to_thread(_rabbitmqctl, "await_startup")


async def test_a_broker_restart_mid_stream_loses_nothing_and_posts_nothing_twice(setup: Setup) -> None:
    requests = {uuid.uuid4().hex: return_request() for _ in range(RETURNS)}  # key -> its one payload
    accepted: set[str] = set()
    refused: list[int] = []
    stopped, restarted = asyncio.Event(), asyncio.Event()

    with running_gateway(setup.env) as base_url, ConnectorProcess(setup.env, "records"):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def submit(idempotency_key: str) -> bool:
                response = await client.post(
                    "/v1/returns", json=requests[idempotency_key], headers=headers(setup.key, idempotency_key)
                )
                if response.status_code != 202:
                    refused.append(response.status_code)
                    return False
                accepted.add(idempotency_key)
                return True

            async def partner(share: list[str]) -> None:
                for key in share:
                    if len(accepted) >= RESTART_AFTER + 50:  # hold the rest until the broker is down
                        await wait_until(stopped.is_set, within=60, what="the broker to stop")
                    # A partner retrying a 503 with the same idempotency key, as the API asks.
                    await wait_until(lambda k=key: submit(k), within=90, interval=0.2)

            async def restart_mid_stream() -> None:
                await wait_until(lambda: len(accepted) >= RESTART_AFTER, within=60, what="the stream")
                await _restart_broker(stopped)
                restarted.set()

            keys = list(requests)
            # The connector is consuming before the stream starts: the first return arrives.
            await wait_until(lambda: submit(keys[0]), within=30, interval=0.2)
            await wait_until(lambda: len(setup.sandbox.effects) == 1, within=30, what="the connector")
            await asyncio.gather(
                restart_mid_stream(),
                *(partner(keys[1:][i::PARTNERS_IN_PARALLEL]) for i in range(PARTNERS_IN_PARALLEL)),
            )
        await wait_until(
            lambda: len(setup.sandbox.effects) == RETURNS, within=120, what="every return delivered"
        )

    assert restarted.is_set() and len(accepted) == RETURNS
    assert refused, "the restart should have refused some submissions"
    assert set(refused) <= {503}, set(refused)  # the outage was visible, and only as "retry later"
    assert setup.sandbox.repeats == 0  # the effect ledger, not the target's dedupe, prevented doubles
