"""Dynamics 365 Business Central over its standard REST API v2.0, OAuth 2.0 client credentials.

Modelled on Microsoft's public API v2.0 reference: ``/v2.0/{tenant}/{environment}/api/v2.0/
companies({id})/<entitySet>``, tokens from the Microsoft identity platform
(``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token``, scope
``https://api.businesscentral.dynamics.com/.default``), OData errors ``{"error": {"code",
"message"}}``, 429 with ``Retry-After`` when throttled, ``@odata.etag`` / ``If-Match``.

* ``return-request.v1``  → reads the referenced order, invoice and shipment; answers them as a
  ``return-documents`` event, which the lifecycle validates the request against.
* ``return-decision.v1`` → for an authorization, creates a draft ``salesCreditMemo`` with the
  authorized lines; answers a canonical ``return-authorization`` whose RMA number is the credit
  memo's number. The standard API has no ``salesReturnOrders`` (only
  custom API pages publish one), so the unposted credit memo against the invoice is the
  return document: posting it takes the goods back and credits them.
* ``credit-memo.v1``     → brings that same credit memo's lines to the credited ones (or creates
  it, for an RMA issued elsewhere) and posts it with the bound action ``Microsoft.NAV.post``,
  under ``If-Match``: a document someone changed meanwhile (412) is read again and posted once;
  answers the credit memo as posted. Posting is also the inventory action: BC books each item
  line back into stock at the line's location, so a line whose goods the disposition restocks
  (``return_location``) carries that location's ``locationId`` (looked up in ``locations`` by
  code), and the other lines ``options.non_stock_location`` when set (a quarantine or scrap
  location), else none (the company's default). There is no separate adjustment to send: the
  standard API v2.0 has no item journal, and needs none here.
* ``supplier-claim.v1``  → a draft ``purchaseCreditMemo`` to the vendor (no purchase return
  order in the standard API either), keyed by the claim number in ``vendorCreditMemoNumber``.

Idempotency is this connector's: Business Central does not keep ``externalDocumentNumber``
unique, so every create is preceded by ``$filter=externalDocumentNumber eq '<key>'`` and a
retry finds what the first try made. Its creates are therefore not safe to repeat blindly and
carry no idempotency key: only its reads (and a line's DELETE, where a repeat finds the line
gone) are tried again in-process; a failed create goes back through the runtime, which looks
first. The key is ``RGW`` + the 32 hex digits of the gateway id
(35 characters, the field's length). Options: ``tenant``, ``environment``, ``company_id``,
``non_stock_location``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from connectors.erp._common import (
    DocumentKind,
    authorization_variables,
    authorized_request,
    posted_credit,
    read_documents,
    with_decision,
)
from gateway.sdk import (
    Connector,
    Delivery,
    Emitted,
    PermanentDeliveryFailure,
    RetryableDeliveryFailure,
    TargetConfigError,
    TargetError,
    handler,
    reply_json,
)

_DOCUMENTS: dict[str, tuple[str, str]] = {
    "order": ("salesOrders", "salesOrderLines"),
    "invoice": ("salesInvoices", "salesInvoiceLines"),
    "shipment": ("salesShipments", "salesShipmentLines"),
}
CREDITS, CREDIT_LINES = "salesCreditMemos", "salesCreditMemoLines"
CLAIMS = "purchaseCreditMemos"
LOCATIONS = "locations"
ENTITY_CHANGED = "Request_EntityChanged"
_GATEWAY_ID = re.compile(r"^[a-z]+_([0-9a-f]{32})$")


def document_key(gateway_id: str) -> str:
    """The ``externalDocumentNumber`` for a gateway id: ``RGW`` + its hex, within BC's 35 characters."""
    match = _GATEWAY_ID.match(gateway_id)
    digest = match.group(1) if match else hashlib.sha256(gateway_id.encode()).hexdigest()[:32]
    return f"RGW{digest}"


