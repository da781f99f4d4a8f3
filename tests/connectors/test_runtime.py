"""The connector runtime on the real broker and Redis, against a sandbox HTTP target."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient

from gateway.broker import events_exchange_name
from gateway.broker.headers import DEAD_REASON, REPLAY_OF
from gateway.errors import StoreUnavailable
from gateway.registry import ContractRegistry
from gateway.routing import parse_routing_table, redeliver_exchange, retry_queue
from gateway.runtime import ConnectorRuntime, Outcome, build_connector
from gateway.sdk import Connector, Delivery, NotReadyYet, RetryableDeliveryFailure, handler
from gateway.settings import Settings
from gateway.storage import connect_redis
from tests.conftest import KeyFactory
from tests.connectors.conftest import routed_gateway, running_connector
from tests.support.broker import capture, take_dead_letters
from tests.support.payloads import headers, return_request
from tests.support.sandbox import Fault, SandboxState
from tests.support.tcp_proxy import proxy_to
from tests.support.waiting import wait_until

# tries: 1: these tests are about the runtime's own retries, so the target tries each call once
# (its in-process retries are tested in test_transient.py).
TABLE = """
connectors:
  records:
    use: tests.connectors.test_runtime:RecordsConnector
    target: {{base_url: "{base_url}", timeout_seconds: 2, tries: 1}}
    circuit:
      minimum_calls: {minimum_calls}
      window_seconds: 10
      consecutive_failures: 1000
      open_seconds: 1
    prefetch: 8
    max_attempts: 4
    delivery_limit: 5
    retry_delays_ms: [200, 400, 1000, 2000]
routes:
  - {{id: requests, message: return-request.v1, to: [records]}}
