"""``/v1/returns``: submit a return request and follow it."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from gateway.api._bodies import JSON, require_json
from gateway.api._deprecation import deprecation_headers
from gateway.api._open_exceptions import ReturnException, open_exceptions
from gateway.api._openapi import ReturnDocument, ReturnReceiptDocument, contract_body, problem_responses
from gateway.api._problems import add_response_headers, extra_headers
from gateway.api._security import SECURITY, authenticate, authorize, counted_once
from gateway.api.search import search
from gateway.api.services import Services
from gateway.auth import Scope
from gateway.envelope import trace_context
from gateway.intake.idempotency import HEADER, REPLAYED_HEADER, parse_key
from gateway.intake.returns import RETURN_REQUEST
from gateway.records import ReturnResource
from gateway.registry import ContractRegistry


class ReturnView(ReturnResource, frozen=True, kw_only=True):
    """``GET /v1/returns/{id}``: the return as accepted, where it stands, and what holds it up."""

    exceptions: list[ReturnException]


_encoder = msgspec.json.Encoder()


def returns_router(registry: ContractRegistry) -> Router:
    """Routes for returns, documented with the ``return-request`` contract installed."""
    contract = registry.require(*RETURN_REQUEST)

    @post(
        "/",
        status_code=202,
        summary="Submit a return request",
        description=(
            "Validates the body against `return-request` v1 and answers 202 only once the return is "
            f"durably in the broker. `{HEADER}` is required; a retry with the same key and payload "
            f"replays the first answer with `{REPLAYED_HEADER}: true`."
        ),
        operation_class=contract_body(contract),
        security=SECURITY,
        responses={
            202: ResponseSpec(
                data_container=ReturnReceiptDocument,
                description="Accepted and durably queued; the `Location` has the return with its request",
            ),
            **problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
        },
    )
    async def submit_return(request: Request[Any, Any, Any]) -> Response[bytes]:
        principal = await authenticate(request)
        services: Services = request.app.state.services
        async with counted_once(request, principal) as admission:  # counted by the claim, if it gets there
            principal.require(Scope.RETURNS_WRITE)
            add_response_headers(request, deprecation_headers(contract))
            require_json(request)
            key = parse_key(request.headers.get(HEADER))
            body = await request.body()
            accepted = await services.intake.submit(
                principal,
                key,
                body,
                trace_context(request.headers.get("traceparent"), request.headers.get("tracestate")),
                admission=admission,
            )
        headers = {**extra_headers(request), **accepted.response.headers}
        if accepted.replayed:
            headers[REPLAYED_HEADER] = "true"
        return Response(
            accepted.response.body,
            status_code=accepted.response.status_code,
            media_type=JSON,
            headers=headers,
        )

    @get(
        "/{return_id:str}",
        summary="Get a return",
        description=(
            "The return as accepted, where it stands, and its open `exceptions`: each message about it "
            "that ended in a dead-letter queue and was neither delivered again nor discarded, with the "
            "reason and a link to the dead letter on the desk (`admin` scope). Another partner's "
            "return answers 404."
        ),
        security=SECURITY,
        responses={
            200: ResponseSpec(data_container=ReturnDocument, description="The return"),
            **problem_responses(401, 403, 404, 429, 503),
        },
    )
    async def get_return(request: Request[Any, Any, Any], return_id: FromPath[str]) -> Response[bytes]:
        principal = await authorize(request, Scope.RETURNS_READ)
        services: Services = request.app.state.services
        record = await services.returns.visible_to(principal, return_id)
        state = await services.lifecycle.get(return_id)
        if state is not None:  # the lifecycle's word on where it stands
            record = msgspec.structs.replace(record, status=state.status, updated_at=state.updated_at)
        view = ReturnView.of(record, request=record.request, exceptions=open_exceptions(state))
        return Response(
            _encoder.encode(view), status_code=200, media_type=JSON, headers=extra_headers(request)
        )

    return Router(
        "/v1/returns",
        route_handlers=[submit_return, get_return, search],
        tags=["returns"],
    )
