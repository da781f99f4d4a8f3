"""``/v1/admin``: the operators' dead-letter desk and its audit log (``admin`` scope only)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter

from gateway.api._bodies import answer, decode_body, json_body
from gateway.api._openapi import problem_responses
from gateway.api._problems import PROBLEM_JSON, Problem
from gateway.api._security import SECURITY, authorize
from gateway.api.services import Services
from gateway.auth import Principal, Scope
from gateway.deadletters import (
    AuditEntry,
    BulkReplayResult,
    DeadLetter,
    DeadLetterDesk,
    DiscardResult,
    QueueListing,
    ReplayResult,
)

MAX_LIMIT = 500

Text = Annotated[str, msgspec.Meta(max_length=2000)]
Connector = Annotated[str, PathParameter(description="Connector name, as in the routing table.")]
MessageId = Annotated[str, PathParameter(description="The dead letter's message id.")]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="How many to return (per connector).")]

T = TypeVar("T")


class ReplayRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Replay one dead letter, optionally with a corrected payload."""

    payload: dict[str, Any] | None = None
    """Replaces the envelope's payload; checked against its contract, sent under a new message id."""
    note: Text | None = None


class BulkReplayRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Replay every dead letter of a connector, as they are."""

    note: Text | None = None


class DiscardRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Discard one dead letter for good."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class DeadLetterList(msgspec.Struct, kw_only=True):
    object: str
    data: list[QueueListing]


class AuditList(msgspec.Struct, kw_only=True):
    object: str
    data: list[AuditEntry]


_encoder = msgspec.json.Encoder()

_NOT_FOUND = ResponseSpec(
    data_container=Problem,
    media_type=PROBLEM_JSON,
    description="No such connector in the routing table, or no such message in its dead-letter queue",
)
_REFUSED = ResponseSpec(
    data_container=Problem,
    media_type=PROBLEM_JSON,
    description="The corrected payload violates the envelope's contract (every violation listed); "
    "nothing was changed",
)


async def _admin(request: Request[Any, Any, Any]) -> tuple[Principal, DeadLetterDesk]:
    principal = await authorize(request, Scope.ADMIN)
    services: Services = request.app.state.services
    return principal, services.deadletters


def _actor(principal: Principal) -> str:
    return f"key:{principal.key_id}"


@get(
    "/dead-letters",
    summary="List dead letters",
    description="The first `limit` dead letters of one connector, or of every connector in the routing "
    "table, with each queue's depth. Browsing takes nothing from the queues.",
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=DeadLetterList, description="Dead letters per connector"),
        404: _NOT_FOUND,
        **problem_responses(400, 401, 403, 429, 503),
    },
)
async def list_dead_letters(
    request: Request[Any, Any, Any],
    connector: Annotated[str | None, QueryParameter(description="Only this connector.")] = None,
    limit: Limit = 50,
) -> Response[bytes]:
    _, desk = await _admin(request)
    queues = [await desk.list(connector, limit)] if connector is not None else await desk.list_all(limit)
    return answer(request, DeadLetterList(object="list", data=queues))


@get(
    "/dead-letters/{connector:str}/{message_id:str}",
    summary="Show a dead letter",
    description="The envelope, every header and the reason it died. Browsing takes nothing from the queue.",
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=DeadLetter, description="The dead letter"),
        404: _NOT_FOUND,
        **problem_responses(400, 401, 403, 429, 503),
    },
)
async def show_dead_letter(
    request: Request[Any, Any, Any], connector: Connector, message_id: MessageId
) -> Response[bytes]:
    _, desk = await _admin(request)
    return answer(request, await desk.show(connector, message_id))


@post(
    "/dead-letters/{connector:str}/{message_id:str}/replay",
    status_code=202,
    summary="Replay a dead letter",
    description="Sends it back to this connector alone, once the broker confirmed the copy, failure "
    "headers reset. With a corrected `payload` it is checked against its contract first and sent "
    "under a new message id derived from the old one and the payload.",
    operation_class=json_body(ReplayRequest, required=False),
    security=SECURITY,
    responses={
        202: ResponseSpec(data_container=ReplayResult, description="Replayed; under which message id"),
        404: _NOT_FOUND,
        422: _REFUSED,
        **problem_responses(400, 401, 403, 429, 503),
    },
)
async def replay_dead_letter(
    request: Request[Any, Any, Any], connector: Connector, message_id: MessageId
) -> Response[bytes]:
    principal, desk = await _admin(request)
    body = await decode_body(request, ReplayRequest)
    result = await desk.replay(
        connector, message_id, payload=body.payload, actor=_actor(principal), note=body.note
    )
    return answer(request, result, 202)


@post(
    "/dead-letters/{connector:str}/replay",
    status_code=202,
    summary="Replay every dead letter of a connector",
    description="Replays, as they are, exactly the dead letters present when the call starts; one that "
    "dies again meanwhile waits for the next replay.",
    operation_class=json_body(BulkReplayRequest, required=False),
    security=SECURITY,
    responses={
        202: ResponseSpec(data_container=BulkReplayResult, description="How many were replayed"),
        404: _NOT_FOUND,
        **problem_responses(400, 401, 403, 429, 503),
    },
)
async def replay_all_dead_letters(request: Request[Any, Any, Any], connector: Connector) -> Response[bytes]:
    principal, desk = await _admin(request)
    body = await decode_body(request, BulkReplayRequest)
    result = await desk.replay_all(connector, actor=_actor(principal), note=body.note)
    return answer(request, result, 202)


@post(
    "/dead-letters/{connector:str}/{message_id:str}/discard",
    status_code=200,
    summary="Discard a dead letter",
    description="Removes it for good; the reason is required and kept in the audit log.",
    operation_class=json_body(DiscardRequest, required=True),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=DiscardResult, description="Discarded"),
        404: _NOT_FOUND,
        **problem_responses(400, 401, 403, 429, 503),
    },
)
async def discard_dead_letter(
    request: Request[Any, Any, Any], connector: Connector, message_id: MessageId
) -> Response[bytes]:
    principal, desk = await _admin(request)
    body = await decode_body(request, DiscardRequest)
    result = await desk.discard(connector, message_id, actor=_actor(principal), reason=body.reason)
    return answer(request, result)


@get(
    "/audit",
    summary="Audit log",
    description="Who replayed or discarded which dead letter, and why; newest first.",
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=AuditList, description="Audit entries, newest first"),
        **problem_responses(400, 401, 403, 429, 503),
    },
)
async def audit_log(request: Request[Any, Any, Any], limit: Limit = 50) -> Response[bytes]:
    _, desk = await _admin(request)
    return answer(request, AuditList(object="list", data=await desk.audit.recent(limit)))


admin_router = Router(
    "/v1/admin",
    route_handlers=[
        list_dead_letters,
        show_dead_letter,
        replay_dead_letter,
        replay_all_dead_letters,
        discard_dead_letter,
        audit_log,
    ],
    tags=["admin"],
)