"""


class RecordsConnector(Connector):
    """A connector as an integration engineer writes one: which messages, and where they go."""

    handles = frozenset({"return-request.v1"})

    async def handle(self, delivery: Delivery) -> None:
        await self.target.post("/records", json=delivery.payload, idempotency_key=delivery.idempotency_key)


@dataclass
class Harness:
    client: AsyncTestClient  # type: ignore[type-arg]
    runtime: ConnectorRuntime
    sandbox: SandboxState
    key: str
    settings: Settings
    amqp: AbstractRobustConnection

    async def submit(self) -> None:
        response = await self.client.post("/v1/returns", json=return_request(), headers=headers(self.key))
        assert response.status_code == 202, response.text

    async def dead_letters(self) -> list[aio_pika.abc.AbstractIncomingMessage]:
        return await take_dead_letters(self.amqp, self.settings, "records")


@asynccontextmanager
async def running_harness(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
    *,
    minimum_calls: int = 1000,
) -> AsyncIterator[Harness]:
    """Gateway, sandbox target and one connector runtime built from the routing table."""
    async with (
        routed_gateway(tmp_path, settings, registry, amqp, TABLE, minimum_calls=minimum_calls) as routed,
        running_connector(routed, "records", redis) as runtime,
    ):
        yield Harness(routed.client, runtime, routed.sandbox, await make_key(), routed.settings, amqp)


@pytest.fixture
async def harness(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, settings, registry, redis, amqp, make_key) as harness:
        yield harness


def _only_key(sandbox: SandboxState) -> str:
    keys = {k for _, k in sandbox.requests}
    assert len(keys) == 1, keys
    return keys.pop()


async def test_delivered_once_and_acknowledged_after_the_effect(harness: Harness) -> None:
    await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, what="the delivery")
    key = _only_key(harness.sandbox)
    assert harness.sandbox.effects == {key: 1}
    assert len(harness.sandbox.requests) == 1


async def test_transient_failures_are_retried_then_applied_once(harness: Harness) -> None:
    harness.sandbox.faults.extend([Fault(503), Fault(502)])
    await harness.submit()
    await wait_until(
        lambda: harness.runtime.outcomes[Outcome.ACK] == 1, within=15, what="delivery after retries"
    )
    key = _only_key(harness.sandbox)
    assert harness.sandbox.effects == {key: 1}
    assert len(harness.sandbox.times_for(key)) == 3
    assert harness.runtime.outcomes[Outcome.RETRY] == 2


async def test_retry_after_is_honoured(harness: Harness) -> None:
    harness.sandbox.faults.append(Fault(429, retry_after="1"))
    await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, within=15)
    first, second = harness.sandbox.times_for(_only_key(harness.sandbox))
    # Backoff alone would wait ~0.2 s; the target asked for 1 s.
    assert second - first >= 0.95


async def test_permanent_failure_is_dead_lettered_at_once_with_its_reason(harness: Harness) -> None:
    harness.sandbox.faults.append(Fault(400))
    await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1)
    dead = await harness.dead_letters()
    assert len(dead) == 1
    reason = msgspec.json.decode((dead[0].headers or {})[DEAD_REASON])
    assert reason["connector"] == "records"
    assert reason["error"] == "PermanentDeliveryFailure"
    assert reason["status_code"] == 400
    assert reason["attempts"] == 1
    assert "injected 400" in reason["detail"]
    assert msgspec.json.decode(dead[0].body)["contract"] == "return-request"  # the original message, intact
    assert harness.sandbox.effects == {}
    assert len(harness.sandbox.requests) == 1


async def test_retries_exhausted_end_in_the_dead_letter_queue(harness: Harness) -> None:
    harness.sandbox.faults.extend([Fault(503)] * 4)
    await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, within=20)
    reason = msgspec.json.decode(((await harness.dead_letters())[0].headers or {})[DEAD_REASON])
    assert reason["error"] == "RetryableDeliveryFailure" and reason["attempts"] == 4
    assert reason["status_code"] == 503
    assert len(harness.sandbox.requests) == 4 and harness.sandbox.effects == {}


async def test_a_redelivered_message_is_not_applied_twice(harness: Harness) -> None:
    envelope = {
        "message_id": "msg_redelivered",
        "correlation_id": "ret_x",
        "contract": "return-request",
        "version": "v1",
        "partner": "acme",
        "occurred_at": "2026-11-23T10:00:00Z",
        "trace": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        "payload": return_request(),
    }
    channel = await harness.amqp.channel(publisher_confirms=True)
    events = await channel.get_exchange(events_exchange_name(harness.settings))
    for _ in range(3):  # the same message three times: a crash before the ack, a replay...
        await events.publish(
            aio_pika.Message(msgspec.json.encode(envelope), message_id="msg_redelivered"), "return-request.v1"
        )
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 3, within=15, what="all three settled")
    assert harness.sandbox.effects == {"msg_redelivered": 1}
    assert len(harness.sandbox.requests) == 1


async def test_target_timeout_is_retryable(harness: Harness) -> None:
    harness.sandbox.faults.append(Fault(200, delay=3.0))  # slower than the connector's 2 s timeout
    await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, within=20)
    assert harness.runtime.outcomes[Outcome.RETRY] == 1
    assert list(harness.sandbox.effects.values()) == [1]


async def test_the_circuit_opens_on_a_down_target_and_closes_when_it_is_back(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> None:
    async with running_harness(
        tmp_path, settings, registry, redis, amqp, make_key, minimum_calls=3
    ) as harness:
        harness.sandbox.down = True
        for _ in range(6):
            await harness.submit()
        await wait_until(lambda: harness.runtime.circuit.state == "opened", what="the circuit to open")
        opened_at = time.monotonic()

        # While open, the target is left alone: one trial message per open period (1 s).
        def trials() -> list[float]:
            return [t for t, _ in harness.sandbox.requests if t > opened_at + 0.1]

        await wait_until(lambda: len(trials()) >= 3, within=10, what="three trials")
        first, *rest = trials()[:3]
        assert first - opened_at >= 0.85
        assert all(later - earlier >= 0.9 for earlier, later in zip([first, *rest], rest, strict=False))
        assert harness.runtime.outcomes[Outcome.DEAD] == 0

        harness.sandbox.down = False
        await wait_until(
            lambda: len(harness.sandbox.effects) == 6, within=20, what="every return once the target is back"
        )
        await wait_until(lambda: harness.runtime.circuit.state == "closed", what="the circuit to close")
        assert harness.sandbox.repeats == 0


async def test_graceful_stop_finishes_the_message_in_flight(harness: Harness) -> None:
    harness.sandbox.faults.append(Fault(201, delay=1.0))  # a slow but successful call
    await harness.submit()
    await wait_until(lambda: len(harness.sandbox.requests) == 1, what="the call to start")
    await harness.runtime.stop()  # returns once the in-flight message is settled
    assert harness.runtime.outcomes[Outcome.ACK] == 1
    assert harness.runtime.outcomes[Outcome.RETRY] == 0


async def test_a_replayed_dead_letter_is_delivered_once(harness: Harness, make_key: KeyFactory) -> None:
    harness.sandbox.faults.append(Fault(400))  # refused once: dead-lettered at once
    await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, what="the dead letter")
    message_id = _only_key(harness.sandbox)
    admin = {"Authorization": f"Bearer {await make_key('ops', scopes=('admin',))}"}

    replayed = await harness.client.post(
        f"/v1/admin/dead-letters/records/{message_id}/replay", json={"note": "ERP fixed"}, headers=admin
    )
    assert replayed.status_code == 202, replayed.text
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, what="the replayed delivery")
    assert harness.sandbox.effects == {message_id: 1}

    # The dead letter is gone, so a second replay finds nothing; the replay is on the record.
    again = await harness.client.post(f"/v1/admin/dead-letters/records/{message_id}/replay", headers=admin)
    assert again.status_code == 404
    audit = (await harness.client.get("/v1/admin/audit", headers=admin)).json()["data"]
    assert [(e["action"], e["message_id"], e["note"]) for e in audit] == [("replay", message_id, "ERP fixed")]
    assert len(harness.sandbox.times_for(message_id)) == 2 and harness.sandbox.repeats == 0


async def test_a_retry_the_broker_will_not_take_returns_the_original_instead_of_losing_it(
    harness: Harness,
) -> None:
    # Without its retry tiers a retry copy is unroutable: the broker returns it, unconfirmed.
    channel = await harness.amqp.channel()
    for delay in (200, 400, 1000, 2000):
        await channel.queue_delete(retry_queue(harness.settings, "records", delay))
    harness.sandbox.down = True
    await harness.submit()
    # The original goes back to its queue each time, never acknowledged, until the broker's
    # delivery limit (5) dead-letters it itself: kept, with the broker's x-death as the reason.
    await wait_until(lambda: len(harness.sandbox.requests) >= 5, within=20, what="redeliveries")
    dead: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def dead_lettered() -> bool:
        dead.extend(await harness.dead_letters())
        return bool(dead)

    await wait_until(dead_lettered, within=20, what="the broker to dead-letter it")
    assert [m.message_id for m in dead] == [_only_key(harness.sandbox)]
    assert (dead[0].headers or {})["x-death"]
    assert harness.runtime.outcomes[Outcome.RETRY] == 0 and harness.runtime.outcomes[Outcome.ACK] == 0


class FlakyLedger:
    """The runtime's real effect ledger, with Redis failing at the calls named (once each)."""

    def __init__(self, ledger: Any, failing: dict[str, Exception]) -> None:
        self._ledger = ledger
        self.failing = dict(failing)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._ledger, name)
        if name not in ("begin", "finish", "abandon"):
            return real

        async def call(*args: Any, **kwargs: Any) -> Any:
            failure = self.failing.pop(name, None)
            if failure is not None:
                raise failure
            return await real(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    "failing",
    [
        {"finish": StoreUnavailable("Redis timed out")},  # applied, not recorded as done
        {"begin": RuntimeError("a bug before any decision")},  # no decision at all
    ],
    ids=["finish", "begin-bug"],
)
async def test_a_failure_outside_any_decision_never_strands_the_message(
    harness: Harness, failing: dict[str, Exception]
) -> None:
    harness.runtime._ledger = FlakyLedger(harness.runtime._ledger, failing)  # type: ignore[assignment]
    for _ in range(3):
        await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 3, within=15, what="all three settled")
    assert sorted(harness.sandbox.effects.values()) == [1, 1, 1]  # each applied once
    assert harness.runtime.returned == (1 if "begin" in failing else 0)
    for _ in range(9):  # more than the prefetch of 8: no slot was lost on the way
        await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 12, within=20, what="twelve settled")
    assert len(harness.sandbox.effects) == 12


