"""Webhooks to partners: each ``return-status-changed`` event goes to every enabled endpoint the
partner registered (``/v1/webhook-endpoints``, kept in PostgreSQL), signed with that endpoint's secret.

The request is ``POST <url>`` with the event (the envelope's payload) as its JSON body and:

``RGW-Signature``
    ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
``RGW-Event-Id``
    the message id: the same on every retry, so the partner can ignore a repeat.

Only to URLs the outbound policy allows (:mod:`~gateway.partners._url_policy`): each new
connection resolves the endpoint's host, checks every address and connects to a checked one;
a refused endpoint is a permanent failure, dead-lettered with the reason, never called.
Redirects are not followed.

A 2xx answer is delivered. 408, 425, 429, any 5xx, timeouts and connection failures are
retried through the runtime's retry tiers (never sooner than ``Retry-After``); any other
answer is permanent and the message is dead-lettered with the endpoint's reply. With several
endpoints, one that took the event is recorded (per message and endpoint, in Redis) and is
not called again when the message comes back for the others. That marker may be lost with
Redis: the endpoint is then called again with the same ``RGW-Event-Id``, which it deduplicates.

In the routing table it has no ``target``, so no circuit breaker (one partner's dead endpoint
must not pause the others); its options set the HTTP client::

    partner-webhooks:
      use: gateway.partners.webhooks:PartnerWebhookConnector
      options: {timeout_seconds: 10}
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Annotated

import httpx
import msgspec

from gateway.errors import (
    DeliveryFailed,
    DependencyUnavailable,
    InvalidWebhookEndpoint,
    PermanentDeliveryFailure,
    RetryableDeliveryFailure,
    SecretsKeyError,
)
from gateway.partners._url_policy import Resolver, UrlPolicy, policy_transport
from gateway.partners.endpoints import EndpointRegistry, WebhookEndpoint
from gateway.runtime import EffectLedger
from gateway.sdk import (
    Connector,
    Delivery,
    RuntimeContext,
    TargetConfigError,
    TargetError,
    handler,
    plain_error,
    raise_for_target,
    target_errors,
    timestamped_signature,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "RGW-Signature"
EVENT_ID_HEADER = "RGW-Event-Id"


class PartnerWebhookOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The connector's ``options`` in the routing table."""

    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    """Longest wait for a partner's endpoint."""
    connect_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=30)] = 3.0
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 32


def partner_error(response: httpx.Response) -> TargetError:
    """A partner's reply as text; every 5xx is its side failing, so it is worth a retry."""
    error = plain_error(response)
    return dataclasses.replace(
        error, message=error.message[:200], retryable=True if response.status_code >= 500 else None
    )


def partner_options(connector: Connector) -> PartnerWebhookOptions:
    """A partner-facing connector's client options, or a configuration error naming it."""
    try:
        return msgspec.convert(connector.options, PartnerWebhookOptions)
    except msgspec.ValidationError as exc:
        raise TargetConfigError(f"connector {connector.name}: options: {exc}") from exc


def partner_client(config: PartnerWebhookOptions, policy: UrlPolicy | None = None) -> httpx.AsyncClient:
    """One client for the URLs partners gave us (each partner its own host, so no base URL);
    with a ``policy``, it connects only to addresses the policy checked."""
    limits = httpx.Limits(
        max_connections=config.max_connections, max_keepalive_connections=config.max_connections
    )
    return httpx.AsyncClient(
        headers={"User-Agent": "returns-gateway"},
        timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
        limits=limits,
        transport=None if policy is None else policy_transport(policy, limits=limits),
        follow_redirects=False,  # a partner's redirect is its answer, not somewhere else to post
    )


