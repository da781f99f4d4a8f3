"""What an integration engineer writes: a connector is a name, the message types it takes,
and one async handler that applies a message to its system.

    class ErpConnector(Connector):
        name = "erp"
        handles = frozenset({"return-request.v1"})

        async def handle(self, delivery: Delivery) -> None:
            response = await self.client.post("/returns", json=..., headers={
                "Idempotency-Key": delivery.idempotency_key})
            raise_for_target(response)

Everything else (consuming, acknowledging after the effect, retries with backoff, dead
letters, deduplication) is the runtime's job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import msgspec


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One message as a connector sees it."""

    message_id: str
    correlation_id: str
    contract: str
    version: str
    partner: str
    occurred_at: dt.datetime
    payload: dict[str, Any]
    attempt: int = 1
    """1 on the first try, 2 on the first retry, and so on."""

    @property
    def message_type(self) -> str:
        return f"{self.contract}.{self.version}"

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and redeliveries: pass it to the target so it can dedupe too."""
        return self.message_id


class Connector:
    """Base class for connectors; subclasses set ``name`` and ``handles`` and write ``handle``."""

    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]

    async def handle(self, delivery: Delivery) -> None:
        """Apply ``delivery`` to the target system, or raise a ``DeliveryFailed`` subclass."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the connector holds (its HTTP client); called once at shutdown."""
