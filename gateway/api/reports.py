"""``/v1/reports``: process reports computed from the returns' timelines (see ``docs/reports.md``).

Each answer names the report, whose returns it counts, the window it looked at and the moment it
was computed, with the report's definition. ``admin`` sees every partner's returns (or one
partner's with ``partner``); a key with ``reports:read`` sees its own partner's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar import Request, Response, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from gateway.api._bodies import answer
from gateway.api._openapi import problem_responses
from gateway.api._security import SECURITY, authorize
from gateway.api.services import Services
from gateway.auth import Principal, Scope
from gateway.errors import MalformedRequest, PermissionDenied
from gateway.reporting import (
    CreditAge,
    CycleGroup,
    Exceptions,
    Percentiles,
    PostingLatency,
    QueueAge,
    ReasonCount,
    ReasonGroup,
    StatusTime,
    SupplierRecovery,
    Window,
    credit_aging,
    cycle_time,
    exceptions,
    posting_latency,
    queue_aging,
    reasons,
    status_times,
    supplier_recovery,
)

DEFAULT_DAYS = 90
"""The window when ``since`` is not given: this many days before ``until``."""
MAX_DAYS = 3660
T = TypeVar("T")

Moment = Annotated[dt.datetime | None, QueryParameter(description="With a time zone.")]
Partner = Annotated[
    str | None, QueryParameter(max_length=128, description="`admin` only: one partner's returns.")
]


class Report(msgspec.Struct, Generic[T], kw_only=True):
    object: str = "report"
    report: str
    definition: str
    partner: str | None
    """Whose returns count (``null``: every partner's)."""
    since: dt.datetime
    until: dt.datetime
    generated_at: dt.datetime
    data: T


class CycleTimeReport(Report[list[Percentiles]], kw_only=True):
    group_by: str


class StatusTimesReport(Report[list[StatusTime]], kw_only=True):
    pass


class ExceptionsReport(Report[Exceptions], kw_only=True):
    pass


class QueuesReport(Report[list[QueueAge]], kw_only=True):
    pass


class CreditAgingReport(Report[list[CreditAge]], kw_only=True):
    pass


class ReasonsReport(Report[list[ReasonCount]], kw_only=True):
    by: str


class SupplierRecoveryReport(Report[list[SupplierRecovery]], kw_only=True):
    pass


class PostingLatencyReport(Report[list[PostingLatency]], kw_only=True):
    pass


async def _window(
    request: Request[Any, Any, Any], partner: str | None, since: Moment, until: Moment
) -> tuple[Services, Window]:
    """Who may see what: ``admin`` anyone's (``partner`` narrows it), ``reports:read`` its own."""
    principal: Principal = await authorize(request)
    if not (principal.is_admin or Scope.REPORTS_READ.value in principal.scopes):
        raise PermissionDenied(
            f"reports need the '{Scope.REPORTS_READ.value}' or '{Scope.ADMIN.value}' scope"
        )
    now = dt.datetime.now(dt.UTC)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise MalformedRequest(f"{name}: give a time zone (e.g. 2026-12-01T00:00:00Z)")
    until = until or now
    since = since or until - dt.timedelta(days=DEFAULT_DAYS)
    if not dt.timedelta(0) < until - since <= dt.timedelta(days=MAX_DAYS):
        raise MalformedRequest(f"since must be before until, at most {MAX_DAYS} days apart")
    services: Services = request.app.state.services
    return services, Window(
        partner=partner if principal.is_admin else principal.partner, since=since, until=until, now=now
    )


def _head(name: str, compute: Callable[..., Awaitable[Any]], window: Window) -> dict[str, Any]:
    return {
        "report": name,
        "definition": " ".join((compute.__doc__ or "").split()),
        "partner": window.partner,
        "since": window.since,
        "until": window.until,
        "generated_at": window.now,
    }


_WINDOW_TEXT = (
    " `since` (inclusive) and `until` (exclusive, default now) bound the window, "
    f"{DEFAULT_DAYS} days by default; times need a time zone. Needs `{Scope.REPORTS_READ.value}` "
    "(the caller's returns) or `admin` (everyone's, or one `partner`'s)."
)
_RESPONSES = problem_responses(400, 401, 403, 429, 503)


def _doc(compute: Callable[..., Any]) -> str:
    return " ".join((compute.__doc__ or "").split()) + _WINDOW_TEXT


@get(
    "/cycle-time",
    summary="Cycle time from request to credit",
    description=_doc(cycle_time),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=CycleTimeReport, description="p50/p90 per group"),
        **_RESPONSES,
    },
)
async def cycle_time_report(
    request: Request[Any, Any, Any],
    group_by: Annotated[CycleGroup, QueryParameter()] = "reason",
    partner: Partner = None,
    since: Moment = None,
    until: Moment = None,
) -> Response[bytes]:
    services, window = await _window(request, partner, since, until)
    data = await cycle_time(services.database, services.settings.database, window, group_by)
    return answer(
        request, CycleTimeReport(**_head("cycle-time", cycle_time, window), group_by=group_by, data=data)
    )


def _simple(
    path: str, summary: str, compute: Callable[..., Awaitable[Any]], document: type[Report[Any]]
) -> Any:
    @get(
        path,
        summary=summary,
        description=_doc(compute),
        security=SECURITY,
        responses={200: ResponseSpec(data_container=document, description=summary), **_RESPONSES},
        name=f"report{path.replace('/', '-')}",
    )
    async def report(
        request: Request[Any, Any, Any], partner: Partner = None, since: Moment = None, until: Moment = None
    ) -> Response[bytes]:
        services, window = await _window(request, partner, since, until)
        data = await compute(services.database, services.settings.database, window)
        return answer(request, document(**_head(path.strip("/"), compute, window), data=data))

    return report


@get(
    "/reasons",
    summary="Reasons by SKU, site or carrier",
    description=_doc(reasons),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=ReasonsReport, description="Counts, most first"),
        **_RESPONSES,
    },
)
async def reasons_report(
    request: Request[Any, Any, Any],
    by: Annotated[ReasonGroup, QueryParameter()] = "sku",
    partner: Partner = None,
    since: Moment = None,
    until: Moment = None,
) -> Response[bytes]:
    services, window = await _window(request, partner, since, until)
    data = await reasons(services.database, services.settings.database, window, by)
    return answer(request, ReasonsReport(**_head("reasons", reasons, window), by=by, data=data))


reports_router = Router(
    "/v1/reports",
    route_handlers=[
        cycle_time_report,
        _simple("/status-times", "Time spent in each status", status_times, StatusTimesReport),
        _simple("/exceptions", "Exception rate and touch count", exceptions, ExceptionsReport),
        _simple("/queues", "Approval, hold and inspection queue aging", queue_aging, QueuesReport),
        _simple(
            "/credit-aging", "Credit aging: authorized, not credited yet", credit_aging, CreditAgingReport
        ),
        reasons_report,
        _simple(
            "/supplier-recovery",
            "Supplier recovery: claims raised and credited",
            supplier_recovery,
            SupplierRecoveryReport,
        ),
        _simple("/posting-latency", "ERP posting latency", posting_latency, PostingLatencyReport),
    ],
    tags=["reports"],
)
