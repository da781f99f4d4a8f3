"""Every AMQP name of the gateway, and the headers routes test, in one place.

The edge, the routing topology, the connector runtime, the dead-letter desk and the CLI all
build names from here, so they agree on each exchange and queue of a namespace.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.settings import Settings


def events_exchange_name(settings: Settings) -> str:
    """Topic exchange every accepted message is published to."""
    return settings.amqp_name("events")


def unrouted_name(settings: Settings) -> str:
    """Alternate exchange and queue holding messages no route wanted."""
    return settings.amqp_name("unrouted")


def connector_queue(settings: Settings, connector: str) -> str:
    """Where a connector consumes its work."""
    return settings.amqp_name("connector", connector)


def dead_letter_queue(settings: Settings, connector: str) -> str:
    """Where a connector's undeliverable messages wait, with their reason, for replay or discard."""
    return settings.amqp_name("connector", connector, "dead")


def retry_queue(settings: Settings, connector: str, delay_ms: int) -> str:
    """A retry tier: messages wait ``delay_ms`` here, then return to the connector queue."""
    return settings.amqp_name("connector", connector, "retry", str(delay_ms))


def route_exchange(settings: Settings, route_id: str) -> str:
    """Headers exchange filtering a route's messages by content."""
    return settings.amqp_name("route", route_id)


def dead_exchange(settings: Settings) -> str:
    return settings.amqp_name("dead")


def retry_exchange(settings: Settings) -> str:
    return settings.amqp_name("retry")


def redeliver_exchange(settings: Settings) -> str:
    return settings.amqp_name("redeliver")


def condition_header(field: str) -> str:
    """The message header a routing condition on ``field`` tests.

    Not ``x-`` prefixed: a headers exchange leaves ``x-`` headers out of its matching.
    """
    return f"route-{field.replace('_', '-')}"


def condition_headers(partner: str, payload: Mapping[str, object]) -> dict[str, str]:
    """The headers routes can test, taken from the sender and the payload's top level."""
    values = {"partner": partner}
    for field in ("channel", "reason_code"):
        value = payload.get(field)
        if isinstance(value, str):
            values[field] = value
    return {condition_header(field): value for field, value in values.items()}