class PartnerWebhookConnector(Connector):
    """Post ``return-status-changed.v1`` events to the partner's registered endpoints."""

    _endpoints: EndpointRegistry | None = None
    _taken: EffectLedger | None = None
    _client: httpx.AsyncClient | None = None
    resolver: Resolver | None = None
    """How endpoints' host names are resolved; ``None``: ``getaddrinfo``, as in production. Set
    on the instance, or on the class as a callable object (a function there would be bound)."""

    def attach(self, context: RuntimeContext) -> None:
        config = partner_options(self)
        policy = UrlPolicy.from_settings(context.settings, resolver=self.resolver)
        if context.database is None:  # the endpoints are PostgreSQL's
            raise TargetConfigError(f"connector {self.name}: needs the database (RGW_DATABASE_URL)")
        self._endpoints = EndpointRegistry(context.database, context.settings, policy=policy)
        try:
            self._endpoints.box  # noqa: B018 -- without RGW_SECRETS_KEY, refuse to start
        except SecretsKeyError as exc:
            raise TargetConfigError(f"connector {self.name}: {exc}") from exc
        self._taken = EffectLedger(
            context.redis, context.settings, lease_seconds=context.settings.effect_lease_seconds
        )
        self._client = partner_client(config, policy)

    @handler("return-status-changed.v1")
    async def _notify(self, delivery: Delivery) -> None:
        if self._endpoints is None:
            raise TypeError(f"connector {self.name} was not attached to a runtime")
        named = delivery.payload.get("partner")
        if named is not None and named != delivery.partner:  # never send one partner's event to another
            raise PermanentDeliveryFailure(
                f"the envelope is for partner {delivery.partner!r} but the event names {named!r}"
            )
        try:
            endpoints = [e for e in await self._endpoints.list(delivery.partner) if e.enabled]
        except DependencyUnavailable as exc:  # the database (or, for the ledger, Redis) is away
            raise RetryableDeliveryFailure(f"cannot read the partner's endpoints: {exc}") from exc
        except SecretsKeyError as exc:
            raise PermanentDeliveryFailure(f"cannot sign: {exc}") from exc
        if not endpoints:
            log.debug("%s: partner %s has no endpoint, nothing to send", self.name, delivery.partner)
            return
        body = msgspec.json.encode(delivery.payload)
        results = await asyncio.gather(
            *(self._deliver_once(endpoint, delivery, body) for endpoint in endpoints), return_exceptions=True
        )
        failures: list[tuple[WebhookEndpoint, Exception]] = []
        for endpoint, result in zip(endpoints, results, strict=True):
            if isinstance(result, Exception):
                failures.append((endpoint, result))
            elif isinstance(result, BaseException):  # cancelled (a stop): not a delivery failure
                raise result
        if failures:
            raise _combined(failures)

    async def _deliver_once(self, endpoint: WebhookEndpoint, delivery: Delivery, body: bytes) -> None:
        """Post to one endpoint unless it already took this message."""
        assert self._taken is not None
        ledger = f"{self.name}:{endpoint.id}"
        claim = await self._taken.begin(ledger, delivery.message_id)
        if claim == "done":
            return
        if claim == "busy":
            raise RetryableDeliveryFailure("another worker is posting it")
        try:
            async with self._taken.holding(ledger, delivery.message_id):
                await self._post(endpoint, delivery, body)
        except BaseException:
            await self._taken.abandon(ledger, delivery.message_id)
            raise
        await self._taken.finish(ledger, delivery.message_id)

    async def _post(self, endpoint: WebhookEndpoint, delivery: Delivery, body: bytes) -> None:
        assert self._client is not None and self._endpoints is not None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: timestamped_signature(endpoint.secret, body, int(time.time())),
            EVENT_ID_HEADER: delivery.message_id,
        }
        try:  # the policy may have changed since registration; the transport checks each address
            self._endpoints.policy.check_url(endpoint.url)
            with target_errors():
                response = await self._client.post(endpoint.url, content=body, headers=headers)
        except InvalidWebhookEndpoint as exc:
            raise PermanentDeliveryFailure(f"not posted: {exc.detail}") from exc
        raise_for_target(response, partner_error)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await super().aclose()


def _combined(failures: list[tuple[WebhookEndpoint, Exception]]) -> DeliveryFailed:
    """One failure for the runtime: retryable while any endpoint may still take the event (the
    ones that took it are not called again), permanent once every failure is."""
    details = "; ".join(f"endpoint {endpoint.id}: {_detail(exc)}" for endpoint, exc in failures)
    delivery_failures = [exc for _, exc in failures if isinstance(exc, DeliveryFailed)]
    first = delivery_failures[0] if delivery_failures else None
    status_code = first.status_code if first is not None else None
    if all(isinstance(exc, PermanentDeliveryFailure) for _, exc in failures):
        return PermanentDeliveryFailure(details, status_code=status_code)
    waits = [exc.retry_after for _, exc in failures if isinstance(exc, RetryableDeliveryFailure)]
    retry_after = max((w for w in waits if w is not None), default=None)
    return RetryableDeliveryFailure(details, status_code=status_code, retry_after=retry_after)


def _detail(exc: Exception) -> str:
    return exc.detail if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__}: {exc}"
