"""Declare the delivery topology a routing table describes, idempotently, at start-up.

Per connector ``c`` (names in :mod:`gateway.broker.names`)::

    <ns>.events ──route──► <ns>.connector.c  (quorum, x-delivery-limit, dead-letters at-least-once)
                                │ rejected / over the delivery limit
                                ▼
                  <ns>.dead ──► <ns>.connector.c.dead
    runtime publishes a failure to <ns>.retry with key "c.<ms>"
                  <ns>.retry ─► <ns>.connector.c.retry.<ms>  (x-message-ttl=<ms>)
                                │ expires
                                ▼
                  <ns>.redeliver ──"c"──► <ns>.connector.c

A route on message type alone binds the connector queue straight to the topic exchange.
A route with content conditions gets its own headers exchange, bound to the topic exchange
by message type, with one ``x-match: all`` binding per combination of allowed values; its
alternate exchange is ``<ns>.unrouted``, so a message that passes no condition is kept, not
dropped. A queue reached by several routes still receives one copy per publish.

Declaring is additive: a route removed from the table leaves its bindings until they are
deleted by hand (noted in README). :func:`delete_routing_topology` removes a whole table's
topology, for test runs and benchmarks in a throw-away namespace.
"""

from __future__ import annotations

import itertools

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from gateway.broker.names import (
    condition_header,
    connector_queue,
    dead_exchange,
    dead_letter_queue,
    redeliver_exchange,
    retry_exchange,
    retry_queue,
    route_exchange,
    unrouted_name,
)
from gateway.routing._table import ConnectorSpec, Route, RoutingTable
from gateway.settings import Settings

QUORUM = {"x-queue-type": "quorum"}


async def _declare_connector(
    channel: AbstractChannel,
    settings: Settings,
    name: str,
    spec: ConnectorSpec,
    exchanges: dict[str, AbstractExchange],
) -> AbstractQueue:
    queue = await channel.declare_queue(
        connector_queue(settings, name),
        durable=True,
        arguments={
            **QUORUM,
            "x-delivery-limit": spec.delivery_limit,
            "x-dead-letter-exchange": dead_exchange(settings),
            "x-dead-letter-routing-key": name,
            # Dead-letter at least once: the broker keeps the message until the DLQ confirms it.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    await queue.bind(exchanges["redeliver"], routing_key=name)
    dead = await channel.declare_queue(dead_letter_queue(settings, name), durable=True, arguments=QUORUM)
    await dead.bind(exchanges["dead"], routing_key=name)
    for delay in spec.retry_delays_ms:
        tier = await channel.declare_queue(
            retry_queue(settings, name, delay),
            durable=True,
            arguments={
                **QUORUM,
                "x-message-ttl": delay,
                "x-dead-letter-exchange": redeliver_exchange(settings),
                "x-dead-letter-routing-key": name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        await tier.bind(exchanges["retry"], routing_key=f"{name}.{delay}")
    return queue


def _header_bindings(route: Route) -> list[dict[str, str]]:
    """One ``x-match: all`` argument set per combination of the route's allowed values."""
    fields = sorted(route.when)
    return [
        {"x-match": "all", **{condition_header(f): v for f, v in zip(fields, values, strict=True)}}
        for values in itertools.product(*(route.when[f] for f in fields))
    ]


async def _declare_route(
    channel: AbstractChannel,
    settings: Settings,
    route: Route,
    queues: dict[str, AbstractQueue],
    events: AbstractExchange,
) -> None:
    if not route.when:
        for connector in route.to:
            await queues[connector].bind(events, routing_key=route.message)
        return
    filtered = await channel.declare_exchange(
        route_exchange(settings, route.id),
        aio_pika.ExchangeType.HEADERS,
        durable=True,
        arguments={"alternate-exchange": unrouted_name(settings)},
    )
    await filtered.bind(events, routing_key=route.message)
    for arguments in _header_bindings(route):
        for connector in route.to:
            await queues[connector].bind(filtered, arguments=arguments)


async def declare_routing_topology(
    channel: AbstractChannel, settings: Settings, table: RoutingTable, events: AbstractExchange
) -> dict[str, AbstractQueue]:
    """Declare every connector's queues and every route's bindings; returns the connector queues."""
    exchanges = {
        role: await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)
        for role, name in (
            ("dead", dead_exchange(settings)),
            ("retry", retry_exchange(settings)),
            ("redeliver", redeliver_exchange(settings)),
        )
    }
    queues = {
        name: await _declare_connector(channel, settings, name, spec, exchanges)
        for name, spec in table.connectors.items()
    }
    for route in table.routes:
        await _declare_route(channel, settings, route, queues, events)
    return queues


def topology_names(settings: Settings, table: RoutingTable) -> tuple[list[str], list[str]]:
    """Every queue and exchange the table declares (for teardown and inspection)."""
    queues = [
        name
        for connector, spec in table.connectors.items()
        for name in (
            connector_queue(settings, connector),
            dead_letter_queue(settings, connector),
            *(retry_queue(settings, connector, d) for d in spec.retry_delays_ms),
        )
    ]
    exchanges = [dead_exchange(settings), retry_exchange(settings), redeliver_exchange(settings)]
    exchanges += [route_exchange(settings, r.id) for r in table.routes if r.when]
    return queues, exchanges


async def delete_routing_topology(channel: AbstractChannel, settings: Settings, table: RoutingTable) -> None:
    """Delete every queue and exchange ``table`` declares, messages included (teardown only)."""
    queues, exchanges = topology_names(settings, table)
    for queue in queues:
        await channel.queue_delete(queue)
    for exchange in exchanges:
        await channel.exchange_delete(exchange)
