"""``GET /v1/returns``: search returns, by what they are and where they stand, a page at a time
(registered by :func:`gateway.api.returns.returns_router`, which owns the path)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from gateway.api._bodies import answer
from gateway.api._openapi import problem_responses
from gateway.api._security import SECURITY, authorize
from gateway.api.services import Services
from gateway.auth import Scope
from gateway.reporting import DEFAULT_PAGE, MAX_PAGE, ReturnPage, ReturnQuery, Sort, search_returns

Moment = Annotated[dt.datetime | None, QueryParameter(description="With a time zone.")]


@get(
    "/",
    summary="Search returns",
    description=(
        "The caller's returns (`admin`: every partner's, or one with `partner`), filtered by current "
        "`status`, `reason_code`, `channel`, a line's `sku`, `customer` account, `external_id`, and "
        "the times they were accepted (`created_from` inclusive, `created_to` exclusive) or last "
        "changed (`updated_*`); sorted by `created_at` or `updated_at` (`-` for newest first, the "
        f"default `-created_at`, ties by id). Up to `limit` (1 to {MAX_PAGE}, default {DEFAULT_PAGE}) "
        "per page; `next_cursor` asks for the next page with the same filters and sort, and never "
        "repeats or skips a return (one accepted meanwhile shows on the first page, newest first). "
        "Each item is where the return stands; its request is at `GET /v1/returns/{id}`. Times need "
        "a time zone. Needs `returns:read` (or `admin`)."
    ),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=ReturnPage, description="One page of returns"),
        **problem_responses(400, 401, 403, 429, 503),
    },
)
async def search(
    request: Request[Any, Any, Any],
    status: Annotated[str | None, QueryParameter(max_length=64, description="Current status.")] = None,
    reason_code: Annotated[
        str | None, QueryParameter(max_length=64, description="The return's reason.")
    ] = None,
    channel: Annotated[str | None, QueryParameter(max_length=64)] = None,
    sku: Annotated[str | None, QueryParameter(max_length=128, description="A line's SKU.")] = None,
    customer: Annotated[str | None, QueryParameter(max_length=128, description="Customer account.")] = None,
    external_id: Annotated[str | None, QueryParameter(max_length=128)] = None,
    partner: Annotated[str | None, QueryParameter(max_length=128, description="`admin` only.")] = None,
    created_from: Moment = None,
    created_to: Moment = None,
    updated_from: Moment = None,
    updated_to: Moment = None,
    sort: Annotated[Sort, QueryParameter()] = "-created_at",
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[
        str | None, QueryParameter(max_length=512, description="`next_cursor` of a page.")
    ] = None,
) -> Response[bytes]:
    principal = await authorize(request)
    if not principal.is_admin:
        principal.require(Scope.RETURNS_READ)
    services: Services = request.app.state.services
    query = ReturnQuery(
        status=status,
        reason_code=reason_code,
        channel=channel,
        sku=sku,
        customer_account=customer,
        external_id=external_id,
        partner=partner,
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_from,
        updated_to=updated_to,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    page = await search_returns(services.database, services.settings.database, principal, query)
    return answer(request, page)
