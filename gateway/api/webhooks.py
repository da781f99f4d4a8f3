"""``POST /v1/webhooks/{connector}``: connected systems report what happened (receipts, scans).

Not API-key authenticated: each system signs its webhooks its own way, and the connector
that receives them verifies that signature (401 if it does not hold).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, post
from litestar.params import PathParameter

from gateway.api._openapi import problem_responses
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
    responses=problem_responses(401, 404, 413, 422, 503),
)
async def receive_webhook(connector: Connector, request: Request[Any, Any, Any]) -> Response[WebhookResult]:
    services: Services = request.app.state.services
    body = await request.body()
    result = await services.webhooks.receive(connector, dict(request.headers), body)
    return Response(result, status_code=202)


webhooks_router = Router(path="/v1/webhooks", route_handlers=[receive_webhook], tags=["webhooks"])
