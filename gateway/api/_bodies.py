"""JSON in and out of handlers: the media type check, body decoding, the answer, and the
OpenAPI description of a body. Bodies are read inside handlers, after ``authorize``, so a
caller without the route's scope learns nothing from how its body would have been judged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

from gateway.api._problems import extra_headers
from gateway.errors import UnsupportedMediaType
from gateway.intake.payloads import decode_json

JSON = "application/json"
T = TypeVar("T")
_encoder = msgspec.json.Encoder()


def require_json(request: Request[Any, Any, Any]) -> None:
    """415 unless the body is declared ``application/json`` (or a ``+json`` type)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON and not (media_type.startswith("application/") and media_type.endswith("+json")):
        raise UnsupportedMediaType(f"send the body as {JSON}, not {media_type or 'no content type'}")


async def decode_body(request: Request[Any, Any, Any], struct: type[T]) -> T:
    """The body as ``struct`` (an empty body as ``{}``), or a 400 saying what is wrong; the one
    JSON decoder of the edge, which bounds how deep the body may nest."""
    raw = await request.body()
    decoded: T = decode_json(raw if raw.strip() else b"{}", type=struct)
    return decoded


def answer(
    request: Request[Any, Any, Any], document: object, status: int = 200, **headers: str
) -> Response[bytes]:
    """``document`` as JSON (already-encoded bytes pass as they are), with the call's extra headers."""
    body = document if isinstance(document, bytes) else _encoder.encode(document)
    return Response(body, status_code=status, media_type=JSON, headers={**extra_headers(request), **headers})


def json_body(struct: type[msgspec.Struct], *, required: bool) -> type[Operation]:
    """An Operation class documenting ``struct`` as the JSON request body."""
    schema = msgspec.json.schema(struct)["$defs"][struct.__name__]

    @dataclass
    class JsonBodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=required,
                description=struct.__doc__,
                # Litestar serialises a plain dict as it is.
                content={JSON: OpenAPIMediaType(schema=schema)},  # type: ignore[arg-type]
            )

    return JsonBodyOperation