async def test_a_lease_not_given_back_still_retries_the_failure(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> None:
    short_lease = dataclasses.replace(settings, effect_lease_seconds=1.0)
    async with running_harness(tmp_path, short_lease, registry, redis, amqp, make_key) as harness:
        harness.runtime._ledger = FlakyLedger(  # type: ignore[assignment]
            harness.runtime._ledger, {"abandon": StoreUnavailable("Redis timed out")}
        )
        harness.sandbox.faults.append(Fault(503))
        await harness.submit()
        await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, within=20, what="the retry")
        assert list(harness.sandbox.effects.values()) == [1]
        assert harness.runtime.outcomes[Outcome.RETRY] >= 1
        assert harness.runtime.returned == 0


NO_TARGET_TABLE = """
connectors:
  ordering:
    use: tests.connectors.test_runtime:NotYetConnector
    circuit: {{minimum_calls: 1, consecutive_failures: 1, open_seconds: 30}}
    max_attempts: 3
    retry_delays_ms: [100, 200]
routes:
  - {{id: requests, message: return-request.v1, to: [ordering]}}
"""


class NotYetConnector(Connector):
    """A connector with no system of its own whose messages fail (a return not opened yet)."""

    @handler("return-request.v1")
    async def refuse(self, delivery: Delivery) -> None:
        raise RetryableDeliveryFailure(f"return {delivery.correlation_id} is not opened yet")


