"""The exchanges and queues the edge publishes into, declared idempotently at start-up.

Accepted messages go to one durable topic exchange, routed by ``<contract>.<version>``.
Its alternate exchange catches whatever no route claims yet, into a durable quorum
queue, so a message the broker confirmed is never dropped for lack of a consumer.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from gateway.broker.names import events_exchange_name, unrouted_name
from gateway.settings import Settings


async def declare_edge_topology(channel: AbstractChannel, settings: Settings) -> AbstractExchange:
    """Declare the events exchange with its alternate exchange and queue; returns the exchange."""
    unrouted = await channel.declare_exchange(
        unrouted_name(settings), aio_pika.ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(
        unrouted_name(settings), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(unrouted)
    return await channel.declare_exchange(
        events_exchange_name(settings),
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": unrouted_name(settings)},
    )
