"""What an integration engineer writes: one async method per message type the connector
applies to its system, each declared with :func:`handler`.

    class ErpConnector(Connector):
        @handler("return-request.v1")
        async def create_return(self, delivery: Delivery) -> None:
            await self.target.post("/returns", json=to_erp(delivery.payload),
                                   idempotency_key=delivery.idempotency_key)

        @handler("credit-memo.v1")
        async def post_credit(self, delivery: Delivery) -> Sequence[Emitted]:
            ...

The declarations are the connector's table: ``handles`` (the types it takes) is derived from
it, and :meth:`Connector.handle` dispatches each delivery to its method, so a type listed is
never acknowledged without being applied. The routing table names the class
(``use: mypackage.erp:ErpConnector``), its target and its options. Everything else (consuming,
acknowledging after the effect, retries with backoff, the circuit breaker, dead letters,
deduplication) is the runtime's job.

What a system answers can come back as canonical messages: a handler returns them
(:meth:`Connector.event`), and the runtime publishes them, confirmed, before it records
the effect, so a crash in between re-applies (the system sees a duplicate and says so)
rather than losing the event. A system that calls us (a WMS receipt, a carrier scan) is
received by a connector that is also a :class:`Receiver`: ``POST /v1/webhooks/{connector}``
reaches its :meth:`Receiver.receive`.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx
import msgspec

from gateway.envelope import Envelope, trace_context
from gateway.errors import GatewayError, PermanentDeliveryFailure
from gateway.mapping import MappingCatalog
from gateway.sdk._http import TargetError, plain_error
from gateway.sdk._target import Target

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from psycopg_pool import AsyncConnectionPool

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


MAX_MESSAGE_ID_BYTES = 200
"""Longest message id an event keeps as it is; AMQP holds at most 255 bytes in a message id."""


def bounded_message_id(message_id: str) -> str:
    """``message_id`` itself when short enough, else its first bytes and its SHA-256: ids derived
    from a system's own ids can be any length, and the broker refuses a message id over 255
    bytes. The same long id always gives the same bounded one, so a repeat is still a repeat."""
    raw = message_id.encode()
    if len(raw) <= MAX_MESSAGE_ID_BYTES:
        return message_id
    head = raw[:100].decode(errors="ignore")
    return f"{head}.sha256-{hashlib.sha256(raw).hexdigest()}"


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
            message_id=bounded_message_id(self.message_id),
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


_DECLARED = "__gateway_message_types__"
"""Where :func:`handler` leaves the message types on the method it declares."""

H = TypeVar("H", bound=Callable[..., Awaitable[Sequence[Emitted] | None]])


def handler(*message_types: str) -> Callable[[H], H]:
    """Declare the connector method that applies ``message_types`` (``return-request.v1``).

    The method is ``async def name(self, delivery: Delivery)``; it returns the canonical
    messages the system's answer means, or ``None``. A type is declared once per class; a
    subclass inherits its bases' declarations and may add types or declare a type again
    (its method then applies it). ``handles`` is derived from the declarations: a connector
    that declares its methods does not set it.
    """
    if not message_types:
        raise TypeError("@handler needs at least one message type (return-request.v1)")
    for message_type in message_types:
        contract, _, version = str(message_type).rpartition(".")
        if not isinstance(message_type, str) or not (contract and version):
            raise TypeError(f"@handler: {message_type!r} is not a message type (contract.version)")
    if len(set(message_types)) != len(message_types):
        raise TypeError(f"@handler: a message type is named twice in {message_types}")

    def declare(method: H) -> H:
        if not inspect.iscoroutinefunction(method):
            raise TypeError(f"@handler: {getattr(method, '__qualname__', method)!r} must be an async method")
        setattr(method, _DECLARED, (*getattr(method, _DECLARED, ()), *message_types))
        return method

    return declare


def _declared_in(cls: type) -> dict[str, str]:
    """The message types ``cls`` itself declares (not its bases), each with its method's name."""
    table: dict[str, str] = {}
    for attribute, value in vars(cls).items():
        for message_type in getattr(value, _DECLARED, ()):
            if message_type in table:
                raise TypeError(
                    f"{cls.__qualname__} declares {message_type} twice "
                    f"(in {table[message_type]} and in {attribute})"
                )
            table[message_type] = attribute
    return table


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuntimeContext:
    """What the runtime lends a connector that keeps state of its own (the lifecycle
    orchestrator, partner webhooks): the deployment's settings, its Redis (what may be lost)
    and its PostgreSQL pool (the record)."""

    settings: Settings
    redis: aioredis.Redis
    database: AsyncConnectionPool | None = None
    """The process's pool on ``RGW_DATABASE_URL``; ``None`` only where no connector needs it."""


class Connector:
    """Base class for connectors: declare one method per message type with :func:`handler`.

    A connector instance is built once per process, with the name it has in the routing
    table, the shared client of its target (if it has one) and its options.

    A connector that takes whatever its routes send (:class:`gateway.builtin.webhook.WebhookConnector`)
    declares nothing and overrides :meth:`handle` instead.
    """

    handles: ClassVar[frozenset[str] | None] = None
    """Message types (``return-request.v1``) it applies, derived from its :func:`handler`
    declarations; ``None`` (nothing declared) takes whatever its routes send."""

    profile: ClassVar[str] = ""
    """Its folder under ``mappings/``; ``options.profile`` may name another (a customised copy)."""

    _handlers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Message type → name of the method that applies it: the declarations of the class and its bases."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, str] = {}
        for klass in reversed(cls.__mro__):  # bases first: a subclass's declaration wins
            own = _declared_in(klass)
            redeclared = {own[message_type] for message_type in own}
            # a method declared again says anew what it applies
            table = {t: name for t, name in table.items() if name not in redeclared}
            table.update(own)
        explicit = [
            klass.__qualname__
            for klass in cls.__mro__
            if klass is not Connector and "handles" in vars(klass) and not vars(klass).get("_handlers")
        ]
        if table and explicit:
            raise TypeError(
                f"{cls.__qualname__}: {explicit[0]} sets handles and @handler methods declare "
                f"{', '.join(sorted(table))}; declare every type with @handler instead"
            )
        cls._handlers = MappingProxyType(table)
        if table:
            cls.handles = frozenset(table)

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
    def has_target(self) -> bool:
        """Whether it calls a system of its own through the routing table's target (the runtime
        breaks the circuit to that system; a connector without one has no circuit to open)."""
        return self._target is not None

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
        """Apply ``delivery`` to the target system through the method declared for its type
        (:func:`handler`), or raise a ``DeliveryFailed`` subclass. Return the canonical messages
        the system's answer means, if any. A type with no method is refused, never acknowledged."""
        method = self._handlers.get(delivery.message_type)
        if method is None:
            raise PermanentDeliveryFailure(f"connector {self.name} does not handle {delivery.message_type}")
        applied: Sequence[Emitted] | None = await getattr(self, method)(delivery)
        return applied

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


class Receiver(abc.ABC):
    """The role of a connector its system calls (a WMS receipt, a carrier scan): mixed into a
    :class:`Connector`, it makes ``POST /v1/webhooks/{connector}`` reach :meth:`receive`.

        class WmsConnector(Connector, Receiver):
            async def receive(self, inbound: Inbound) -> Sequence[Emitted]: ...

    A connector that is not a receiver is not built by the HTTP edge, and its webhook path is
    404 like an unknown connector's.
    """

    @abc.abstractmethod
    async def receive(self, inbound: Inbound) -> Sequence[Emitted]:
        """Turn a webhook from the system into canonical messages, or raise ``WebhookRejected``."""