def _literal(value: str) -> str:
    """An OData string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class BusinessCentralConnector(Connector):
    profile: ClassVar[str] = "business_central"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._locations: dict[str, str] = {}
        """Location ids by code, as read from BC (locations change rarely; a restart reads again)."""

    def read_error(self, response: httpx.Response) -> TargetError:
        error = reply_json(response).get("error") or {}
        return TargetError(str(error.get("message") or response.reason_phrase), code=error.get("code"))

    @property
    def company(self) -> str:
        """Path of the configured company, relative to the target's base URL."""
        missing = [name for name in ("tenant", "company_id") if not self.options.get(name)]
        if missing:
            raise TargetConfigError(f"connector {self.name}: options {', '.join(missing)} are not set")
        tenant, environment = self.options["tenant"], self.options.get("environment", "production")
        return f"/v2.0/{tenant}/{environment}/api/v2.0/companies({self.options['company_id']})"

    # -- operations ----------------------------------------------------------------------
    async def lookup(self, kind: DocumentKind, number: str) -> dict[str, Any] | None:
        """An order, invoice or shipment by number, as an ``erp-document`` (``None`` if unknown)."""
        entity_set, lines = _DOCUMENTS[kind]
        found = await self._find(entity_set, f"number eq {_literal(number)}", expand=lines)
        if found is None:
            return None
        item_lines = [line for line in found.get(lines) or [] if line.get("lineType", "Item") == "Item"]
        return self.map("document.inbound", {"document": found, "lines": item_lines}, kind=kind)  # type: ignore[no-any-return]

    @handler("return-request.v1")
    async def _read_documents(self, delivery: Delivery) -> Sequence[Emitted]:
        documents = await read_documents(self.lookup, delivery.payload, "business_central")
        return [
            self.event(
                "return-documents.v1",
                {"return_id": delivery.correlation_id, **documents},
                f"{delivery.message_id}.{self.name}.documents",
            )
        ]

    @handler("return-decision.v1")
    async def _authorize(self, delivery: Delivery) -> Sequence[Emitted] | None:
        decision = delivery.payload
        if decision["decision"] == "rejected":
            return None  # nothing to create: the lifecycle tells everyone else
        request = authorized_request(decision)
        key = document_key(delivery.correlation_id)
        body = self.map("return-request.v1.outbound", request, delivery, document_key=key)
        memo = await self._find(CREDITS, f"externalDocumentNumber eq {_literal(key)}")
        if memo is None:
            memo = reply_json(await self.target.post(f"{self.company}/{CREDITS}", json=body))
        authorization = self.map(
            "return-authorization.v1.inbound",
            {"request": request, "reply": {"document": memo}},
            delivery,
            **authorization_variables(self.options, request),
        )
        return [
            self.event(
                "return-authorization.v1",
                with_decision(authorization, decision),
                f"{delivery.message_id}.{self.name}.rma",
            )
        ]

    @handler("credit-memo.v1")
    async def _credit(self, delivery: Delivery) -> Sequence[Emitted] | None:
        """Post the return's credit memo with the credited lines, once; answer it as posted."""
        if delivery.payload["document_status"] == "posted":
            return None  # a posted credit coming back through the routes: already in BC
        await self._post_credit(delivery)
        key = document_key(delivery.payload["return_id"])
        memo = await self._find(CREDITS, f"externalDocumentNumber eq {_literal(key)}")
        if memo is None:
            raise RetryableDeliveryFailure("Business Central does not show the credit memo it posted yet")
        document = {
            "system": "business_central",
            "document_type": "salesCreditMemo",
            "id": str(memo["id"]),
            "number": str(memo["number"]),
        }
        posted = posted_credit(delivery.payload, document, posting_date=memo.get("postingDate"))
        return [self.event("credit-memo.v1", posted, f"{delivery.message_id}.{self.name}.posted")]

    async def _post_credit(self, delivery: Delivery) -> None:
        key = document_key(delivery.payload["return_id"])
        body = self.map("credit-memo.v1.outbound", delivery.payload, delivery, document_key=key)
        await self._locate(body[CREDIT_LINES], delivery.payload["lines"])
        for attempt in (1, 2):  # a 412 means someone changed the draft after we read it: once more
            memo = await self._find(
                CREDITS, f"externalDocumentNumber eq {_literal(key)}", expand=CREDIT_LINES
            )
            if memo is None:
                memo = reply_json(
                    await self.target.post(
                        f"{self.company}/{CREDITS}", json=body, params={"$expand": CREDIT_LINES}
                    )
                )
            if memo.get("status") != "Draft":
                return  # posted by an earlier try
            try:
                etag = await self._align_lines(memo, body)
                await self.target.post(
                    f"{self.company}/{CREDITS}({memo['id']})/Microsoft.NAV.post", headers={"If-Match": etag}
                )
                return
            except PermanentDeliveryFailure as failure:
                if failure.code != ENTITY_CHANGED or attempt == 2:
                    raise

    async def _align_lines(self, memo: dict[str, Any], body: dict[str, Any]) -> str:
        """Make the draft's lines the credited ones (and its posting date the credit's); answer
        the etag to post under. Nothing is sent when they already agree."""
        path = f"{self.company}/{CREDITS}({memo['id']})"
        etag = str(memo["@odata.etag"])
        if body.get("postingDate") and memo.get("postingDate") != body["postingDate"]:
            patched = reply_json(
                await self.target.patch(
                    path, json={"postingDate": body["postingDate"]}, headers={"If-Match": etag}
                )
            )
            etag = str(patched["@odata.etag"])
        wanted = body[CREDIT_LINES]
        held = memo.get(CREDIT_LINES) or []
        if sorted(map(_line_fact, held)) == sorted(map(_line_fact, wanted)):
            return etag
        for line in held:
            try:
                await self.target.request(
                    "DELETE",
                    f"{path}/{CREDIT_LINES}({line['id']})",
                    headers={"If-Match": line["@odata.etag"]},
                )
            except PermanentDeliveryFailure as failure:
                if failure.status_code != 404:  # gone: deleted by a try whose reply was lost
                    raise
        for line in wanted:
            await self.target.post(f"{path}/{CREDIT_LINES}", json=line)
        return str(reply_json(await self.target.get(path))["@odata.etag"])

    async def _locate(self, lines: list[dict[str, Any]], credited: list[dict[str, Any]]) -> None:
        """Give each credit line the location its goods go back into stock at (see the module)."""
        fallback = self.options.get("non_stock_location")
        for line, source in zip(lines, credited, strict=True):
            code = source.get("return_location") or fallback
            if code:
                line["locationId"] = await self._location_id(str(code))

    async def _location_id(self, code: str) -> str:
        if code not in self._locations:
            location = await self._find(LOCATIONS, f"code eq {_literal(code)}")
            if location is None:
                raise PermanentDeliveryFailure(
                    f"Business Central has no location '{code}' to take the returned goods into; "
                    "create it, or change the policy's disposition location",
                    code="LocationNotFound",
                )
            self._locations[code] = str(location["id"])
        return self._locations[code]

    @handler("supplier-claim.v1")
    async def _claim(self, delivery: Delivery) -> None:
        claim = delivery.payload
        body = self.map("supplier-claim.v1.outbound", claim, delivery)
        for line, source in zip(body["purchaseCreditMemoLines"], claim["lines"], strict=True):
            if source["quantity"]:  # BC takes a unit cost; the claim states the line's amount
                line["directUnitCost"] = float(
                    Decimal(source["amount_claimed"]["amount"]) / Decimal(str(source["quantity"]))
                )
        query = (
            f"vendorCreditMemoNumber eq {_literal(body['vendorCreditMemoNumber'])} "
            f"and vendorNumber eq {_literal(body['vendorNumber'])}"
        )
        if await self._find(CLAIMS, query) is None:
            await self.target.post(f"{self.company}/{CLAIMS}", json=body)

    async def _find(
        self, entity_set: str, odata_filter: str, *, expand: str | None = None
    ) -> dict[str, Any] | None:
        """The first entity the filter matches, or ``None``."""
        params = {"$filter": odata_filter}
        if expand:
            params["$expand"] = expand
        found = reply_json(await self.target.get(f"{self.company}/{entity_set}", params=params))
        if not isinstance(found, dict) or not isinstance(found.get("value"), list):
            raise RetryableDeliveryFailure(f"Business Central answered {entity_set} without a value list")
        return found["value"][0] if found["value"] else None


def _line_fact(line: dict[str, Any]) -> tuple[str, float, float, str]:
    """What makes two credit memo lines the same credit: item, quantity, price, and the location
    the goods are booked back into."""
    return (
        str(line.get("lineObjectNumber")),
        float(line.get("quantity") or 0),
        float(line.get("unitPrice") or 0),
        str(line.get("locationId") or ""),
    )
