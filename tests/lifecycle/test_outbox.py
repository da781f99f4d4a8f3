"""The outbox relay on the real broker and PostgreSQL: rows written while the broker refuses
them stay unsent and go out later, exactly those rows, in order per return."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection
from psycopg_pool import AsyncConnectionPool

from gateway.broker import declare_edge_topology, unrouted_name
from gateway.lifecycle import LifecycleStore
from gateway.lifecycle._outbox import OutboxRelay
from gateway.settings import Settings
from tests.lifecycle.test_store import _count, _none, opened
from tests.support.broker import CapturedQueue
from tests.support.waiting import wait_until


@pytest.fixture
async def relay(database: AsyncConnectionPool, settings: Settings) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(database, settings, idle_seconds=0.2)
    yield relay
    await relay.aclose()


async def _rows(database: AsyncConnectionPool, return_ids: list[str]) -> list[tuple[str, str, bool, int]]:
    async with database.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT return_id, message_id, sent_at IS NOT NULL, attempts FROM outbox "
                "WHERE return_id = ANY(%s) ORDER BY id",
                (return_ids,),
            )
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def test_rows_written_while_the_broker_refuses_them_are_published_later_in_order(
    database: AsyncConnectionPool,
    settings: Settings,
    amqp: AbstractRobustConnection,
    relay: OutboxRelay,
) -> None:
    channel = await amqp.channel()
    events = await declare_edge_topology(channel, settings)
    # The broker refuses every message: a queue that takes none (reject-publish: a nack).
    gate = await channel.declare_queue(
        settings.amqp_name("gate"), arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
    )
    await gate.bind(events, "#")
    try:
        await _refused_then_published(database, settings, channel, gate, relay)
    finally:
        await channel.queue_delete(settings.amqp_name("gate"))


async def _refused_then_published(
    database: AsyncConnectionPool,
    settings: Settings,
    channel: AbstractChannel,
    gate: AbstractQueue,
    relay: OutboxRelay,
) -> None:
    store = LifecycleStore(database, settings, on_outbox=relay.wake)
    await relay.start()
    opened_returns = [await opened(store) for _ in range(2)]
    for n in range(1, 4):  # three events on each return, interleaved
        for return_id, partner in opened_returns:
            await store.apply(return_id, f"m{n}", _count(f"m{n}"), basis_of=_none, partner=partner)
    ids = [r for r, _ in opened_returns]
    written = await _rows(database, ids)
    assert len(written) == 6

    async def refused() -> bool:
        rows = await _rows(database, ids)
        return rows[0][3] >= 2 and not any(sent for _, _, sent, _ in rows)

    await wait_until(refused, within=15, what="the relay to be refused twice and send nothing")

    # The broker takes messages again: with the gate gone they land in the unrouted queue.
    captured = CapturedQueue()
    unrouted = await channel.get_queue(unrouted_name(settings))
    await unrouted.consume(captured._on_message)
    await gate.delete(if_unused=False, if_empty=False)

    async def all_sent() -> bool:
        return all(sent for _, _, sent, _ in await _rows(database, ids))

    await wait_until(all_sent, within=30, what="every row to be sent")
    await wait_until(lambda: len(captured.messages) >= 6, within=10, what="the six messages")
    published = [msgspec.json.decode(m.body) for m in captured.messages]
    assert sorted(e["message_id"] for e in published) == sorted(m for _, m, _, _ in written)  # each once
    for return_id in ids:
        mine = [e["message_id"] for e in published if e["correlation_id"] == return_id]
        assert mine == [m for r, m, _, _ in written if r == return_id]  # in the order decided
    assert all(m.routing_key == "note.v1" for m in captured.messages)


async def test_rows_sent_long_ago_are_deleted_and_unsent_ones_kept(
    database: AsyncConnectionPool, settings: Settings, relay: OutboxRelay
) -> None:
    store = LifecycleStore(database, settings)
    return_id, partner = await opened(store)
    await store.apply(return_id, "m1", _count("m1"), basis_of=_none, partner=partner)
    await store.apply(return_id, "m2", _count("m2"), basis_of=_none, partner=partner)
    first, second = await _rows(database, [return_id])
    async with database.connection() as conn:  # the first went out a week and a day ago
        await conn.execute(
            "UPDATE outbox SET sent_at = now() - interval '8 days' WHERE message_id = %s", (first[1],)
        )
    assert await relay.purge_sent() >= 1
    assert [m for _, m, _, _ in await _rows(database, [return_id])] == [second[1]]
