"""Translate a target system's HTTP behaviour into retry-or-dead-letter decisions."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure, TargetUnreachable

#: Statuses that mean "later": throttled, or the target failing on its side.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds, from either of its forms (delta-seconds or HTTP-date)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit alone takes "¹", which float refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class TargetError:
    """What a system said when it refused a request, read from its own error format."""

    message: str
    code: str | None = None
    retryable: bool | None = None
    """Overrides the status's verdict (a 403 that means "over your API quota" is retryable)."""
    retry_after: float | None = None
    """Overrides ``Retry-After`` (a system that signals throttling in headers of its own)."""


#: Reads a system's error body; each connector knows its system's format.
ErrorReader = Callable[[httpx.Response], TargetError]


def plain_error(response: httpx.Response) -> TargetError:
    """The body as text: for systems without a structured error format."""
    return TargetError(response.text[:500])


def raise_for_target(response: httpx.Response, read_error: ErrorReader = plain_error) -> None:
    """Raise the failure a non-2xx reply means, with the system's message and code kept."""
    if response.is_success:
        return
    try:
        error = read_error(response)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RetryableDeliveryFailure):
        error = plain_error(response)  # an error body not in the system's format: keep its text
    code = f"[{error.code}] " if error.code else ""
    detail = f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
    detail += f"{code}{error.message}"[:1000]
    retryable = error.retryable if error.retryable is not None else response.status_code in RETRYABLE_STATUSES
    if retryable:
        retry_after = error.retry_after if error.retry_after is not None else retry_after_seconds(response)
        raise RetryableDeliveryFailure(
            detail, status_code=response.status_code, code=error.code, retry_after=retry_after
        )
    raise PermanentDeliveryFailure(detail, status_code=response.status_code, code=error.code)


def reply_json(response: httpx.Response) -> Any:
    """A success reply's JSON body. A reply we cannot read leaves us unsure whether the request
    took effect, so it is retryable: the idempotency key or external id makes the retry safe."""
    try:
        return msgspec.json.decode(response.content)
    except msgspec.DecodeError as exc:
        raise RetryableDeliveryFailure(
            f"{response.request.method} {response.request.url.path} answered {response.status_code} "
            f"with a body that is not JSON: {response.text[:200]!r}",
            status_code=response.status_code,
        ) from exc


@contextmanager
def target_errors() -> Iterator[None]:
    """Timeouts and connection failures talking to a target are retryable: the target is
    :class:`TargetUnreachable` (which a circuit breaker counts apart from the answers it gave)."""
    try:
        yield
    except httpx.TransportError as exc:
        raise TargetUnreachable(f"target unreachable: {exc!r}") from exc
