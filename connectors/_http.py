"""Translate a target system's HTTP behaviour into retry-or-dead-letter decisions."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure

#: Statuses that mean "later": throttled, or the target failing on its side.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds, from either of its forms (delta-seconds or HTTP-date)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def raise_for_target(response: httpx.Response) -> None:
    """Raise the failure a non-2xx reply means; the target's own message is kept."""
    if response.is_success:
        return
    detail = f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
    detail += response.text[:500]
    if response.status_code in RETRYABLE_STATUSES:
        raise RetryableDeliveryFailure(
            detail, status_code=response.status_code, retry_after=retry_after_seconds(response)
        )
    raise PermanentDeliveryFailure(detail, status_code=response.status_code)


@contextmanager
def target_errors() -> Iterator[None]:
    """Timeouts and connection failures talking to a target are retryable."""
    try:
        yield
    except httpx.TransportError as exc:
        raise RetryableDeliveryFailure(f"target unreachable: {exc!r}") from exc
