"""The desk itself: bounded bulk replay, queues left intact by every browse, odd dead letters,
and refusing before acting when the broker or the database is missing."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from psycopg_pool import AsyncConnectionPool

import gateway.deadletters
from gateway.deadletters import DeadLetterDesk
from gateway.errors import BrokerUnavailable, ContractViolation, DatabaseUnavailable, DeadLetterNotFound
from gateway.registry import ContractRegistry
from gateway.routing import dead_exchange, load_routing_table
from gateway.settings import PROJECT_ROOT, Settings
from tests.conftest import AMQP_URL
from tests.deadletters.conftest import DeadLetters
from tests.support.server import free_port
from tests.support.waiting import wait_until


def _desk(settings: Settings, registry: ContractRegistry, database: AsyncConnectionPool) -> DeadLetterDesk:
    assert settings.routes_file is not None
    return DeadLetterDesk(
        settings, registry=registry, database=database, routing=load_routing_table(settings.routes_file)
    )


@pytest.fixture
async def desk(
    topology: DeadLetters, registry: ContractRegistry, database: AsyncConnectionPool
) -> AsyncIterator[DeadLetterDesk]:
    desk = _desk(topology.settings, registry, database)
    yield desk
    await desk.aclose()
    await desk.aclose()  # safe twice


def test_public_names_are_sorted() -> None:
    assert gateway.deadletters.__all__ == sorted(gateway.deadletters.__all__)


async def test_bulk_replay_stops_at_the_depth_it_started_with(
    desk: DeadLetterDesk, topology: DeadLetters
) -> None:
    sent = [(await topology.publish("records"))["message_id"] for _ in range(5)]
    # A connector that fails every message again at once: each replayed copy is rejected and
    # the broker dead-letters it straight back behind the ones still waiting.
    channel = await topology.amqp.channel()
    queue = await channel.get_queue(topology.queue("records"), ensure=False)
    died_again: list[str] = []

    async def fail_again(message: AbstractIncomingMessage) -> None:
        died_again.append(str(message.message_id))
        await message.reject(requeue=False)

    await queue.consume(fail_again)
    steps: list[tuple[int, int]] = []
    result = await desk.replay_all("records", actor="test", progress=lambda d, t: steps.append((d, t)))
    await wait_until(lambda: len(died_again) == 5, what="every replayed copy to die again")
    await channel.close()

    assert result.depth_at_start == result.replayed == 5 and result.message_ids == sent
    assert steps == [(i, 5) for i in range(6)]
    assert sorted(died_again) == sorted(sent)  # each replayed exactly once, no loop
    await wait_until(
        lambda: _depth_is(topology, "records", 5), what="the five to be back in the dead-letter queue"
    )
    assert len(await desk.audit.recent(100)) == 5


async def _depth_is(topology: DeadLetters, connector: str, expected: int) -> bool:
    return await topology.depth(topology.dlq(connector)) == expected


async def test_concurrent_browses_each_see_the_whole_queue(
    desk: DeadLetterDesk, topology: DeadLetters
) -> None:
    sent = [(await topology.publish("records"))["message_id"] for _ in range(4)]
    listings = await asyncio.gather(*(desk.list("records") for _ in range(5)))
    assert all([d.message_id for d in listing.dead_letters] == sent for listing in listings)
    assert await desk.depth("records") == 4


async def test_a_failed_search_leaves_the_queue_as_it_was(
    desk: DeadLetterDesk, topology: DeadLetters
) -> None:
    sent = [(await topology.publish("records"))["message_id"] for _ in range(3)]
    with pytest.raises(DeadLetterNotFound):
        await desk.replay("records", "msg_not_there", actor="test")
    with pytest.raises(DeadLetterNotFound):
        await desk.discard("records", "msg_not_there", actor="test", reason="typo")
    listing = await desk.list("records")
    assert listing.depth == 3 and [d.message_id for d in listing.dead_letters] == sent


BROWSE_THEN_HANG = """
import asyncio, sys
from gateway.deadletters._broker import DeskBroker
from gateway.settings import Settings