async def test_a_connector_without_a_target_never_opens_a_circuit(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> None:
    async with (
        routed_gateway(tmp_path, settings, registry, amqp, NO_TARGET_TABLE) as routed,
        running_connector(routed, "ordering", redis) as runtime,
    ):
        key = await make_key()
        for _ in range(2):
            response = await routed.client.post("/v1/returns", json=return_request(), headers=headers(key))
            assert response.status_code == 202
        # with a circuit, the first failure would pause the queue for 30 s
        await wait_until(lambda: runtime.outcomes[Outcome.DEAD] == 2, within=15, what="both dead-lettered")
        assert runtime.circuit.state == "closed"
        assert runtime.outcomes[Outcome.RETRY] == 4


EARLY_TABLE = """
connectors:
  early:
    use: tests.connectors.test_runtime:EarlyConnector
    max_attempts: 2
    retry_delays_ms: [100, 200]
routes:
  - {{id: requests, message: return-request.v1, to: [early]}}
"""


class EarlyConnector(Connector):
    """Every message is early (what it depends on has not arrived) its first four times."""

    calls: ClassVar[collections.Counter[str]] = collections.Counter()

    @handler("return-request.v1")
    async def wait_then_apply(self, delivery: Delivery) -> None:
        EarlyConnector.calls[delivery.message_id] += 1
        if EarlyConnector.calls[delivery.message_id] <= 4:
            raise NotReadyYet(f"return {delivery.correlation_id} is not opened yet")


@pytest.mark.parametrize(("max_deferrals", "outcome"), [(30, Outcome.ACK), (2, Outcome.DEAD)])
async def test_an_early_message_waits_without_spending_its_attempts(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
    max_deferrals: int,
    outcome: Outcome,
) -> None:
    async with routed_gateway(tmp_path, settings, registry, amqp, EARLY_TABLE) as routed:
        spec = parse_routing_table(routed.table).connectors["early"]
        runtime = ConnectorRuntime(
            build_connector("early", spec),
            settings=routed.settings,
            spec=spec,
            redis=redis,
            max_deferrals=max_deferrals,
        )
        await runtime.start()
        try:
            response = await routed.client.post(
                "/v1/returns", json=return_request(), headers=headers(await make_key())
            )
            assert response.status_code == 202
            await wait_until(
                lambda: runtime.outcomes[outcome] == 1, within=15, what=f"the message's {outcome}"
            )
        finally:
            await runtime.stop()
        [calls] = EarlyConnector.calls.values()
        EarlyConnector.calls.clear()
        if outcome is Outcome.ACK:  # four waits and the fifth call applies it: max_attempts 2 never hit
            assert calls == 5 and runtime.outcomes[Outcome.RETRY] == 4 and runtime.outcomes[Outcome.DEAD] == 0
        else:  # still early after its two waits: dead, with the reason
            assert calls == 3
            reason = msgspec.json.decode(
                ((await take_dead_letters(amqp, routed.settings, "early"))[0].headers or {})[DEAD_REASON]
            )
            assert reason["error"] == "NotReadyYet"


@pytest.mark.parametrize("fault", ["stall", "cut"])
async def test_redis_stalling_or_vanishing_mid_run_strands_no_message(
    fault: str,
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> None:
    """The runtime's Redis (its effect ledger) hangs or goes away while messages are in flight
    and arriving: each is settled (retried or given back), none holds its prefetch slot, and
    once Redis is back every message is applied exactly once."""
    async with proxy_to(settings.redis_url, default_port=6379) as proxy:
        through = connect_redis(proxy.through(settings.redis_url))
        async with running_harness(tmp_path, settings, registry, through, amqp, make_key) as harness:
            for _ in range(4):
                harness.sandbox.faults.append(
                    Fault(201, delay=1.0, apply_first=True)
                )  # in flight as Redis goes
            for _ in range(4):
                await harness.submit()
            await wait_until(lambda: len(harness.sandbox.requests) >= 4, within=10, what="calls in flight")
            await (proxy.stall() if fault == "stall" else proxy.cut())
            for _ in range(12):  # more than the prefetch of 8 arrive while Redis is away
                await harness.submit()
            await wait_until(
                lambda: harness.runtime.outcomes[Outcome.RETRY] + harness.runtime.returned >= 8,
                within=20,
                what="messages settled while Redis is away",
            )
            await (proxy.resume() if fault == "stall" else proxy.restore())
            await wait_until(
                lambda: len(harness.sandbox.effects) == 16, within=40, what="every message applied"
            )
            assert sorted(set(harness.sandbox.effects.values())) == [1]
            for _ in range(9):  # no prefetch slot was lost: more than the prefetch still flows
                await harness.submit()
            await wait_until(lambda: len(harness.sandbox.effects) == 25, within=20, what="nine more")
            assert harness.sandbox.repeats <= 4  # only the calls whose done-record Redis lost
            assert harness.runtime.outcomes[Outcome.DEAD] == 0
        await through.aclose()


def _close_connection_named(name: str) -> int:
    """Have the broker close every connection with this client-provided name (as a network
    failure or an operator would); how many it closed."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    named = f'{{"connection_name","{name}"}}'
    pids = [line.split("\t")[0] for line in listed.splitlines() if named in line]
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, "closed by the test"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return len(pids)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_a_channel_closed_under_messages_in_flight_applies_each_once(harness: Harness) -> None:
    """The broker drops the connector's connection while calls are in flight: their acks have
    nowhere to go, the broker requeues them, and the redeliveries find them done."""
    for _ in range(3):
        harness.sandbox.faults.append(Fault(201, delay=1.5, apply_first=True))
    for _ in range(3):
        await harness.submit()
    await wait_until(lambda: len(harness.sandbox.requests) == 3, within=10, what="three calls in flight")
    closed = await asyncio.to_thread(
        _close_connection_named,
        f"returns-gateway:{harness.settings.namespace}:connector:{harness.runtime.name}",
    )
    assert closed == 1
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] >= 3, within=30, what="the redeliveries")
    assert sorted(harness.sandbox.effects.values()) == [1, 1, 1]
    for _ in range(9):  # the consumer is back, with its whole prefetch
        await harness.submit()
    await wait_until(lambda: len(harness.sandbox.effects) == 12, within=30, what="nine more")
    assert harness.runtime.outcomes[Outcome.DEAD] == 0


async def test_a_replayed_dead_letter_that_goes_through_is_announced_as_delivered(
    harness: Harness, make_key: KeyFactory
) -> None:
    events = await capture(
        harness.amqp, events_exchange_name(harness.settings), harness.settings.amqp_name("capture", "events")
    )
    harness.sandbox.faults.append(Fault(400))
    await harness.submit()
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, what="the dead letter")
    message_id = _only_key(harness.sandbox)
    admin = {"Authorization": f"Bearer {await make_key('ops', scopes=('admin',))}"}
    replayed = await harness.client.post(f"/v1/admin/dead-letters/records/{message_id}/replay", headers=admin)
    assert replayed.status_code == 202, replayed.text

    def actions() -> list[dict[str, Any]]:
        return [
            msgspec.json.decode(m.body)["payload"]
            for m in events.messages
            if m.routing_key == "dead-letter-action.v1"
        ]

    await wait_until(lambda: len(actions()) == 2, what="the replay and its delivery announced")
    assert sorted(a["action"] for a in actions()) == ["delivered", "replayed"]
    [delivered] = [a for a in actions() if a["action"] == "delivered"]
    assert (delivered["connector"], delivered["message_id"], delivered["replayed_as"]) == (
        "records",
        message_id,
        message_id,
    )

    # The same replayed copy once more (a crash left it beside its dead letter): applied before,
    # it is not applied again, and still announced as delivered (the same event, deduplicated).
    [copy] = [m for m in events.messages if m.routing_key == "return-request.v1"]
    channel = await harness.amqp.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(redeliver_exchange(harness.settings), ensure=False)
    await exchange.publish(
        aio_pika.Message(copy.body, message_id=message_id, headers={REPLAY_OF: message_id}),
        routing_key="records",
    )
    await channel.close()
    await wait_until(lambda: len(actions()) == 3, what="the delivery announced again")
    assert [a["action"] for a in actions()].count("delivered") == 2
    assert harness.sandbox.effects == {message_id: 1}
