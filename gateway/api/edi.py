"""``/v1/edi/x12`` and ``/v1/edi/edifact``: interchanges in, 997 and CONTRL acknowledgments out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import FromPath, PathParameter

from gateway.api._bodies import answer
from gateway.api._openapi import problem_responses
from gateway.api._problems import extra_headers
from gateway.api._security import SECURITY, authorize
from gateway.api.services import Services
from gateway.auth import Scope
from gateway.edi import EdiResponse, ResponseStore
from gateway.edi.intake import EdiIntake
from gateway.envelope import trace_context
from gateway.errors import NotFound, UnsupportedMediaType
from gateway.intake.idempotency import REPLAYED_HEADER

X12 = "application/edi-x12"
EDIFACT = "application/edifact"
#: ``0001=ret_…,0002=ret_…``: the return each accepted transaction set (ST02, UNH 0062) became.
RETURNS_HEADER = "RGW-Returns"
#: ``true`` on the answer to a test interchange (ISA15 ``T``, UNB 0035 ``1``): nothing was submitted.
TEST_HEADER = "RGW-Test-Interchange"
#: ``0001=RQ-1,0002=RQ-2``: for a test interchange, the external id (BGN02, BGM 1004,
#: percent-encoded) each set would have become a return with.
TEST_RETURNS_HEADER = "RGW-Test-Returns"
InterchangeId = Annotated[
    str,
    PathParameter(description="`<ISA06>.<ISA13>` (`.test` after it for a test), as in the Location header."),
]
EdifactInterchangeId = Annotated[
    str,
    PathParameter(
        description="`<UNB 0004>.<UNB 0020>` (`.test` after it for a test), as in the Location header."
    ),
]


@dataclass
class _X12Body(Operation):
    """Documents the raw X12 request body, which litestar cannot infer from a handler type."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={X12: OpenAPIMediaType(schema=Schema(type="string"))},  # type: ignore[arg-type]
            required=True,
            description="One X12 interchange (ISA to IEA) of 180 transaction sets.",
        )


