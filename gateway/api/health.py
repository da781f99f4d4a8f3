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


@get("/health/live", summary="Liveness", tags=["health"], include_in_schema=True)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", summary="Readiness: broker and Redis reachable", tags=["health"])
async def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    services: Services = request.app.state.services
    try:
        redis_ok = bool(await asyncio.wait_for(services.redis.ping(), timeout=1.0))
    except Exception:  # any failure means not ready; the probe must answer, not raise
        redis_ok = False
    broker_ok = services.publisher.ready
    ok = redis_ok and broker_ok
    return Response(
        Readiness("ready" if ok else "unavailable", broker_ok, redis_ok), status_code=200 if ok else 503
    )
