"""Watch what reaches the broker, over a direct connection of the test's own."""

from __future__ import annotations

import msgspec
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from gateway import routing
from gateway.routing import dead_letter_queue
from gateway.settings import Settings
from tests.support.waiting import wait_until


class CapturedQueue:
    """A queue bound to an exchange that records every message it receives."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []

    def correlation_ids(self) -> list[str]:
        """The return id of every envelope received, in arrival order."""
        return [msgspec.json.decode(m.body)["correlation_id"] for m in self.messages]

    async def ids_through(self, marker_return_id: str) -> list[str]:
        """Wait for a marker return published last; one queue is FIFO, so every message
        published before it (a duplicate included) has arrived by then."""
        await wait_until(lambda: marker_return_id in self.correlation_ids(), what="the marker return")
        return self.correlation_ids()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)
        await message.ack()


async def capture(
    connection: AbstractRobustConnection, exchange: str, queue_name: str, routing_key: str = "#"
) -> CapturedQueue:
    """Bind ``queue_name`` to ``exchange`` (declared by the gateway) and start recording."""
    channel = await connection.channel()
    target = await channel.get_exchange(exchange, ensure=True)
    queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(target, routing_key)
    captured = CapturedQueue()
    await queue.consume(captured._on_message)
    return captured


async def delete_routing_topology(
    connection: AbstractRobustConnection, settings: Settings, table: str
) -> None:
    """Remove every queue and exchange a routing table declared in this test's namespace."""
    await wait_until(connection.connected.is_set, within=30, what="the broker connection to recover")
    channel = await connection.channel()
    await routing.delete_routing_topology(channel, settings, routing.parse_routing_table(table))
    await channel.close()


async def take_dead_letters(
    connection: AbstractRobustConnection, settings: Settings, connector: str
) -> list[AbstractIncomingMessage]:
    """Take every message waiting in ``connector``'s dead-letter queue."""
    channel = await connection.channel()
    queue = await channel.get_queue(dead_letter_queue(settings, connector))
    found = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        found.append(message)
    await channel.close()
    return found
