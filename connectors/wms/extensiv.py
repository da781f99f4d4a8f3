"""Extensiv 3PL Warehouse Manager (formerly 3PL Central) REST API, ``https://secure-wms.com``.

* ``return-authorization.v1`` (authorized or partially authorized) → a receiver flagged as a
  return (``POST /inventory/receivers``, HAL+JSON): the expected receipt (ASN) the warehouse
  receives the goods against. A rejected authorization, or one with nothing authorized, is
  acknowledged without a call.
* Webhooks (:meth:`ExtensivConnector.receive`): Warehouse Manager's ``ReceiptConfirm`` event
  (receiver resource attached) → canonical ``receipt.v1``; the companion
  ``ReturnInspectionComplete`` event → ``inspection-result.v1``. Inspection is not an Extensiv
  record: that payload (``mappings/extensiv/schemas/inspection-event.json``) is what a QC
  station sends, framed like Extensiv's events.

Modelled on the public 3PL Warehouse Manager API: OAuth 2.0 client credentials at
``/AuthServer/api/Token`` (Basic client id and secret), receivers with ``customerIdentifier``,
``facilityIdentifier``, ``referenceNum``, ``poNum``, ``savedElements`` and ``receiveItems``
(``itemIdentifier.sku``, ``qty``), RQL queries, HAL collections under ``_embedded``.

Idempotency is Extensiv's own: the RMA number is the receiver's ``referenceNum``, unique per
customer, so a repeat is refused (400 ``DuplicateReferenceNumber``, modelled: the public docs do
not give the code) and this connector then finds the receiver by ``referenceNum`` and checks it
is this return's (``poNum`` holds the gateway's return id). The create is therefore safe to
repeat and goes out with the ``referenceNum`` as its idempotency key (a 503 or 429 is tried
again in-process). Errors come as ``ErrorCode`` and
``Hint``. Extensiv publishes no request quota: a 429 (or 503) is retried, honouring ``Retry-After``.

Options (routing table): ``customer_id`` (the distributor's customer id in the 3PL's Warehouse
Manager, required), ``default_site`` (the site when an authorization names no ``return_site``;
sites become facility ids through ``tables/facilities.yaml``), ``webhook_secret_env`` (the
environment variable holding the webhook signing secret).

Webhooks are authenticated by ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>``
under that secret. Extensiv's event notifications document no signature of their own, so the
sender (an Extensiv webhook relay, the QC station) signs; a missing or wrong signature is 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx
import msgspec

from gateway.sdk import (
    Connector,
    Delivery,
    Emitted,
    Inbound,
    MappingFailure,
    PermanentDeliveryFailure,
    Receiver,
    TargetConfigError,
    TargetError,
    WebhookRejected,
    handler,
    plain_error,
    reply_json,
    verify_signature,
    webhook_secret,
)

RECEIVERS = "/inventory/receivers"
RECEIVER_REL = "http://api.3plcentral.com/rels/inventory/receiver"
HAL = {"Accept": "application/hal+json", "Content-Type": "application/hal+json; charset=utf-8"}
DUPLICATE = "DuplicateReferenceNumber"
SIGNATURE_HEADER = "x-webhook-signature"
RMA_LINE = "RmaLine"
"""Saved element on each receive item naming the RMA line it expects."""

RECEIPT_CONFIRMED = "ReceiptConfirm"
INSPECTED = "ReturnInspectionComplete"
#: Receipt events a webhook subscription may also deliver; they carry no fact for the gateway.
IGNORED_EVENTS = frozenset({"ReceiptCreate", "ReceiptUpdate"})


class ExtensivConnector(Connector, Receiver):
    profile: ClassVar[str] = "extensiv"

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        try:
            self.customer_id = int(self.options["customer_id"])
        except (KeyError, TypeError, ValueError):
            raise TargetConfigError(
                f"connector {name}: options.customer_id (the Extensiv customer id) is required"
            ) from None

    def read_error(self, response: httpx.Response) -> TargetError:
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            return plain_error(response)
        if not isinstance(body, dict):
            return plain_error(response)
        code = body.get("ErrorCode")
        return TargetError(str(body.get("Hint") or code or response.reason_phrase), code=code)

    # -- expected receipts -------------------------------------------------------------
    @handler("return-authorization.v1")
    async def _expect_return(self, delivery: Delivery) -> Sequence[Emitted] | None:
        authorization = delivery.payload
        if authorization["decision"] == "rejected":
            return None
        lines = [line for line in authorization["lines"] if line["authorized_quantity"] > 0]
        if not lines:
            return None
        site = authorization.get("return_site") or self.options.get("default_site")
        if not site:
            raise PermanentDeliveryFailure(
                f"return {authorization['return_id']} names no return_site and options.default_site is unset",
                code="NO_RETURN_SITE",
            )
        body = self.map(
            "return-authorization.v1.outbound",
            {
                "authorization": {**authorization, "lines": lines},
                "account": {"customerId": self.customer_id, "site": str(site)},
            },
            delivery,
        )
        await self.expect(body)
        return None

    async def expect(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the receiver, or find the one an earlier try created; answer it as Extensiv holds it."""
        try:
            response = await self.target.post(
                RECEIVERS, json=body, headers=HAL, idempotency_key=str(body["referenceNum"])
            )
        except PermanentDeliveryFailure as failure:
            if failure.code != DUPLICATE:
                raise
        else:
            # A 201 we cannot read is retried: the retry is refused as a repeat and reads the receiver back.
            created: dict[str, Any] = reply_json(response)
            return created
        existing = await self.find_receiver(body["referenceNum"])
        if existing is None:
            raise PermanentDeliveryFailure(
                f"Extensiv refused receiver {body['referenceNum']} as a duplicate but holds none with it",
                code=DUPLICATE,
            )
        if existing.get("poNum") != body["poNum"]:
            raise PermanentDeliveryFailure(
                f"receiver {body['referenceNum']} already exists, "
                f"for another return ({existing.get('poNum')!r})",
                code="REFERENCE_TAKEN",
            )
        return existing

    async def find_receiver(self, reference_num: str) -> dict[str, Any] | None:
        """This customer's receiver with ``referenceNum``, or ``None``."""
        rql = f"readOnly.customerIdentifier.id=={self.customer_id};referenceNum=={reference_num}"
        found = reply_json(
            await self.target.get(RECEIVERS, params={"rql": rql, "detail": "All"}, headers=HAL)
        )
        receivers = (found.get("_embedded") or {}).get(RECEIVER_REL) or found.get("ResourceList") or []
        return receivers[0] if receivers else None

    # -- webhooks ----------------------------------------------------------------------
    async def receive(self, inbound: Inbound) -> Sequence[Emitted]:
        self._verify(inbound)
        try:
            event = msgspec.json.decode(inbound.body)
        except msgspec.DecodeError as exc:
            raise WebhookRejected(422, f"the body is not JSON: {exc}") from None
        if not isinstance(event, dict):
            raise WebhookRejected(422, "the body is not a JSON object (an Extensiv event)")
        event_type = event.get("eventType")
        if not isinstance(event_type, str):
            raise WebhookRejected(422, "the event has no eventType (a string)")
        try:
            if event_type == RECEIPT_CONFIRMED:
                return [self._receipt(event)]
            if event_type == INSPECTED:
                return [self._inspection(event)]
        except MappingFailure as failure:
            raise WebhookRejected(
                422, f"{event_type} event {event.get('eventId')!r}: {failure.detail}"
            ) from None
        if event_type in IGNORED_EVENTS:
            return []
        raise WebhookRejected(
            422,
            f"eventType {event_type!r} is not one this connector takes ({RECEIPT_CONFIRMED}, {INSPECTED})",
        )

    def _verify(self, inbound: Inbound) -> None:
        """The body must carry the HMAC-SHA256 of the shared secret (``sha256=<hex>``)."""
        secret = webhook_secret(self.options, self.name)
        verify_signature(inbound, secret=secret, header=SIGNATURE_HEADER, prefix="sha256=")

    def _receipt(self, event: dict[str, Any]) -> Emitted:
        receiver = event.get("resource")
        items = receiver.get("receiveItems") if isinstance(receiver, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise WebhookRejected(422, "ReceiptConfirm event carries no receiver with receiveItems")
        key = f"{_integer(event, 'customerId')}.{_integer(event, 'transactionId')}"
        lines = [_numbered(position, item) for position, item in enumerate(items, 1)]
        receipt = self.map("receipt.v1.inbound", {"event": event, "lines": lines})
        return self.event("receipt.v1", receipt, f"{self.name}.receipt.{key}")

    def _inspection(self, event: dict[str, Any]) -> Emitted:
        resource = event.get("resource")
        inspection_id = resource.get("inspectionId") if isinstance(resource, dict) else None
        if not isinstance(inspection_id, str) or not inspection_id:
            raise WebhookRejected(422, "ReturnInspectionComplete event carries no resource.inspectionId")
        key = f"{_integer(event, 'customerId')}.{inspection_id}"
        inspection = self.map("inspection-result.v1.inbound", event)
        return self.event("inspection-result.v1", inspection, f"{self.name}.inspection.{key}")


def _integer(event: Mapping[str, Any], field: str) -> int:
    """An id of the event's (``customerId``, ``transactionId``) that its message id derives from:
    the WMS's own ids, so the same receipt or inspection delivered twice is the same message."""
    value = event.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WebhookRejected(422, f"{event.get('eventType')} event needs an integer {field}")
    return value


def _numbered(position: int, item: dict[str, Any]) -> dict[str, Any]:
    """A receive item with its place on the receiver and the RMA line it was expected for."""
    line: dict[str, Any] = {"lineNumber": position, "item": item}
    elements = item.get("savedElements") or []
    if not isinstance(elements, list):
        raise WebhookRejected(422, "a receive item's savedElements is not a list")
    for element in elements:
        value = str(element.get("value")) if isinstance(element, dict) else ""
        if value.isascii() and value.isdigit() and element.get("name") == RMA_LINE:  # not "¹"
            line["rmaLineNumber"] = int(value)
    return line
