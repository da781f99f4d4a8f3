"""The floor: the least an HTTP endpoint can do and still publish a return like the gateway.

``POST /floor`` decodes the JSON body with msgspec and publishes it, in the gateway's own
envelope, through the gateway's own :class:`~gateway.broker.BrokerPublisher` (persistent,
mandatory, publisher confirms, same topology under its own namespace), then answers 202.
No validation, no authentication, no Redis: whatever the gateway costs above this floor is
the price of governance, which is what ``bench.intake`` measures.

Run with ``uvicorn --factory bench.floor_app:create_app``; settings come from ``RGW_*``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException

from gateway.broker import BrokerPublisher
from gateway.envelope import Envelope, trace_context
from gateway.errors import BrokerUnavailable
from gateway.intake.returns import RETURN_REQUEST, new_ids
from gateway.settings import Settings

PARTNER = "floor"
"""Partner recorded in the envelope; the floor authenticates nobody."""

JSON = "application/json"
_json = msgspec.json.Encoder()


def _decode(body: bytes) -> None:
    """Parse the body as the gateway does (the parse is part of the floor's cost), else 400."""
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=400, detail=f"the body is not valid JSON: {exc}") from exc


def _envelope(request: Request[Any, Any, Any], body: bytes) -> Envelope:
    """The envelope the gateway would publish for this body, so the broker does the same work."""
    return_id, message_id = new_ids()
    contract, version = RETURN_REQUEST
    return Envelope(
        message_id=message_id,
        correlation_id=return_id,
        contract=contract,
        version=version,
        partner=PARTNER,
        occurred_at=dt.datetime.now(dt.UTC),
        trace=trace_context(request.headers.get("traceparent"), request.headers.get("tracestate")),
        payload=msgspec.Raw(body),
    )


def _unavailable(_: Request[Any, Any, Any], exc: BrokerUnavailable) -> Response[bytes]:
    """A failed publish is a 503, as on the gateway, so the benchmark counts it as such."""
    return Response(_json.encode({"detail": str(exc)}), status_code=503, media_type=JSON)


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the floor app around one broker publisher opened and closed by the lifespan."""
    settings = settings or Settings.from_env()
    publisher = BrokerPublisher(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await publisher.close()

    @post("/floor", status_code=202)
    async def floor(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        _decode(body)
        envelope = _envelope(request, body)
        await publisher.publish(envelope)
        return Response(_json.encode({"message_id": envelope.message_id}), status_code=202, media_type=JSON)

    @get("/health/ready")
    async def ready() -> Response[bytes]:
        """Lets the benchmark wait until the broker connection is up, without publishing."""
        status = 200 if publisher.ready else 503
        return Response(_json.encode({"broker": publisher.ready}), status_code=status, media_type=JSON)

    return Litestar(
        route_handlers=[floor, ready],
        lifespan=[lifespan],
        exception_handlers={BrokerUnavailable: _unavailable},
        debug=False,
    )
