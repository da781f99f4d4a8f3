"""Render every error as ``application/problem+json`` (RFC 9457), never an HTML page or a bare 500."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from gateway.errors import DependencyUnavailable, ProblemError, ServiceUnavailable, Violation

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details, with ``errors`` listing each violation and its JSON pointer."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[Violation] | None = None
    total_violations: int | None = None
    """With ``errors``: how many violations there are; ``errors`` lists the first 50."""
    total_violations_exact: bool | None = None
    """False when counting stopped: there are at least ``total_violations``."""


_encoder = msgspec.json.Encoder()


_RESPONSE_HEADERS = "response_headers"


def add_response_headers(request: Request[Any, Any, Any], headers: dict[str, str]) -> None:
    """Headers to send with this request's response, success or problem."""
    request.scope.setdefault("state", {}).setdefault(_RESPONSE_HEADERS, {}).update(headers)


def extra_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Headers every response to this request carries (rate-limit state, deprecation)."""
    return dict(request.scope.get("state", {}).get(_RESPONSE_HEADERS, {}))


def problem_response(
    request: Request[Any, Any, Any],
    *,
    status: int,
    type_uri: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response[bytes]:
    body = {
        "type": type_uri,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extensions or {})
    return Response(
        _encoder.encode(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={**extra_headers(request), **(headers or {})},
    )


def handle_problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    return problem_response(
        request,
        status=exc.status_code,
        type_uri=exc.type_uri,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extensions=exc.extensions,
    )


def handle_unavailable(request: Request[Any, Any, Any], exc: DependencyUnavailable) -> Response[bytes]:
    log.warning("dependency unavailable on %s: %s", request.url.path, exc)
    retry_after = str(request.app.state.settings.retry_after_seconds)
    problem = ServiceUnavailable(
        "the gateway cannot durably accept requests right now; retry with the same Idempotency-Key",
        headers={"Retry-After": retry_after},
    )
    return handle_problem(request, problem)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors (404 route, 405, 413 body limit...) in the same shape as ours."""
    slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        exc.status_code, "http-error"
    )
    return problem_response(
        request,
        status=exc.status_code,
        type_uri=f"urn:returns-gateway:problem:{slug}",
        title=str(exc.detail) or "HTTP error",
        detail=str(exc.detail),
        headers=dict(exc.headers or {}),
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request,
        status=500,
        type_uri="urn:returns-gateway:problem:internal-error",
        title="Internal error",
        detail="the gateway failed unexpectedly; the request was not accepted",
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ProblemError: handle_problem,
    DependencyUnavailable: handle_unavailable,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
