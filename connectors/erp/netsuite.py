"""NetSuite over SuiteTalk REST (``/services/rest/record/v1``), OAuth 2.0 client credentials.

* ``return-request.v1``  → reads the referenced order, invoice and shipment; answers them as a
  ``return-documents`` event, which the lifecycle validates the request against.
* ``return-decision.v1`` → for an authorization, creates a ``returnAuthorization`` for the
  authorized quantities; answers a canonical ``return-authorization`` with NetSuite's RMA number.
* ``credit-memo.v1``     → transforms the invoice into a ``creditMemo``; answers the credit memo
  as posted (its tranId and record id).
* ``supplier-claim.v1``  → creates a ``vendorReturnAuthorization``.
* ``disposition.v1``     → an ``inventoryAdjustment`` putting back into stock what the disposition
  restocks, repairs or refurbishes, at its target location, against the ``adjustment_account``
  option (goods scrapped or sent back to the vendor never re-enter stock: nothing to post).

Idempotency is NetSuite's own: every record carries the message id as ``externalId``, and
NetSuite refuses a second record with it (``DUP_RCRD``), which this connector reads as
"already done" and then reads the existing record. So a create is safe to repeat: it goes out
with the ``externalId`` as its idempotency key, and a 503 or 429 is tried again in-process
like the reads. Errors come as ``o:errorDetails``;
NetSuite throttles with 429 ``CONCURRENCY_LIMIT_EXCEEDED`` and no ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    TargetError,
    handler,
    reply_json,
)

RECORDS = "/services/rest/record/v1"
DUPLICATE = "DUP_RCRD"
_LOOKUP_TYPES = {"order": "salesOrder", "invoice": "invoice", "shipment": "itemFulfillment"}


class NetSuiteConnector(Connector):
    profile: ClassVar[str] = "netsuite"

    def read_error(self, response: httpx.Response) -> TargetError:
        details = reply_json(response).get("o:errorDetails") or [{}]
        first = details[0]
        code = first.get("o:errorCode")
        return TargetError(
            "; ".join(d.get("detail", "") for d in details) or response.reason_phrase,
            code=code,
            # NetSuite's concurrency governance: retry, it names no wait of its own.
            retryable=True if code == "CONCURRENCY_LIMIT_EXCEEDED" else None,
        )

    # -- operations ----------------------------------------------------------------------
    async def lookup(self, kind: DocumentKind, number: str) -> dict[str, Any] | None:
        """An order, invoice or shipment by number, as an ``erp-document`` (``None`` if unknown)."""
        record_type = _LOOKUP_TYPES[kind]
        found = reply_json(
            await self.target.get(f"{RECORDS}/{record_type}", params={"q": f'tranId IS "{number}"'})
        )
        if not found.get("items"):
            return None
        record = reply_json(await self.target.get(f"{RECORDS}/{record_type}/{found['items'][0]['id']}"))
        return self.map("document.inbound", record, kind=kind)  # type: ignore[no-any-return]

    @handler("return-request.v1")
    async def _read_documents(self, delivery: Delivery) -> Sequence[Emitted]:
        return [await self._documents(delivery)]

    async def _documents(self, delivery: Delivery) -> Emitted:
        documents = await read_documents(self.lookup, delivery.payload, "netsuite")
        return self.event(
            "return-documents.v1",
            {"return_id": delivery.correlation_id, **documents},
            f"{delivery.message_id}.{self.name}.documents",
        )

    @handler("return-decision.v1")
    async def _authorize(self, delivery: Delivery) -> Sequence[Emitted] | None:
        decision = delivery.payload
        if decision["decision"] == "rejected":
            return None  # nothing to create: the lifecycle tells everyone else
        request = authorized_request(decision)
        body = self.map("return-request.v1.outbound", request, delivery)
        record = await self._create("returnAuthorization", body)
        authorization = self.map(
            "return-authorization.v1.inbound",
            {"request": request, "reply": record},
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
        draft = delivery.payload
        if draft["document_status"] == "posted":
            return None  # a posted credit coming back through the routes: already in NetSuite
        number = draft["invoice_reference"]["number"]
        found = reply_json(await self.target.get(f"{RECORDS}/invoice", params={"q": f'tranId IS "{number}"'}))
        if not found.get("items"):
            raise PermanentDeliveryFailure(
                f"NetSuite has no invoice {number} to credit", code="UNKNOWN_DOCUMENT"
            )
        body = self.map("credit-memo.v1.outbound", draft, delivery)
        memo = await self._create(
            "creditMemo", body, via=f"{RECORDS}/invoice/{found['items'][0]['id']}/!transform/creditMemo"
        )
        document = {
            "system": "netsuite",
            "document_type": "creditMemo",
            "id": str(memo["id"]),
            "number": str(memo.get("tranId") or memo["id"]),
        }
        posted = posted_credit(draft, document, posting_date=memo.get("tranDate"))
        return [self.event("credit-memo.v1", posted, f"{delivery.message_id}.{self.name}.posted")]

    @handler("disposition.v1")
    async def _adjust_inventory(self, delivery: Delivery) -> None:
        stocked = [line for line in delivery.payload["lines"] if line.get("target_location")]
        if not stocked:
            return
        account = self.options.get("adjustment_account")
        if not account:
            raise PermanentDeliveryFailure(
                f"connector {self.name}: set options.adjustment_account to post inventory adjustments",
                code="NOT_CONFIGURED",
            )
        body = self.map(
            "disposition.v1.outbound",
            {**delivery.payload, "lines": stocked},
            delivery,
            adjustment_account=str(account),
        )
        await self._create("inventoryAdjustment", body)

    @handler("supplier-claim.v1")
    async def _claim(self, delivery: Delivery) -> None:
        await self._create(
            "vendorReturnAuthorization", self.map("supplier-claim.v1.outbound", delivery.payload, delivery)
        )

    async def _create(
        self, record_type: str, body: dict[str, Any], *, via: str | None = None
    ) -> dict[str, Any]:
        """Create the record, or find the one an earlier try created; answer it as NetSuite holds it."""
        try:
            await self.target.post(
                via or f"{RECORDS}/{record_type}", json=body, idempotency_key=str(body["externalId"])
            )
        except PermanentDeliveryFailure as failure:
            if failure.code != DUPLICATE:
                raise
        return reply_json(await self.target.get(f"{RECORDS}/{record_type}/eid:{body['externalId']}"))  # type: ignore[no-any-return]
