"""Liveness and readiness probes (unauthenticated, for orchestrators)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, get

from gateway.api.services import Services


class Readiness(msgspec.Struct):
    status: str
    broker: bool
    redis: bool
    database: bool


@get("/health/live", summary="Liveness", tags=["health"], include_in_schema=True)
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def _database_answers(services: Services) -> bool:
    async with services.database.connection(timeout=1.0) as connection:
        await connection.execute("SELECT 1")
    return True


@get("/health/ready", summary="Readiness: broker, Redis and PostgreSQL reachable", tags=["health"])
async def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    services: Services = request.app.state.services
    try:
        redis_ok = bool(await asyncio.wait_for(services.redis.ping(), timeout=1.0))
    except Exception:  # any failure means not ready; the probe must answer, not raise
        redis_ok = False
    try:
        database_ok = await asyncio.wait_for(_database_answers(services), timeout=2.0)
    except Exception:  # the record is unreachable: not ready, whatever the reason
        database_ok = False
    broker_ok = services.publisher.ready
    ok = redis_ok and broker_ok and database_ok
    return Response(
        Readiness("ready" if ok else "unavailable", broker_ok, redis_ok, database_ok),
        status_code=200 if ok else 503,
    )
