"""The errors of talking to RabbitMQ, as the gateway reports them.

Any way an operation on the broker can fail (connection lost, no confirm in time, a nack,
the message returned as unroutable) becomes :class:`~gateway.errors.BrokerUnavailable`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError

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
