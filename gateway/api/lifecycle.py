"""Following and moving a return after intake: its timeline, receipts and inspections from
portals and handhelds, the inspections still to do, the approvals queue with its decisions, and
holds: returns a person stopped (or the lifecycle, for want of an invoice) until released."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import FromPath, FromQuery

from gateway.api._bodies import JSON, answer, require_json
from gateway.api._open_exceptions import linked
from gateway.api._openapi import contract_body, problem_responses
from gateway.api._security import SECURITY, authorize
from gateway.api.services import Services
from gateway.auth import Principal, Scope
from gateway.envelope import trace_context
from gateway.errors import NotFound
from gateway.intake.idempotency import HEADER, REPLAYED_HEADER, parse_key
from gateway.lifecycle import (
    APPROVALS,
    HOLDS,
    ReturnState,
    TimelineEntry,
    Verdict,
    authorized_credit,
    inspections_of,
)
from gateway.records import ReturnRecord
from gateway.registry import ContractRegistry

#: Most returns one queue listing answers (oldest first).
LIST_LIMIT = 500
#: Queue entries read at a time while filtering a shared queue for one tenant.
QUEUE_PAGE = 500


class TimelineDocument(msgspec.Struct, kw_only=True):
    """A return's audit trail, oldest first; nothing in it can be changed through the API."""

    object: str
    return_id: str
    status: str
    policy: dict[str, str]
    data: list[TimelineEntry]


def _first_line_of(record: ReturnRecord) -> TimelineDocument:
    """The timeline of a return the gateway accepted but the lifecycle has not opened yet: the
    request, as accepted (the lifecycle writes the same line, and the policy, when it opens it)."""
    requested = TimelineEntry(
        at=record.accepted_at,
        action="status_changed",
        actor={"type": "partner", "id": record.partner},
        message_id=record.message_id,
        to_status=record.status,
        detail="accepted by the gateway; the lifecycle has not taken it up yet",
    )
    return TimelineDocument(
        object="timeline", return_id=record.id, status=record.status, policy={}, data=[requested]
    )


class ReturnEventDocument(msgspec.Struct, kw_only=True):
    object: str
    id: str
    return_id: str
    type: str


class WaitingReturn(msgspec.Struct, kw_only=True):
    return_id: str
    partner: str
    external_id: str
    status: str
    waiting_since: dt.datetime
    age_seconds: int
    rule: dict[str, str] | None
    approvers_needed: int
    approvals_given: int
    findings: list[str]
    estimated_credit: list[dict[str, str]]


class InspectionToDo(msgspec.Struct, kw_only=True):
    return_id: str
    external_id: str
    rma_number: str | None
    task_number: str
    site: str
    priority: str
    requested_at: str
    due_by: str
    overdue: bool
    rule: dict[str, str]


class InspectionsDocument(msgspec.Struct, kw_only=True):
    object: str
    data: list[InspectionToDo]


class HeldReturn(msgspec.Struct, kw_only=True):
    return_id: str
    partner: str
    external_id: str
    held_since: dt.datetime
    age_seconds: int
    reason: str
    held_by: dict[str, str]
    resumes_at: str | None
    """The status a release takes it back to."""
    needs_invoice: bool
    """True when it waits for the invoice to credit: release it with ``invoice_reference``."""


class HoldsDocument(msgspec.Struct, kw_only=True):
    object: str
    data: list[HeldReturn]


class HoldDocument(msgspec.Struct, kw_only=True):
    object: str
    id: str
    return_id: str
    action: str


class ApprovalsDocument(msgspec.Struct, kw_only=True):
    object: str
    data: list[WaitingReturn]


class ApprovalDocument(msgspec.Struct, kw_only=True):
    object: str
    id: str
    return_id: str
    decision: str
    approvals_needed: int
    approvals_given: int
    complete: bool


@dataclass
class HoldBody(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="Why (required to hold); on release, the invoice to credit if one is awaited.",
            content={
                JSON: OpenAPIMediaType(
                    schema=Schema(
                        type="object",  # type: ignore[arg-type]
                        properties={
                            "reason": Schema(type="string", max_length=2000),  # type: ignore[arg-type]
                            "invoice_reference": Schema(
                                type="object",  # type: ignore[arg-type]
                                required=["number"],
                                properties={"number": Schema(type="string"), "date": Schema(type="string")},  # type: ignore[arg-type]
                            ),
                        },
                    )
                )
            },
        )