async def main():
    async with DeskBroker(Settings.from_env()).browsing(sys.argv[1]) as browse:
        while await browse.next() is not None:
            pass
        print(browse.taken, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_browse_killed_mid_way_loses_nothing(desk: DeadLetterDesk, topology: DeadLetters) -> None:
    sent = [(await topology.publish("records"))["message_id"] for _ in range(3)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        BROWSE_THEN_HANG,
        topology.dlq("records"),
        env={**os.environ, "RGW_NAMESPACE": topology.settings.namespace, "RGW_AMQP_URL": AMQP_URL},
        stdout=asyncio.subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    try:
        assert process.stdout is not None
        held = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert held.strip() == b"3"
        assert await topology.depth(topology.dlq("records")) == 0  # every one held by the browse
    finally:
        process.kill()  # SIGKILL: no channel close, no cleanup of any kind
        await asyncio.wait_for(process.wait(), timeout=10)
    await wait_until(lambda: _depth_is(topology, "records", 3), what="the broker to take them back")
    assert [d.message_id for d in (await desk.list("records")).dead_letters] == sent


async def test_a_dead_letter_that_is_not_an_envelope_can_be_read_and_replayed_as_it_is(
    desk: DeadLetterDesk, topology: DeadLetters
) -> None:
    channel = await topology.amqp.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(dead_exchange(topology.settings), ensure=False)
    await exchange.publish(aio_pika.Message(b"\x00not json", message_id="amqp-id-1"), routing_key="crm")
    await exchange.publish(aio_pika.Message(b"[1, 2]"), routing_key="crm")
    await channel.close()

    listing = await desk.list("crm")
    first, second = listing.dead_letters
    assert first.message_id == "amqp-id-1" and first.dead_lettered_by == "unknown"
    assert first.message_type is None and first.reason.error == "Unknown"
    assert second.message_id  # no envelope: named by its AMQP message id
    shown = await desk.show("crm", "amqp-id-1")
    assert shown.envelope is None and shown.body == "\x00not json"

    with pytest.raises(ContractViolation):
        await desk.replay("crm", "amqp-id-1", payload={"external_id": "x"}, actor="test")
    assert await desk.depth("crm") == 2
    replayed = await desk.replay("crm", second.message_id, actor="test")
    assert replayed.replayed_as == second.message_id
    (copy,) = await topology.drain(topology.queue("crm"))
    assert copy.body == b"[1, 2]"


async def test_nothing_is_done_when_the_database_cannot_record_it(
    topology: DeadLetters, registry: ContractRegistry
) -> None:
    env = await topology.publish("records")
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=1"
    unreachable = AsyncConnectionPool(nowhere, min_size=0, max_size=1, timeout=0.5, open=False)
    await unreachable.open(wait=False)
    desk = _desk(topology.settings, registry, unreachable)
    try:
        with pytest.raises(DatabaseUnavailable):
            await desk.replay("records", env["message_id"], actor="test")
        with pytest.raises(DatabaseUnavailable):
            await desk.discard("records", env["message_id"], actor="test", reason="r")
        assert (await desk.show("records", env["message_id"])).message_id == env["message_id"]
    finally:
        await desk.aclose()
        await unreachable.close()
    assert await topology.depth(topology.dlq("records")) == 1


async def test_broker_down_is_unavailable_not_a_crash(
    topology: DeadLetters, registry: ContractRegistry, database: AsyncConnectionPool
) -> None:
    settings = dataclasses.replace(topology.settings, amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    desk = _desk(settings, registry, database)
    try:
        with pytest.raises(BrokerUnavailable):
            await desk.list("records")
    finally:
        await desk.aclose()


async def test_a_correction_equal_to_the_payload_is_a_plain_replay(
    desk: DeadLetterDesk, topology: DeadLetters
) -> None:
    env = await topology.publish("records")
    result = await desk.replay("records", env["message_id"], payload=env["payload"], actor="test")
    assert result.replayed_as == env["message_id"] and not result.payload_corrected
    (copy,) = await topology.drain(topology.queue("records"))
    assert copy.message_id == env["message_id"]
