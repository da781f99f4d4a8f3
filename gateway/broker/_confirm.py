"""Publishing one message so that it counts only once the broker has it, and the errors of it.

Shared by every publisher of the project (the edge, the dead-letter desk, the connector
runtime's retry and dead-letter copies): a publish is mandatory, waits for the broker's
confirm up to a timeout, and any way it can fail (connection lost, no confirm in time, a nack,
the message returned as unroutable) becomes :class:`~gateway.errors.BrokerUnavailable`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aio_pika
from aio_pika.abc import AbstractExchange
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError
from pamqp.commands import Basic

from gateway.errors import BrokerUnavailable


@contextlib.contextmanager
def broker_errors(doing: str) -> Iterator[None]:
    """Translate aio-pika's failures into :class:`BrokerUnavailable`, saying what was being done."""
    try:
        yield
    except DeliveryError as exc:
        raise BrokerUnavailable(f"{doing}: the broker returned or refused the message: {exc!r}") from exc
    except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
        raise BrokerUnavailable(f"{doing}: {exc!r}") from exc


async def publish_confirmed(
    exchange: AbstractExchange,
    message: aio_pika.Message,
    *,
    routing_key: str,
    confirm_within: float,
    doing: str,
) -> None:
    """Publish mandatory on a confirming channel; return only once the broker acknowledged it."""
    with broker_errors(doing):
        confirmation = await exchange.publish(
            message, routing_key=routing_key, mandatory=True, timeout=confirm_within
        )
    if not isinstance(confirmation, Basic.Ack):
        raise BrokerUnavailable(f"{doing}: the broker did not acknowledge the message: {confirmation!r}")