@dataclass
class ApprovalBody(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="approve or reject, with a comment for the timeline.",
            content={
                JSON: OpenAPIMediaType(
                    schema=Schema(
                        type="object",  # type: ignore[arg-type]
                        required=["decision"],
                        properties={
                            "decision": Schema(type="string", enum=["approve", "reject"]),  # type: ignore[arg-type]
                            "comment": Schema(type="string", max_length=2000),  # type: ignore[arg-type]
                            "rejection_reason": Schema(type="string"),  # type: ignore[arg-type]
                        },
                    )
                )
            },
        )


def return_events_router(registry: ContractRegistry) -> Router:
    """Timeline, receipts and inspections of one return."""

    def reporting(contract_name: str, path: str, summary: str) -> Any:
        @post(
            path,
            status_code=202,
            summary=summary,
            description=(
                f"Validates the body against `{contract_name}` v1 (`return_id` may be left out: the path "
                f"names the return) and hands it to the lifecycle. `{HEADER}` is required; a retry "
                "replays the first answer."
            ),
            operation_class=contract_body(registry.require(contract_name, "v1")),
            security=SECURITY,
            responses={
                202: ResponseSpec(
                    data_container=ReturnEventDocument, description="Accepted for the lifecycle"
                ),
                **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
            },
            operation_id=f"report_{contract_name.replace('-', '_')}",
            name=f"report-{contract_name}",
        )
        async def report(request: Request[Any, Any, Any], return_id: FromPath[str]) -> Response[bytes]:
            principal = await authorize(request, Scope.RETURNS_WRITE)
            services: Services = request.app.state.services
            require_json(request)
            key = parse_key(request.headers.get(HEADER))
            accepted = await services.events.report(
                principal,
                return_id,
                contract_name,
                key,
                await request.body(),
                trace_context(request.headers.get("traceparent"), request.headers.get("tracestate")),
            )
            headers = dict(accepted.response.headers)
            if accepted.replayed:
                headers[REPLAYED_HEADER] = "true"
            return answer(request, accepted.response.body, accepted.response.status_code, **headers)

        return report

    @get(
        "/{return_id:str}/timeline",
        summary="A return's timeline",
        description=(
            "Every step, oldest first: who or which system, what, when, the rule id and version behind "
            "each decision, the documents posted in each system and the message that carried it; a "
            "dead letter about the return (dead-lettered, replayed, delivered again, discarded) with "
            "its `href` on the dead-letter desk. "
            "Append-only: nothing in it can be changed through any API."
        ),
        security=SECURITY,
        responses={
            200: ResponseSpec(data_container=TimelineDocument, description="The timeline"),
            **problem_responses(401, 403, 404, 429, 503),
        },
    )
    async def timeline(request: Request[Any, Any, Any], return_id: FromPath[str]) -> Response[bytes]:
        principal = await authorize(request, Scope.RETURNS_READ)
        services: Services = request.app.state.services
        state = await services.lifecycle.get(return_id) if len(return_id) <= 64 else None
        if state is None:  # accepted, not opened by the lifecycle yet: its first line already holds
            record = await services.returns.visible_to(principal, return_id)
            return answer(request, _first_line_of(record))
        if not (state.partner == principal.partner or services.events.may_decide(principal, state)):
            raise NotFound(f"no return '{return_id}' for this partner")
        document = TimelineDocument(
            object="timeline",
            return_id=return_id,
            status=state.status,
            policy={"id": state.policy, "version": state.policy_version},
            data=[linked(entry) for entry in await services.lifecycle.timeline(return_id)],
        )
        return answer(request, document)

    return Router(
        "/v1/returns",
        route_handlers=[
            timeline,
            reporting("receipt", "/{return_id:str}/receipts", "Report goods received"),
            reporting("inspection-result", "/{return_id:str}/inspections", "Report an inspection"),
        ],
        tags=["lifecycle"],
    )


