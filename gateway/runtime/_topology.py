"""Declaring everything a connector needs before it consumes, from the routing table."""

from __future__ import annotations

import aio_pika

from gateway.broker import declare_edge_topology
from gateway.routing import RoutingTable, declare_routing_topology
from gateway.settings import Settings


async def declare_topology(settings: Settings, table: RoutingTable) -> None:
    """Declare the edge and the table's delivery topology on a short-lived connection."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        events = await declare_edge_topology(channel, settings)
        await declare_routing_topology(channel, settings, table, events)
    finally:
        await connection.close()
