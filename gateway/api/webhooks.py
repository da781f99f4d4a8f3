"""``POST /v1/webhooks/{connector}``: connected systems report what happened (receipts, scans).

Not API-key authenticated: each system signs its webhooks its own way, and the connector
that receives them verifies that signature (401 if it does not hold). So each client address
is limited per connector (``RGW_WEBHOOK_RATE_LIMIT``), counted before the body is read: 429
with ``Retry-After`` and ``RateLimit-*``, as partners' limits answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, post
from litestar.params import PathParameter

from gateway.api._openapi import problem_responses
from gateway.api._problems import add_response_headers, extra_headers
from gateway.api.services import Services
from gateway.intake.webhooks import WebhookResult

Connector = Annotated[str, PathParameter(description="Connector name, as in the routing table.")]


@post(
    "/{connector:str}",
    status_code=202,
    summary="Take a webhook from a connected system",
    description=(
        "The connector verifies the system's signature and maps the body to canonical events "
        "(receipt, inspection-result, tracking-event), which are published for the return they name. "
        "A webhook sent again is acknowledged with its events listed as duplicates."
    ),
    responses=problem_responses(401, 404, 413, 422, 429, 503),
)
async def receive_webhook(connector: Connector, request: Request[Any, Any, Any]) -> Response[WebhookResult]:
    services: Services = request.app.state.services
    source = request.client.host if request.client else "unknown"
    limit = services.settings.webhook_rate_limit
    state = await services.webhook_rate_limiter.admit(f"{source}/{connector}", limit)
    add_response_headers(request, state.headers())
    body = await request.body()
    result = await services.webhooks.receive(connector, dict(request.headers), body)
    return Response(result, status_code=202, headers=extra_headers(request))


webhooks_router = Router(path="/v1/webhooks", route_handlers=[receive_webhook], tags=["webhooks"])
