"""Who is calling, checked first thing in every API handler: key, rate limit, then scope."""

from __future__ import annotations

from typing import Any

from litestar import Request

from gateway.api._problems import add_response_headers
from gateway.auth import Principal, Scope
from gateway.services import Services

BEARER_SCHEME = "ApiKey"
SECURITY = [{BEARER_SCHEME: []}]


async def authorize(request: Request[Any, Any, Any], scope: Scope | None = None) -> Principal:
    """Authenticate the key, count the call against the partner's limit, then check ``scope``.

    A plain call at the top of each handler, not a litestar dependency: it sits on the
    hottest path, and the scope a route needs reads best where the route is written.
    """
    services: Services = request.app.state.services
    principal = await services.authenticator.authenticate(request.headers.get("authorization"))
    state = await services.rate_limiter.admit(principal.partner, principal.rate_limit)
    add_response_headers(request, state.headers())
    if scope is not None:
        principal.require(scope)
    return principal
