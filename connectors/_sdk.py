"""What an integration engineer writes: the message types a connector takes, and one async
handler that applies a message to its system.

    class ErpConnector(Connector):
        handles = frozenset({"return-request.v1"})

        async def handle(self, delivery: Delivery) -> None:
            await self.target.post("/returns", json=to_erp(delivery.payload),
                                   idempotency_key=delivery.idempotency_key)

The routing table names the class (``use: mypackage.erp:ErpConnector``), its target and
its options. Everything else (consuming, acknowledging after the effect, retries with
backoff, the circuit breaker, dead letters, deduplication) is the runtime's job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from connectors._target import Target


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
    """Base class for connectors: set ``handles`` and write ``handle``.

    A connector instance is built once per process, with the name it has in the routing
    table, the shared client of its target (if it has one) and its options.
    """

    handles: ClassVar[frozenset[str] | None] = None
    """Message types (``return-request.v1``) it applies; ``None`` takes whatever its routes send."""

    def __init__(
        self, name: str, *, target: Target | None = None, options: Mapping[str, Any] | None = None
    ) -> None:
        self.name = name
        self._target = target
        self.options = dict(options or {})

    @property
    def target(self) -> Target:
        if self._target is None:
            raise TypeError(f"connector {self.name} has no target in the routing table")
        return self._target

    def takes(self, message_type: str) -> bool:
        return self.handles is None or message_type in self.handles

    async def handle(self, delivery: Delivery) -> None:
        """Apply ``delivery`` to the target system, or raise a ``DeliveryFailed`` subclass."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the connector holds; called once at shutdown."""
        if self._target is not None:
            await self._target.aclose()
