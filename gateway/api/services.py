"""Everything the gateway holds open while it runs, started and stopped in one place."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass

import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractExchange
from psycopg_pool import AsyncConnectionPool

from gateway.auth import Authenticator, KeyStore
from gateway.broker import BrokerPublisher
from gateway.database import ensure_schema_current, open_database
from gateway.deadletters import DeadLetterDesk
from gateway.edi import MAPPING as EDI_MAPPING
from gateway.edi import PartnerDirectory, ReturnNoticeMapper
from gateway.edi.intake import EdiIntake
from gateway.errors import from_setting
from gateway.intake.idempotency import IdempotencyStore
from gateway.intake.ratelimit import PartnerRateLimiter
from gateway.intake.return_events import ReturnEvents
from gateway.intake.returns import RETURN_REQUEST, ReturnIntake
from gateway.intake.webhooks import WebhookIntake
from gateway.lifecycle import LifecycleStore, PolicyBook
from gateway.mapping import MappingCatalog
from gateway.partners.endpoints import EndpointRegistry
from gateway.records import ReturnStore
from gateway.registry import ContractRegistry
from gateway.routing import RoutingTable, declare_routing_topology
from gateway.settings import Settings
from gateway.storage import connect_redis
from gateway.storage.keys import rate_limit_prefix, webhook_rate_limit_prefix


@dataclass(kw_only=True)
class Services:
    """The gateway's long-lived collaborators, built from settings."""

    settings: Settings
    registry: ContractRegistry
    redis: aioredis.Redis
    database: AsyncConnectionPool
    """The record (PostgreSQL, ``RGW_DATABASE_URL``); Redis keeps only what may be lost."""
    keys: KeyStore
    authenticator: Authenticator
    rate_limiter: PartnerRateLimiter
    returns: ReturnStore
    publisher: BrokerPublisher
    intake: ReturnIntake
    deadletters: DeadLetterDesk
    """Operators' dead-letter desk; connects to the broker on first use."""
    webhooks: WebhookIntake
    lifecycle: LifecycleStore
    """Where each return stands, its timeline and the approvals queue (written by the orchestrator)."""
    events: ReturnEvents
    webhook_rate_limiter: PartnerRateLimiter
    """Per client address and connector on the unauthenticated ``/v1/webhooks/{connector}``."""
    webhook_endpoints: EndpointRegistry
    """Partners' webhook endpoints, with the outbound URL policy and the secrets' keys."""
    edi: EdiIntake | None = None
    """X12 intake; present when the mappings loaded include ``mappings/edi``."""

    @classmethod
    async def start(
        cls,
        settings: Settings,
        registry: ContractRegistry,
        stack: AsyncExitStack,
        routing: RoutingTable | None = None,
        mappings: MappingCatalog | None = None,
        policies: PolicyBook | None = None,
        partners: PartnerDirectory | None = None,
    ) -> Services:
        """Open Redis and the broker; ``stack`` closes them in reverse order.

        With a routing table, its connector queues and bindings are declared on every
        (re)connection, before the first message is published.
        """
        redis = connect_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        with from_setting("RGW_DATABASE_URL"):  # never serve on a schema that is not this code's
            await asyncio.to_thread(ensure_schema_current, settings.database)
        database = await open_database(settings)
        stack.push_async_callback(database.close)

        async def declare_routes(channel: AbstractChannel, events: AbstractExchange) -> None:
            if routing is not None:
                await declare_routing_topology(channel, settings, routing, events)

        publisher = BrokerPublisher(settings, topology=declare_routes)
        await publisher.start()
        stack.push_async_callback(publisher.close)
        deadletters = DeadLetterDesk(settings, registry=registry, database=database, routing=routing)
        stack.push_async_callback(deadletters.aclose)
        keys = KeyStore(database, settings)
        returns = ReturnStore(database, settings)
        idempotency = IdempotencyStore(redis, settings)
        stack.push_async_callback(idempotency.aclose)
        lifecycle = LifecycleStore(database, settings)
        policies = policies or PolicyBook.load(settings.policies_dir, settings.contracts_dir)
        webhooks = WebhookIntake(
            settings, routing=routing, mappings=mappings, redis=redis, returns=returns, publisher=publisher
        )
        stack.push_async_callback(webhooks.aclose)
        contract = registry.require(*RETURN_REQUEST)
        intake = ReturnIntake(
            contract=contract,
            idempotency=idempotency,
            returns=returns,
            publisher=publisher,
        )
        edi = None
        if mappings is not None and mappings.has(*EDI_MAPPING):
            edi = EdiIntake(
                settings,
                partners=partners or PartnerDirectory({}),
                mapper=ReturnNoticeMapper.from_catalog(mappings, contract),
                intake=intake,
                redis=redis,
                database=database,
            )
        return cls(
            settings=settings,
            registry=registry,
            redis=redis,
            database=database,
            keys=keys,
            authenticator=Authenticator(
                keys,
                cache_seconds=settings.auth_cache_seconds,
                default_rate_limit=settings.default_rate_limit,
            ),
            rate_limiter=PartnerRateLimiter(redis, key_prefix=rate_limit_prefix(settings)),
            returns=returns,
            publisher=publisher,
            intake=intake,
            lifecycle=lifecycle,
            events=ReturnEvents(
                settings,
                registry=registry,
                idempotency=idempotency,
                returns=returns,
                lifecycle=lifecycle,
                policies=policies,
                publisher=publisher,
            ),
            deadletters=deadletters,
            webhooks=webhooks,
            webhook_rate_limiter=PartnerRateLimiter(
                redis, key_prefix=webhook_rate_limit_prefix(settings), subject="webhook source"
            ),
            webhook_endpoints=EndpointRegistry(database, settings),
            edi=edi,
        )
