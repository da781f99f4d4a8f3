"""What every ERP profile does the same way, whatever the ERP's API."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

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


async def read_documents(lookup: Lookup, request: Mapping[str, Any], system: str) -> dict[str, Any]:
    """The ``return-documents`` payload for a request: every referenced order, invoice and
    shipment the ERP holds, and those it does not. Deciding is the lifecycle's job.

    The three are looked up at once: a lookup waiting out a throttled call (``Retry-After``)
    does not hold the others back. The first failure cancels the rest and is the answer."""
    references = [
        (kind, request["references"][kind]["number"])
        for kind in ("order", "invoice", "shipment")
        if request["references"].get(kind) is not None
    ]
    lookups = [asyncio.ensure_future(lookup(kind, number)) for kind, number in references]  # type: ignore[arg-type]
    try:
        documents = await asyncio.gather(*lookups)
    except BaseException:
        for pending in lookups:
            pending.cancel()
        raise
    found: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    for (kind, number), document in zip(references, documents, strict=True):
        if document is None:
            missing.append({"kind": kind, "number": number})
        else:
            found.append(document)
    return {
        "system": system,
        "checked_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "documents": found,
        "missing": missing,
    }


def authorized_request(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The request of a ``return-decision`` cut to what was authorized: lines at their
    authorized quantity, rejected lines left out. This is what the ERP's RMA holds."""
    authorized = {ln["line_number"]: ln["authorized_quantity"] for ln in decision["lines"]}
    request = dict(decision["request"])
    request["lines"] = [
        {**line, "quantity": authorized[line["line_number"]]}
        for line in request["lines"]
        if authorized.get(line["line_number"], 0) > 0
    ]
    return request


def with_decision(authorization: dict[str, Any], decision: Mapping[str, Any]) -> dict[str, Any]:
    """A mapped ``return-authorization`` (the ERP's facts: RMA number, documents, dates) with
    the lifecycle's decision on it: who decided, by which rule, and each line's quantities."""
    authorization = dict(authorization)
    authorization["decision"] = decision["decision"]
    authorization["decided_by"] = decision["decided_by"]
    authorization["decided_at"] = decision["decided_at"]
    if decision.get("rule"):
        authorization["rule"] = decision["rule"]
    authorization["lines"] = [{k: v for k, v in line.items() if k != "rule"} for line in decision["lines"]]
    return authorization


def posted_credit(
    draft: Mapping[str, Any], document: Mapping[str, str], *, posting_date: str | None
) -> dict[str, Any]:
    """The ``credit-memo`` the ERP answers once it posted a draft: its number, date and record.
    An ERP that does not say when it posted posted today (the contract needs the date)."""
    posted = {**draft, "document_status": "posted", "credit_memo_number": document["number"]}
    posted["erp_documents"] = [dict(document)]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    posted["posting_date"] = posting_date or draft.get("posting_date") or today
    return posted