@get(
    "/v1/approvals",
    summary="Returns waiting for a person",
    description=(
        "The approvals queue, oldest first, with how long each has waited: returns a rule sent to "
        "approval and returns whose validation failed. Shows only returns under policies that name "
        "the caller's tenant as approver, never the caller's own returns. Needs `returns:approve`."
    ),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=ApprovalsDocument, description="The queue"),
        **problem_responses(401, 403, 429, 503),
    },
    tags=["lifecycle"],
)
async def approvals_queue(request: Request[Any, Any, Any]) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_APPROVE)
    services: Services = request.app.state.services
    now = time.time()
    waiting: list[WaitingReturn] = []
    for state, since in await _governed_queue(services, principal, APPROVALS):
        return_id = state.return_id
        verdict = state.verdict
        waiting.append(
            WaitingReturn(
                return_id=return_id,
                partner=state.partner,
                external_id=state.external_id,
                status=state.status,
                waiting_since=dt.datetime.fromtimestamp(since, dt.UTC),
                age_seconds=int(now - since),
                rule=verdict.rule if verdict else None,
                approvers_needed=state.approvals_needed,
                approvals_given=len(state.approvals),
                findings=[f.detail for f in verdict.findings] if verdict else [],
                estimated_credit=_estimate(state.request, verdict),
            )
        )
    return answer(request, ApprovalsDocument(object="list", data=waiting))


@get(
    "/v1/inspections",
    summary="Returns received and waiting for inspection",
    description=(
        "The caller's returns whose goods arrived and are not inspected yet, soonest due first, with "
        "the inspection task each got (number, site, priority, due by, the policy rule that set them) "
        "and whether it is overdue. `site` narrows it to one site. Report the result with "
        "`POST /v1/returns/{id}/inspections`. Needs `returns:read`."
    ),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=InspectionsDocument, description="The inspections to do"),
        **problem_responses(401, 403, 429, 503),
    },
    tags=["lifecycle"],
)
async def inspections_to_do(
    request: Request[Any, Any, Any], site: FromQuery[str | None] = None
) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_READ)
    services: Services = request.app.state.services
    now = dt.datetime.now(dt.UTC)
    to_do: list[InspectionToDo] = []
    for return_id, _ in await services.lifecycle.queued(inspections_of(principal.partner)):
        state = await services.lifecycle.get(return_id)
        task = state.inspection if state is not None else None
        if state is None or task is None or (site is not None and task.site != site):
            continue
        to_do.append(
            InspectionToDo(
                return_id=return_id,
                external_id=state.external_id,
                rma_number=state.rma_number,
                task_number=task.task_number,
                site=task.site,
                priority=task.priority,
                requested_at=task.requested_at,
                due_by=task.due_by,
                overdue=dt.datetime.fromisoformat(task.due_by) < now,
                rule=task.rule,
            )
        )
    return answer(request, InspectionsDocument(object="list", data=to_do))


async def _governed_queue(
    services: Services, principal: Principal, queue: tuple[str, ...]
) -> list[tuple[ReturnState, float]]:
    """The returns in a people's queue that the caller's tenant governs, never its own, oldest first
    (up to ``LIST_LIMIT``; the queue is shared by every tenant, so it is read page by page)."""
    found: list[tuple[ReturnState, float]] = []
    offset = 0
    while len(found) < LIST_LIMIT:
        page = await services.lifecycle.queued(queue, QUEUE_PAGE, offset=offset)
        for return_id, since in page:
            state = await services.lifecycle.get(return_id)
            if (
                state is not None
                and state.partner != principal.partner
                and services.events.may_decide(principal, state)
            ):
                found.append((state, since))
        if len(page) < QUEUE_PAGE:
            break
        offset += QUEUE_PAGE
    return found[:LIST_LIMIT]


def _estimate(request: dict[str, Any], verdict: Verdict | None) -> list[dict[str, str]]:
    """Estimated credit of what is authorized (of everything asked, before a verdict)."""
    lines = (
        verdict.lines
        if verdict
        else [{**ln, "authorized_quantity": ln["quantity"]} for ln in request["lines"]]
    )
    return [
        {"amount": f"{amount:.2f}", "currency": currency}
        for currency, amount in authorized_credit(request, lines).items()
    ]


