"""``/v1/contracts``: which canonical contracts the gateway speaks, and their schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from gateway.api._deprecation import deprecation_headers
from gateway.api._openapi import problem_responses
from gateway.api._problems import extra_headers
from gateway.api._security import SECURITY, authorize
from gateway.api.services import Services
from gateway.errors import NotFound

SCHEMA_JSON = "application/schema+json"


class ContractSummary(msgspec.Struct, kw_only=True):
    """One contract version as listed."""

    name: str
    version: str
    status: str
    schema_id: str
    deprecated_on: dt.date | None = None
    sunset_on: dt.date | None = None


class ContractList(msgspec.Struct, kw_only=True):
    object: str
    data: list[ContractSummary]


_encoder = msgspec.json.Encoder()


@get(
    "/",
    summary="List contracts",
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=ContractList, description="Every installed contract version"),
        **problem_responses(401, 429, 503),
    },
)
async def list_contracts(
    request: Request[Any, Any, Any],
) -> Response[bytes]:
    await authorize(request)
    services: Services = request.app.state.services
    listing = ContractList(
        object="list",
        data=[
            ContractSummary(
                name=c.name,
                version=c.version,
                status=c.status,
                schema_id=c.id,
                deprecated_on=c.deprecated_on,
                sunset_on=c.sunset_on,
            )
            for c in services.registry
        ],
    )
    return Response(_encoder.encode(listing), media_type="application/json", headers=extra_headers(request))


@get(
    "/{name:str}/{version:str}",
    summary="Get a contract's JSON Schema",
    security=SECURITY,
    responses={
        200: ResponseSpec(data_container=dict[str, Any], media_type=SCHEMA_JSON, description="JSON Schema"),
        **problem_responses(401, 404, 429, 503),
    },
)
async def get_contract(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    version: FromPath[str],
) -> Response[bytes]:
    await authorize(request)
    services: Services = request.app.state.services
    contract = services.registry.get(name, version)
    if contract is None:
        raise NotFound(f"no contract '{name}' version '{version}'")
    return Response(
        _encoder.encode(contract.schema),
        media_type=SCHEMA_JSON,
        headers={**extra_headers(request), **deprecation_headers(contract)},
    )


contracts_router = Router(
    "/v1/contracts",
    route_handlers=[list_contracts, get_contract],
    tags=["contracts"],
)
