"""Who is calling, checked first thing in every API handler: key, rate limit, then scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request

from gateway.api._problems import add_response_headers
from gateway.api.services import Services
from gateway.auth import Principal, Scope
from gateway.intake.ratelimit import Admission

BEARER_SCHEME = "ApiKey"
SECURITY = [{BEARER_SCHEME: []}]


async def authenticate(request: Request[Any, Any, Any]) -> Principal:
    """The caller behind the bearer key (401 otherwise); neither counted nor scope-checked yet."""
    services: Services = request.app.state.services
    return await services.authenticator.authenticate(request.headers.get("authorization"))


async def authorize(request: Request[Any, Any, Any], scope: Scope | None = None) -> Principal:
    """Authenticate the key, count the call against the partner's limit, then check ``scope``.

    A plain call at the top of each handler, not a litestar dependency: it sits on the
    hottest path, and the scope a route needs reads best where the route is written.
    """
    services: Services = request.app.state.services
    principal = await authenticate(request)
    state = await services.rate_limiter.admit(principal.partner, principal.rate_limit)
    add_response_headers(request, state.headers())
    if scope is not None:
        principal.require(scope)
    return principal


@asynccontextmanager
async def counted_once(request: Request[Any, Any, Any], principal: Principal) -> AsyncIterator[Admission]:
    """The request's rate-limit count, for a Redis script in the block to take along (see
    :mod:`gateway.intake.ratelimit`); whatever the block raises first, the request is counted, and
    over the limit the answer is 429 as if :func:`authorize` had counted it up front."""
    services: Services = request.app.state.services
    admission = services.rate_limiter.admission(principal.partner, principal.rate_limit)
    if not admission.deferrable:
        add_response_headers(request, (await admission.settle()).headers())
    try:
        yield admission
    except Exception:
        add_response_headers(request, (await admission.settle()).headers())
        raise
    add_response_headers(request, (await admission.settle()).headers())
