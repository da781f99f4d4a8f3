"""What every ERP profile does the same way, whatever the ERP's API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from gateway.errors import PermanentDeliveryFailure

#: Days an RMA stays open for receipt when a connector's options do not say.
DEFAULT_RMA_VALID_DAYS = 30


def authorization_variables(options: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The variables a ``return-authorization`` inbound mapping takes from configuration:
    when the RMA expires (``options.rma_valid_days`` after the request) and where goods go
    (``options.return_site``)."""
    days = int(options.get("rma_valid_days", DEFAULT_RMA_VALID_DAYS))
    expires = dt.date.fromisoformat(request["requested_date"]) + dt.timedelta(days=days)
    variables: dict[str, Any] = {"expires_on": expires.isoformat()}
    if options.get("return_site"):
        variables["return_site"] = str(options["return_site"])
    return variables


DocumentKind = Literal["order", "invoice", "shipment"]

#: An ERP connector's lookup: an order, invoice or shipment by number, as an erp-document.
Lookup = Callable[[DocumentKind, str], Awaitable[dict[str, Any] | None]]


async def check_against_erp(lookup: Lookup, request: Mapping[str, Any], system: str) -> None:
    """Refuse a return the ERP's documents cannot support: an unknown invoice (or order), or a
    line returning more of a SKU than it holds. Permanent: retrying changes nothing."""
    references = request["references"]
    kind: DocumentKind = "invoice" if "invoice" in references else "order"
    number = references[kind]["number"]
    document = await lookup(kind, number)
    if document is None:
        raise PermanentDeliveryFailure(f"{system} has no {kind} {number}", code="UNKNOWN_DOCUMENT")
    check_quantities(request, document)


def check_quantities(request: Mapping[str, Any], document: Mapping[str, Any]) -> None:
    """Refuse a return of more of a SKU than the ERP document (invoice, order) holds."""
    available: dict[str, float] = {}
    for line in document["lines"]:
        available[line["sku"]] = available.get(line["sku"], 0) + line["quantity"]
    wanted: dict[str, float] = {}
    for line in request["lines"]:
        wanted[line["sku"]] = wanted.get(line["sku"], 0) + line["quantity"]
    over = [
        f"{sku}: {qty:g} returned, {available.get(sku, 0):g} on {document['kind']} {document['number']}"
        for sku, qty in wanted.items()
        if qty > available.get(sku, 0)
    ]
    if over:
        raise PermanentDeliveryFailure("; ".join(over), code="QUANTITY_ABOVE_DOCUMENT")
