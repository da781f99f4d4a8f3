"""Render every error as ``application/problem+json`` (RFC 9457), never an HTML page or a bare 500.

A 5xx never tells the client why in our words: its detail is generic, whatever the exception
said (a dependency's error text names hosts and ports), and the log keeps the real detail with
the trace id the problem carries, so an operator finds it from what the partner quotes.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from gateway.envelope import trace_context
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
    trace_id: str | None = None
    """On a 5xx: the id under which the gateway logged what went wrong (the W3C trace id)."""


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


UNAVAILABLE = "a system the gateway depends on could not be reached; retry later"
FAILED = "the gateway failed unexpectedly; the request was not accepted"


def _logged(
    request: Request[Any, Any, Any], status: int, detail: str, *, exc_info: BaseException | None = None
) -> str:
    """Log what went wrong with the request's trace id, and return that id for the client."""
    trace_id = trace_context(request.headers.get("traceparent"), None).traceparent.split("-")[1]
    log.log(
        logging.ERROR if status == 500 else logging.WARNING,
        "%s %s answered %d (trace %s): %s",
        request.method,
        request.url.path,
        status,
        trace_id,
        detail,
        exc_info=exc_info,
    )
    return trace_id


def handle_problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    detail, extensions = exc.detail, exc.extensions
    if exc.status_code >= 500:  # withheld: the exception's words may name hosts, ports, systems
        trace_id = _logged(request, exc.status_code, exc.detail)
        detail = UNAVAILABLE if exc.status_code == 503 else FAILED
        extensions = {"trace_id": trace_id}
    return problem_response(
        request,
        status=exc.status_code,
        type_uri=exc.type_uri,
        title=exc.title,
        detail=detail,
        headers=exc.headers,
        extensions=extensions,
    )


def handle_unavailable(request: Request[Any, Any, Any], exc: DependencyUnavailable) -> Response[bytes]:
    retry_after = str(request.app.state.settings.retry_after_seconds)
    trace_id = _logged(request, 503, f"dependency unavailable: {exc}")
    return problem_response(
        request,
        status=ServiceUnavailable.status_code,
        type_uri=f"urn:returns-gateway:problem:{ServiceUnavailable.slug}",
        title=ServiceUnavailable.title,
        detail="the gateway cannot durably accept requests right now; retry with the same Idempotency-Key",
        headers={"Retry-After": retry_after},
        extensions={"trace_id": trace_id},
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors (404 route, 405, 413 body limit...) in the same shape as ours."""
    slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        exc.status_code, "http-error"
    )
    if exc.status_code >= 500:
        trace_id = _logged(request, exc.status_code, str(exc.detail))
        return problem_response(
            request,
            status=exc.status_code,
            type_uri=f"urn:returns-gateway:problem:{slug}",
            title="HTTP error",
            detail=UNAVAILABLE if exc.status_code == 503 else FAILED,
            headers=dict(exc.headers or {}),
            extensions={"trace_id": trace_id},
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
    trace_id = _logged(request, 500, f"unhandled {type(exc).__name__}", exc_info=exc)
    return problem_response(
        request,
        status=500,
        type_uri="urn:returns-gateway:problem:internal-error",
        title="Internal error",
        detail=FAILED,
        extensions={"trace_id": trace_id},
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ProblemError: handle_problem,
    DependencyUnavailable: handle_unavailable,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
