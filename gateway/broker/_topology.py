"""The exchanges and queues the edge publishes into, declared idempotently at start-up.

Accepted messages go to one durable topic exchange, routed by ``<contract>.<version>``.
Its alternate exchange catches whatever no route claims yet, into a durable quorum
queue, so a message the broker confirmed is never dropped for lack of a consumer.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from gateway.settings import Settings


def events_exchange_name(settings: Settings) -> str:
    """Topic exchange every accepted message is published to."""
    return settings.amqp_name("events")


def unrouted_name(settings: Settings) -> str:
    """Alternate exchange and queue holding messages no route wanted."""
    return settings.amqp_name("unrouted")


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
