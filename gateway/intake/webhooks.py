"""Webhooks from connected systems (a WMS receipt, a carrier scan) into the pipeline.

``POST /v1/webhooks/{connector}`` hands the raw request to that connector's ``receive``,
which verifies the system's signature and maps the body to canonical events. Only a connector
that is a :class:`gateway.sdk.Receiver` is built here; any other's webhook path is 404, like an
unknown connector's. Each event names its return; the gateway looks the return up (it must be
one it accepted) and publishes the event, confirmed, with the return's partner and id, like any
message.

A system that resends a webhook gets the same event ids back; the first delivery claims
each id in Redis, so a repeat is acknowledged without a second publish (and connectors
downstream deduplicate on the message id anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import msgspec
import redis.asyncio as aioredis

from gateway.broker import BrokerPublisher
from gateway.errors import (
    AuthenticationRequired,
    GatewayError,
    MalformedRequest,
    ServiceUnavailable,
    StoreUnavailable,
    UnknownConnector,
    WebhookRefused,
)
from gateway.intake.payloads import MAX_DEPTH, too_deep
from gateway.mapping import MappingCatalog
from gateway.records import ReturnStore
from gateway.routing import RoutingTable
from gateway.runtime import build_connector, connector_class
from gateway.sdk import Connector, Emitted, Inbound, Receiver, TargetConfigError, WebhookRejected
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import webhook_event_claim

log = logging.getLogger(__name__)


class WebhookResult(msgspec.Struct, frozen=True):
    """What a webhook became: the events published now, and those already taken before."""

    accepted: list[str]
    duplicates: list[str]


class WebhookIntake:
    """Builds each receiver of the routing table once; connectors that receive nothing are left
    to their own processes (no target clients, no tokens, in the HTTP edge)."""

    def __init__(
        self,
        settings: Settings,
        *,
        routing: RoutingTable | None,
        mappings: MappingCatalog | None,
        redis: aioredis.Redis,
        returns: ReturnStore,
        publisher: BrokerPublisher,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._returns = returns
        self._publisher = publisher
        self._receivers: dict[str, Connector] = {}
        for name, spec in routing.connectors.items() if routing else ():
            if spec.use is None:
                continue
            cls = connector_class(spec.use)
            if not issubclass(cls, Receiver):
                continue
            try:  # with its target where it can: a receiver may need to look something up
                self._receivers[name] = build_connector(name, spec, mappings)
            except TargetConfigError as exc:
                log.warning("webhooks for %s are taken without its target (%s)", name, exc)
                self._receivers[name] = cls(name, options=spec.options, mappings=mappings)

    async def aclose(self) -> None:
        for receiver in self._receivers.values():
            await receiver.aclose()

    async def receive(self, connector: str, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        receiver = self._receivers.get(connector)
        if not isinstance(receiver, Receiver):
            raise UnknownConnector(f"no connector {connector!r} takes webhooks here")
        if too_deep(body):  # before any receiver's parser recurses into it
            raise MalformedRequest(
                f"the body is not acceptable JSON: it nests deeper than {MAX_DEPTH} levels"
            )
        try:
            events = await receiver.receive(Inbound(headers=headers, body=body))
        except WebhookRejected as exc:
            if exc.status == 401:
                raise AuthenticationRequired(f"{connector}: {exc.detail}") from exc
            if exc.status == 404:
                raise UnknownConnector(exc.detail) from exc
            if exc.status >= 500:  # the system should send it again later
                raise ServiceUnavailable(f"{connector}: {exc.detail}", headers={"Retry-After": "30"}) from exc
            raise WebhookRefused(f"{connector}: {exc.detail}") from exc
        except GatewayError:
            raise
        except (LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            # A signed body of the wrong shape that the receiver did not refuse itself: the
            # system's request is at fault, not the gateway (the detail stays in the log).
            log.warning("%s: webhook body unreadable by its receiver: %r", connector, exc)
            raise WebhookRefused(f"{connector}: the body is not an event this connector can read") from exc
        return await self._publish(connector, events)

    async def _publish(self, connector: str, events: Sequence[Emitted]) -> WebhookResult:
        accepted: list[str] = []
        duplicates: list[str] = []
        for event in events:
            return_id = event.return_id or str(event.payload.get("return_id", ""))
            record = await self._returns.get(return_id) if return_id else None
            if record is None:
                raise WebhookRefused(
                    f"{connector}: {event.message_type} names no return we hold ({return_id!r})"
                )
            envelope = event.envelope(partner=record.partner, correlation_id=record.id)
            claim = webhook_event_claim(self._settings, connector, envelope.message_id)
            with redis_errors():
                first = await self._redis.set(claim, b"1", nx=True, ex=self._settings.idempotency_ttl_seconds)
            if not first:
                duplicates.append(envelope.message_id)
                continue
            try:
                await self._publisher.publish(envelope, event.payload)
            except BaseException:
                await self._release(claim)  # not confirmed: the system's retry must get through
                raise
            accepted.append(envelope.message_id)
        return WebhookResult(accepted, duplicates)

    async def _release(self, claim: str) -> None:
        """Give up an event id whose publish failed, whatever the failure; if Redis fails too,
        the claim lapses with its TTL (logged: that event waits for it)."""
        try:
            with redis_errors():
                await self._redis.delete(claim)
        except StoreUnavailable:
            log.error("could not release webhook event claim %s; it lapses with its TTL", claim)
