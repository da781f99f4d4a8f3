"""OpenAPI documentation pieces: contract request bodies and the problem responses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIMediaType, Operation, Parameter, RequestBody, Schema

from gateway.api._open_exceptions import ReturnException
from gateway.api._problems import PROBLEM_JSON, Problem
from gateway.registry import Contract, component_name


class ReturnReceiptDocument(msgspec.Struct, kw_only=True):
    """The answer to a submitted return (documentation twin of ``ReturnReceipt``)."""

    object: str
    id: str
    partner: str
    external_id: str
    status: str
    contract: str
    contract_version: str
    accepted_at: dt.datetime
    updated_at: dt.datetime


class ReturnDocument(ReturnReceiptDocument, kw_only=True):
    """A return as the API shows it (documentation twin of ``ReturnResource``)."""

    request: dict[str, Any]
    exceptions: list[ReturnException]
    """What keeps it from going on by itself: its open dead letters, each linked to the desk."""


PROBLEM_STATUSES = {
    400: "Malformed JSON, or a missing or invalid Idempotency-Key",
    401: "Missing, unknown or revoked API key",
    403: "The API key lacks the scope this call needs",
    404: "No such resource for this partner",
    409: "Same idempotency key still in flight, or the external id was already submitted",
    413: "Body larger than the configured limit",
    415: "Body is not application/json",
    422: "Payload violates its contract (every violation listed), or the key was reused with another payload",
    429: "Partner over its rate limit (see Retry-After and RateLimit-*)",
    503: "Broker or Redis unavailable; retry later with the same Idempotency-Key",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Documented problem+json answers for the given status codes."""
    return {
        status: ResponseSpec(
            data_container=Problem, media_type=PROBLEM_JSON, description=PROBLEM_STATUSES[status]
        )
        for status in statuses
    }


IDEMPOTENCY_KEY_PARAMETER = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=True,
    description="Unique per intended operation (e.g. a UUID); kept 24 h per partner. Retrying with the same "
    "key and payload replays the first answer instead of acting twice.",
    schema=Schema(type="string", min_length=1, max_length=255, pattern="^[\\x21-\\x7e]+$"),  # type: ignore[arg-type]
)


def contract_body(contract: Contract) -> type[Operation]:
    """An Operation class whose request body is ``contract``, with its valid examples."""
    reference = {"$ref": f"#/components/schemas/{component_name(contract.name, contract.version)}"}
    examples = {e.name: Example(summary=e.name, value=e.payload) for e in contract.valid_examples}

    @dataclass
    class ContractBodyOperation(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), IDEMPOTENCY_KEY_PARAMETER]
            self.request_body = RequestBody(
                required=True,
                description=f"A `{contract.name}` {contract.version} document.",
                content={
                    "application/json": OpenAPIMediaType(
                        # Litestar serialises a plain dict as it is, keeping the JSON Schema ref.
                        schema=reference,  # type: ignore[arg-type]
                        examples=examples or None,
                    )
                },
            )

    return ContractBodyOperation
