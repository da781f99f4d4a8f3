"""``Deprecation`` (RFC 9745) and ``Sunset`` (RFC 8594) headers for deprecated contract versions."""

from __future__ import annotations

import calendar
import datetime as dt
from email.utils import format_datetime

from gateway.registry import Contract


def deprecation_headers(contract: Contract) -> dict[str, str]:
    """Empty for an active contract; otherwise when it was deprecated and when it stops working."""
    if contract.deprecated_on is None:
        return {}
    headers = {
        "Deprecation": f"@{calendar.timegm(contract.deprecated_on.timetuple())}",
        "Link": f'</v1/contracts/{contract.name}/{contract.version}>; rel="deprecation"',
    }
    if contract.sunset_on is not None:
        sunset = dt.datetime.combine(contract.sunset_on, dt.time(23, 59, 59), tzinfo=dt.UTC)
        headers["Sunset"] = format_datetime(sunset, usegmt=True)
    return headers