@dataclass
class _EdifactBody(Operation):
    """Documents the raw EDIFACT request body."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={EDIFACT: OpenAPIMediaType(schema=Schema(type="string"))},  # type: ignore[arg-type]
            required=True,
            description="One UN/EDIFACT interchange (UNA/UNB to UNZ) of RETANN messages.",
        )


def _edi(request: Request[Any, Any, Any]) -> EdiIntake:
    services: Services = request.app.state.services
    if services.edi is None:
        raise NotFound("EDI intake is not configured on this gateway")
    return services.edi


def _ack_response(
    request: Request[Any, Any, Any], ack: str, headers: dict[str, str], media_type: str = X12
) -> Response[bytes]:
    return Response(
        ack.encode(), status_code=200, media_type=media_type, headers={**extra_headers(request), **headers}
    )


def _require(request: Request[Any, Any, Any], expected: str) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != expected:
        raise UnsupportedMediaType(
            f"send the interchange as {expected}, not {media_type or 'no content type'}"
        )


async def _receive(request: Request[Any, Any, Any], media_type: str, standard: str) -> Response[bytes]:
    """One interchange of either standard in, its acknowledgment (997 or CONTRL) out."""
    principal = await authorize(request, Scope.RETURNS_WRITE)
    edi = _edi(request)
    _require(request, media_type)
    receive = edi.receive if standard == "x12" else edi.receive_edifact
    receipt = await receive(
        principal,
        await request.body(),
        trace_context(request.headers.get("traceparent"), request.headers.get("tracestate")),
    )
    headers = {"Location": f"/v1/edi/{standard}/{receipt.record.interchange_id}/ack"}
    if receipt.record.returns:  # which set became which return, to follow them over the API
        headers[RETURNS_HEADER] = ",".join(
            f"{number}={rid}" for number, rid in sorted(receipt.record.returns.items())
        )
    if receipt.record.test:  # a certification run: which sets would have become returns
        headers[TEST_HEADER] = "true"
        if receipt.record.test_returns:
            headers[TEST_RETURNS_HEADER] = ",".join(
                f"{number}={quote(external_id, safe='')}"
                for number, external_id in sorted(receipt.record.test_returns.items())
            )
    if receipt.replayed:
        headers[REPLAYED_HEADER] = "true"
    return _ack_response(request, receipt.record.ack, headers, media_type)


_ACK = ResponseSpec(
    data_container=str,
    media_type=X12,
    description="The 997 functional acknowledgment",
    generate_examples=False,
)


@post(
    "/",
    status_code=200,
    summary="Send an X12 interchange of 180 return requests",
    description=(
        "Answers with the 997 for the interchange. Each accepted 180 becomes one return through the "
        "normal intake (validation, idempotency, confirmed publish); a refused one is rejected in the 997 "
        "(AK3/AK4/AK5) while the others go through. The same interchange sent again (same sender and "
        f"ISA13) answers the first 997 with `{REPLAYED_HEADER}: true` and submits nothing twice; another "
        "interchange under an ISA13 already used is refused with 409 `edi-control-number-reused` (its "
        "`ta1` member: a TA1 with note code 025). No usable ISA or a broken interchange envelope: 400; "
        f"a sender id that is not the caller's: 403. `{RETURNS_HEADER}` names the return each accepted "
        "set (ST02) became. A test interchange (ISA15 `T`) is checked and acknowledged but submits "
        f"nothing: it answers `{TEST_HEADER}: true` and `{TEST_RETURNS_HEADER}`, the external id (BGN02) "
        "each accepted set would have become a return with."
    ),
    operation_class=_X12Body,
    security=SECURITY,
    responses={200: _ACK, **problem_responses(400, 401, 403, 409, 413, 415, 429, 503)},
)
async def receive_x12(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _receive(request, X12, "x12")


@get(
    "/{interchange_id:str}/ack",
    summary="Get the 997 sent for an interchange",
    security=SECURITY,
    responses={200: _ACK, **problem_responses(401, 403, 404, 429, 503)},
)
async def get_ack(request: Request[Any, Any, Any], interchange_id: InterchangeId) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_READ)
    record = await _edi(request).ack(principal, interchange_id)
    return _ack_response(request, record.ack, {})


class ResponseDocument(msgspec.Struct, kw_only=True):
    """A 180 response the gateway issued for a return, with the interchange as sent."""

    object: str
    id: str
    return_id: str
    decision: str
    control: int
    created_at: dt.datetime
    interchange: str


class ResponseList(msgspec.Struct, kw_only=True):
    object: str
    data: list[ResponseDocument]


def _document(response: EdiResponse) -> ResponseDocument:
    return ResponseDocument(
        object="edi_response",
        id=response.id,
        return_id=response.return_id,
        decision=response.decision,
        control=response.control,
        created_at=response.created_at,
        interchange=response.interchange,
    )


@get(
    "/returns/{return_id:str}/responses",
    summary="The 180 responses issued for a return",
    description=(
        "Every 180 the gateway sent (or keeps for the partner to fetch) about one of the partner's "
        "returns that came by EDI: authorization (RDR01 RA), partial authorization (PA) or denial (RD), "
        "oldest first, with the interchange as sent."
    ),
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=ResponseList, description="The responses"),
        **problem_responses(401, 403, 404, 429, 503),
    },
)
async def list_responses(request: Request[Any, Any, Any], return_id: FromPath[str]) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_READ)
    services: Services = request.app.state.services
    await services.returns.visible_to(principal, return_id)
    responses = await ResponseStore(services.redis, services.settings).for_return(return_id)
    return answer(request, ResponseList(object="list", data=[_document(r) for r in responses]))


@get(
    "/responses/{response_id:str}",
    summary="One 180 response, as X12",
    security=SECURITY,
    responses={
        200: ResponseSpec(
            data_container=str, media_type=X12, description="The interchange", generate_examples=False
        ),
        **problem_responses(401, 403, 404, 429, 503),
    },
)
async def get_response(request: Request[Any, Any, Any], response_id: FromPath[str]) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_READ)
    services: Services = request.app.state.services
    store = ResponseStore(services.redis, services.settings)
    response = await store.get(response_id) if len(response_id) <= 200 else None
    if response is None or (response.partner != principal.partner and not principal.is_admin):
        raise NotFound(f"no response '{response_id}' for this partner")
    return Response(
        response.interchange.encode(), status_code=200, media_type=X12, headers=extra_headers(request)
    )


edi_router = Router(
    path="/v1/edi/x12",
    route_handlers=[receive_x12, get_ack, list_responses, get_response],
    tags=["edi"],
)

_CONTRL = ResponseSpec(
    data_container=str,
    media_type=EDIFACT,
    description="The CONTRL syntax and service report",
    generate_examples=False,
)


@post(
    "/",
    status_code=200,
    summary="Send a UN/EDIFACT interchange of RETANN return announcements",
    description=(
        "Answers with a CONTRL for the interchange (UCI 7 acknowledged or 4 rejected, a UCM per "
        "message). Each accepted RETANN becomes one return through the same intake as an X12 180; "
        "a refused one is rejected in its UCM (with UCS/UCD) while the others go through. The same "
        "interchange sent again (same sender and UNB 0020) answers the first CONTRL with "
        f"`{REPLAYED_HEADER}: true` and submits nothing twice; another interchange under a UNB 0020 "
        "already used is refused with 409 `edi-control-number-reused` (its `contrl` member: UCI 4, "
        "0085 26). No UNA/UNB or unreadable text: 400; a UNB sender id that is not the caller's: 403. "
        "A test interchange (UNB 0035 `1`) is checked and acknowledged but submits nothing: it answers "
        f"`{TEST_HEADER}: true` and `{TEST_RETURNS_HEADER}`, the external id (BGM 1004) each accepted "
        "message would have become a return with."
    ),
    operation_class=_EdifactBody,
    security=SECURITY,
    responses={200: _CONTRL, **problem_responses(400, 401, 403, 409, 413, 415, 429, 503)},
)
async def receive_edifact(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _receive(request, EDIFACT, "edifact")


@get(
    "/{interchange_id:str}/ack",
    summary="Get the CONTRL sent for an EDIFACT interchange",
    security=SECURITY,
    responses={200: _CONTRL, **problem_responses(401, 403, 404, 429, 503)},
)
async def get_contrl(
    request: Request[Any, Any, Any], interchange_id: EdifactInterchangeId
) -> Response[bytes]:
    principal = await authorize(request, Scope.RETURNS_READ)
    record = await _edi(request).ack(principal, interchange_id, standard="edifact")
    return _ack_response(request, record.ack, {}, EDIFACT)


edifact_router = Router(path="/v1/edi/edifact", route_handlers=[receive_edifact, get_contrl], tags=["edi"])