@post(
    "/v1/returns/{return_id:str}/approval",
    status_code=202,
    summary="Approve or reject a return",
    description=(
        "One approver's decision on a return in the approvals queue. Needs `returns:approve`; the "
        "partner that requested the return can never approve it (403), and one approver counts once "
        "(409): a rule may require two different approvers."
    ),
    operation_class=ApprovalBody,
    security=SECURITY,
    responses={
        202: ResponseSpec(data_container=ApprovalDocument, description="Recorded; the lifecycle applies it"),
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
    },
    tags=["lifecycle"],
)
async def decide_approval(request: Request[Any, Any, Any], return_id: FromPath[str]) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_APPROVE)
    services: Services = request.app.state.services
    require_json(request)
    body = await services.events.approve(
        principal,
        return_id,
        await request.body(),
        trace_context(request.headers.get("traceparent"), request.headers.get("tracestate")),
    )
    return answer(request, body, 202)


def _holding(action: str, summary: str, description: str) -> Any:
    @post(
        f"/v1/returns/{{return_id:str}}/{action}",
        status_code=202,
        summary=summary,
        description=description + " Needs `returns:approve` under the return's policy; never on the "
        "caller's own returns (403). 409 when the return is not in a state to be "
        + ("held." if action == "hold" else "released (not on hold)."),
        operation_class=HoldBody,
        security=SECURITY,
        responses={
            202: ResponseSpec(data_container=HoldDocument, description="Recorded; the lifecycle applies it"),
            **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
        },
        tags=["lifecycle"],
        name=f"return-{action}",
    )
    async def decide(request: Request[Any, Any, Any], return_id: FromPath[str]) -> Response[bytes]:
        principal = await authorize(request, Scope.RETURNS_APPROVE)
        services: Services = request.app.state.services
        require_json(request)
        trace = trace_context(request.headers.get("traceparent"), request.headers.get("tracestate"))
        body = await services.events.hold(principal, return_id, action, await request.body(), trace)
        return answer(request, body, 202)

    return decide


@get(
    "/v1/holds",
    summary="Returns on hold",
    description=(
        "Returns stopped by a person, or by the lifecycle when a credit has no invoice to go against, "
        "oldest first, with why, by whom, where a release takes them and whether the release needs the "
        "invoice. Shows only returns under policies that name the caller's tenant as approver, never "
        "the caller's own. Needs `returns:approve`."
    ),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=HoldsDocument, description="The returns on hold"),
        **problem_responses(401, 403, 429, 503),
    },
    tags=["lifecycle"],
)
async def holds_queue(request: Request[Any, Any, Any]) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_APPROVE)
    services: Services = request.app.state.services
    now = time.time()
    held: list[HeldReturn] = []
    for state, since in await _governed_queue(services, principal, HOLDS):
        if state.status != "on_hold":
            continue
        hold = state.hold
        held.append(
            HeldReturn(
                return_id=state.return_id,
                partner=state.partner,
                external_id=state.external_id,
                held_since=dt.datetime.fromtimestamp(since, dt.UTC),
                age_seconds=int(now - since),
                reason=hold.reason if hold else "",
                held_by=dict(hold.by) if hold else {},
                resumes_at=state.resume,
                needs_invoice=bool(state.pending_credit),
            )
        )
    return answer(request, HoldsDocument(object="list", data=held))


hold_return = _holding(
    "hold",
    "Hold a return",
    "Stop a return where it stands (fraud review, a dispute): events that arrive meanwhile wait, "
    "and nothing moves until it is released. `reason` is required.",
)
release_return = _holding(
    "release",
    "Release a held return",
    "Let a held return go on: back to the status it left, with the events that waited applied. A "
    "return held because its credit had no invoice needs `invoice_reference` (422 without).",
)

approvals_router = Router(
    "/",
    route_handlers=[
        approvals_queue,
        decide_approval,
        inspections_to_do,
        holds_queue,
        hold_return,
        release_return,
    ],
)
