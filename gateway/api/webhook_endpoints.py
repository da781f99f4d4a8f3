"""``/v1/webhook-endpoints``: a partner registers where its ``return-status-changed`` events go.

Every call needs the ``webhooks:manage`` scope and acts on the caller's own partner only: an
endpoint of another partner answers 404, like one that does not exist. The signing secret is
in the answer to a creation or a rotation, and nowhere else. Without ``RGW_SECRETS_KEY`` the
gateway cannot keep secrets, and every call answers 503.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter

from gateway.api._bodies import answer, decode_body, json_body, require_json
from gateway.api._openapi import problem_responses
from gateway.api._problems import extra_headers, handle_problem
from gateway.api._security import SECURITY, authorize
from gateway.api.services import Services
from gateway.auth import Principal, Scope
from gateway.errors import NotFound, SecretsKeyError, ServiceUnavailable
from gateway.partners.endpoints import MAX_URL_LENGTH, EndpointRegistry, EndpointResource, WebhookEndpoint

EndpointId = Annotated[str, PathParameter(description="The endpoint's id (`we_…`).")]


class EndpointRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where to post ``return-status-changed`` events: an https URL."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_LENGTH)]


class EndpointList(msgspec.Struct, kw_only=True):
    object: str
    data: list[EndpointResource]


async def _caller(request: Request[Any, Any, Any]) -> tuple[Principal, EndpointRegistry]:
    principal = await authorize(request, Scope.WEBHOOKS_MANAGE)
    services: Services = request.app.state.services
    return principal, services.webhook_endpoints


def _not_found(endpoint_id: str) -> NotFound:
    return NotFound(f"no webhook endpoint '{endpoint_id}' for this partner")


def _with_secret(request: Request[Any, Any, Any], endpoint: WebhookEndpoint, status: int) -> Response[bytes]:
    response = answer(request, EndpointResource.of(endpoint, with_secret=True), status)
    response.headers["Cache-Control"] = "no-store"  # the secret must not linger in any cache
    return response


@post(
    "/",
    status_code=201,
    summary="Register a webhook endpoint",
    description="Events about this partner's returns (`return-status-changed` v1) will be posted to `url`, "
    "signed with the `secret` in this answer. Keep it now: it is never shown again (rotate it to get a "
    "new one).",
    operation_class=json_body(EndpointRequest, required=True),
    security=SECURITY,
    responses={
        201: ResponseSpec(data_container=EndpointResource, description="Registered, with its secret"),
        **problem_responses(400, 401, 403, 415, 422, 429, 503),
    },
)
async def create_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    principal, registry = await _caller(request)
    require_json(request)
    body = await decode_body(request, EndpointRequest)
    return _with_secret(request, await registry.create(principal.partner, body.url), 201)


@get(
    "/",
    summary="List webhook endpoints",
    description="This partner's endpoints, oldest first, without their secrets.",
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=EndpointList, description="This partner's endpoints"),
        **problem_responses(401, 403, 429, 503),
    },
)
async def list_endpoints(request: Request[Any, Any, Any]) -> Response[bytes]:
    principal, registry = await _caller(request)
    endpoints = await registry.list(principal.partner)
    return answer(request, EndpointList(object="list", data=[EndpointResource.of(e) for e in endpoints]))


@delete(
    "/{endpoint_id:str}",
    status_code=204,
    summary="Delete a webhook endpoint",
    description="No event is posted to it any more (one being delivered right now may still arrive).",
    security=SECURITY,
    responses=problem_responses(401, 403, 404, 429, 503),
)
async def delete_endpoint(request: Request[Any, Any, Any], endpoint_id: EndpointId) -> Response[None]:
    principal, registry = await _caller(request)
    if not await registry.delete(principal.partner, endpoint_id):
        raise _not_found(endpoint_id)
    return Response(None, status_code=204, headers=extra_headers(request))


@post(
    "/{endpoint_id:str}/rotate-secret",
    status_code=200,
    summary="Rotate a webhook endpoint's secret",
    description="A new secret, shown once in this answer; events sent from now on are signed with it and "
    "the old one stops being used.",
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=EndpointResource, description="The endpoint with its new secret"),
        **problem_responses(401, 403, 404, 429, 503),
    },
)
async def rotate_secret(request: Request[Any, Any, Any], endpoint_id: EndpointId) -> Response[bytes]:
    principal, registry = await _caller(request)
    rotated = await registry.rotate_secret(principal.partner, endpoint_id)
    if rotated is None:
        raise _not_found(endpoint_id)
    return _with_secret(request, rotated, 200)


def _secrets_unavailable(request: Request[Any, Any, Any], exc: SecretsKeyError) -> Response[bytes]:
    """No usable ``RGW_SECRETS_KEY``: an operator's to fix, so no Retry-After."""
    problem = ServiceUnavailable(f"partner webhooks are unavailable on this gateway: {exc}")
    return handle_problem(request, problem)


webhook_endpoints_router = Router(
    "/v1/webhook-endpoints",
    route_handlers=[create_endpoint, list_endpoints, delete_endpoint, rotate_secret],
    tags=["webhook endpoints"],
    exception_handlers={SecretsKeyError: _secrets_unavailable},
)
