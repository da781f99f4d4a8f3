"""Who is calling, checked before any handler runs: key, rate limit, then scope."""

from __future__ import annotations

from typing import Any

from litestar import Request

from gateway.auth import Principal, Scope
from gateway.services import Services

SCOPE_OPT = "scope"
BEARER_SCHEME = "ApiKey"
SECURITY = [{BEARER_SCHEME: []}]


def add_response_headers(request: Request[Any, Any, Any], headers: dict[str, str]) -> None:
    """Headers to send with this request's response, success or problem."""
    request.scope.setdefault("state", {}).setdefault("response_headers", {}).update(headers)


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Authenticate the key, count the call against the partner's limit, check the route's scope."""
    services: Services = request.app.state.services
    principal = await services.authenticator.authenticate(request.headers.get("authorization"))
    state = await services.rate_limiter.admit(principal.partner, principal.rate_limit)
    add_response_headers(request, state.headers())
    scope: Scope | None = request.route_handler.opt.get(SCOPE_OPT)
    if scope is not None:
        principal.require(scope)
    return principal
