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

What a system answers can come back as canonical messages: ``handle`` returns them
(:meth:`Connector.event`), and the runtime publishes them, confirmed, before it records
the effect, so a crash in between re-applies (the system sees a duplicate and says so)
rather than losing the event. A system that calls us (a WMS receipt, a carrier scan)
reaches :meth:`Connector.receive` through ``POST /v1/webhooks/{connector}``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import msgspec

from gateway.envelope import Envelope, trace_context
from gateway.errors import GatewayError
from gateway.mapping import MappingCatalog
from gateway.sdk._http import TargetError, plain_error
from gateway.sdk._target import Target

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from gateway.settings import Settings


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


class Emitted(msgspec.Struct, frozen=True, kw_only=True):
    """A canonical message a connector hands back to the pipeline."""

    contract: str
    version: str
    payload: dict[str, Any]
    message_id: str
    """Stable for the same fact, so a repeat (a redelivery, a webhook sent twice) is one message."""
    return_id: str | None = None
    """The return it belongs to, when the payload does not say (``return_id``)."""

    @property
    def message_type(self) -> str:
        return f"{self.contract}.{self.version}"

    def envelope(self, *, partner: str, correlation_id: str, causation_id: str | None = None) -> Envelope:
        """The envelope it travels in, for the return it belongs to; a new trace is started."""
        return Envelope(
            message_id=self.message_id,
            correlation_id=correlation_id,
            contract=self.contract,
            version=self.version,
            partner=partner,
            occurred_at=dt.datetime.now(dt.UTC),
            trace=trace_context(None, None),
            payload=msgspec.Raw(msgspec.json.encode(self.payload)),
            causation_id=causation_id,
        )


class Inbound(msgspec.Struct, frozen=True):
    """A request a system sent us (a webhook): raw body and headers, as signed."""

    headers: Mapping[str, str]
    body: bytes


class WebhookRejected(GatewayError):
    """A webhook we refuse: bad signature (401), unreadable or unmappable body (422)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuntimeContext:
    """What the runtime lends a connector that keeps state of its own (the lifecycle
    orchestrator, partner webhooks): the deployment's settings and its Redis."""

    settings: Settings
    redis: aioredis.Redis


class Connector:
    """Base class for connectors: set ``handles`` and write ``handle``.

    A connector instance is built once per process, with the name it has in the routing
    table, the shared client of its target (if it has one) and its options.
    """

    handles: ClassVar[frozenset[str] | None] = None
    """Message types (``return-request.v1``) it applies; ``None`` takes whatever its routes send."""

    profile: ClassVar[str] = ""
    """Its folder under ``mappings/``; ``options.profile`` may name another (a customised copy)."""

    def __init__(
        self,
        name: str,
        *,
        target: Target | None = None,
        options: Mapping[str, Any] | None = None,
        mappings: MappingCatalog | None = None,
    ) -> None:
        self.name = name
        self._target = target
        self.options = dict(options or {})
        self._mappings = mappings
        if target is not None:
            target.read_error = self.read_error

    @property
    def target(self) -> Target:
        if self._target is None:
            raise TypeError(f"connector {self.name} has no target in the routing table")
        return self._target

    def attach(self, context: RuntimeContext) -> None:
        """Called once by the runtime before the first message; most connectors need nothing."""

    def takes(self, message_type: str) -> bool:
        return self.handles is None or message_type in self.handles

    async def handle(self, delivery: Delivery) -> Sequence[Emitted] | None:
        """Apply ``delivery`` to the target system, or raise a ``DeliveryFailed`` subclass.
        Return the canonical messages the system's answer means, if any."""
        raise NotImplementedError

    async def receive(self, inbound: Inbound) -> Sequence[Emitted]:
        """Turn a webhook from the system into canonical messages, or raise ``WebhookRejected``."""
        raise WebhookRejected(404, f"connector {self.name} takes no webhooks")

    def read_error(self, response: httpx.Response) -> TargetError:
        """Read the system's error format (its message, code, and whether to retry)."""
        return plain_error(response)

    # -- helpers for subclasses ---------------------------------------------------------
    @property
    def mapping_profile(self) -> str:
        return str(self.options.get("profile", self.profile))

    def map(self, name: str, data: Any, delivery: Delivery | None = None, **variables: Any) -> Any:
        """Apply mapping ``<profile>/<name>`` (``return-request.v1.outbound``) to ``data``."""
        if self._mappings is None:
            raise TypeError(f"connector {self.name} was built without mappings")
        if delivery is not None:
            variables = {
                "message_id": delivery.message_id,
                "correlation_id": delivery.correlation_id,
                "partner": delivery.partner,
                "occurred_at": delivery.occurred_at.isoformat(),
                **variables,
            }
        return self._mappings.get(self.mapping_profile, name).apply(
            data, {"connector": self.name, **variables}
        )

    def event(self, message_type: str, payload: dict[str, Any], message_id: str, **extra: Any) -> Emitted:
        """A canonical message to publish; ``message_type`` is ``return-authorization.v1``."""
        contract, _, version = message_type.rpartition(".")
        return Emitted(contract=contract, version=version, payload=payload, message_id=message_id, **extra)

    async def aclose(self) -> None:
        """Release what the connector holds; called once at shutdown."""
        if self._target is not None:
            await self._target.aclose()
