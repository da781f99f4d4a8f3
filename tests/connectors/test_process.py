"""The connector as a real process, crashed and restarted, on the real broker and Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.connectors.conftest import Setup
from tests.support.sandbox import Fault
from tests.support.server import ConnectorProcess
from tests.support.waiting import wait_until


async def test_a_connector_killed_after_the_call_applies_the_effect_once(
    setup: Setup, redis: aioredis.Redis
) -> None:
    # The target applies the effect, then is slow to answer: the connector dies waiting.
    setup.sandbox.faults.append(Fault(201, delay=8.0, apply_first=True))
    with ConnectorProcess(setup.env, "records") as connector:
        assert await setup.submit() == 202
        await wait_until(lambda: len(setup.sandbox.effects) == 1, within=20, what="the first call")
        [message_id] = setup.sandbox.effects
        connector.kill()

        # Unacknowledged, the message goes back to the queue; the restarted process waits out
        # the dead worker's lease, calls again with the same idempotency key, and the target
        # answers it as a replay instead of posting twice.
        connector.start()

        async def recorded_done() -> bool:
            return await redis.get(setup.settings.key("effect", "records", message_id)) == b"done"

        await wait_until(recorded_done, within=30, what="the effect recorded as done")
        assert setup.sandbox.effects == {message_id: 1}
        assert setup.sandbox.repeats == 1
        assert len(setup.sandbox.times_for(message_id)) == 2
        assert connector.terminate() == 0  # SIGTERM is a graceful stop
