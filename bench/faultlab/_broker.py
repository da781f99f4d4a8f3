"""What the shared broker holds for the run's namespace: queue depths, dead letters, and the
teardown of the namespace's topology.

A passive declare answers a queue's ready messages and consumers exactly, but not its
unacknowledged ones. ``rabbitmqctl list_queues`` (or the management API) would, but for quorum
queues both read statistics the queue publishes every 5 s, so a run counts unacknowledged
messages another way: it stops every connector, which hands back what it held, and then
finds them ready.
"""

from __future__ import annotations

import dataclasses

import aio_pika
import aiormq
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from gateway.broker import events_exchange_name, unrouted_name
from gateway.broker.headers import DEAD_REASON, DeadReason
from gateway.routing import RoutingTable, dead_letter_queue, delete_routing_topology, topology_names
from gateway.settings import Settings


@dataclasses.dataclass(frozen=True)
class QueueCount:
    ready: int
    consumers: int


def work_queues(settings: Settings, table: RoutingTable) -> list[str]:
    """Every connector and retry queue of the table: what must be empty once drained."""
    queues, _ = topology_names(settings, table)
    dead = {dead_letter_queue(settings, name) for name in table.connectors}
    return [q for q in queues if q not in dead]


async def ready_counts(settings: Settings, names: list[str]) -> dict[str, QueueCount]:
    """Ready messages and consumers per queue (passive declares); a missing queue is left out."""
    counts: dict[str, QueueCount] = {}
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in names:
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                channel = await connection.channel()  # a failed passive declare closes the channel
                continue
            result = queue.declaration_result
            counts[name] = QueueCount(result.message_count or 0, result.consumer_count or 0)
    return counts


@dataclasses.dataclass(frozen=True)
class DeadLetterSeen:
    """One message in a dead-letter queue: whose it is and why it is there."""

    connector: str
    message_type: str
    correlation_id: str
    reason: str


async def browse_dead_letters(settings: Settings, connectors: list[str]) -> list[DeadLetterSeen]:
    """Every dead letter of ``connectors``, read without taking it (the channel closes with the
    messages unacknowledged, so the broker keeps them)."""
    found: list[DeadLetterSeen] = []
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        for connector in connectors:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(dead_letter_queue(settings, connector), passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                continue
            while (message := await queue.get(fail=False, no_ack=False)) is not None:
                try:
                    envelope = msgspec.json.decode(message.body)
                    correlation_id = str(envelope.get("correlation_id", ""))
                    message_type = f"{envelope.get('contract', '')}.{envelope.get('version', '')}"
                except (msgspec.DecodeError, AttributeError):
                    correlation_id = message_type = ""
                found.append(DeadLetterSeen(connector, message_type, correlation_id, _reason(message)))
            await channel.close()
    return found


def _reason(message: AbstractIncomingMessage) -> str:
    """``<error> <status>: <detail>`` from the dead reason the runtime wrote (or the broker's
    own death record, for a message it dead-lettered past its delivery limit)."""
    raw = (message.headers or {}).get(DEAD_REASON)
    if raw is None:
        return "dead-lettered by the broker (delivery limit)"
    try:
        reason = msgspec.json.decode(raw if isinstance(raw, bytes) else str(raw).encode(), type=DeadReason)
    except msgspec.DecodeError:
        return str(raw)[:200]
    status = f" {reason.status_code}" if reason.status_code else ""
    return f"{reason.error}{status}: {reason.detail[:160]}"


async def drop_topology(settings: Settings, table: RoutingTable) -> None:
    """Delete the namespace's queues and exchanges (messages included) from the shared broker."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await delete_routing_topology(channel, settings, table)
        await channel.queue_delete(unrouted_name(settings))
        for exchange in (events_exchange_name(settings), unrouted_name(settings)):
            await channel.exchange_delete(exchange)
