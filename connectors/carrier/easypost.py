"""EasyPost (``https://api.easypost.com/v2``): return labels, and tracker webhooks.

Modelled on EasyPost's public API reference (Shipments, Returns, Trackers, Events,
Errors, Rate limiting and webhook HMAC validation pages):

* ``return-authorization.v1`` (authorized or partially authorized) → a return shipment,
  ``POST /v2/shipments`` with ``is_return: true`` and the return id as ``reference``, then
  ``POST /v2/shipments/{id}/buy`` with the chosen ``rate: {id}``; answers a canonical
  ``tracking-event`` (``pre_transit``, the tracking code) whose id comes from the shipment.
  A rejected authorization is acknowledged without a call.
* ``receive`` takes EasyPost ``Event`` webhooks carrying a ``Tracker`` (``tracker.created``,
  ``tracker.updated``), checks ``X-Hmac-Signature`` and answers canonical ``tracking-event``\\s.
  EasyPost's Tracker names its ``shipment_id`` but not the shipment's ``reference`` (the return
  id): the connector takes ``reference`` from the tracker when it carries one (the sandbox adds
  it) and otherwise reads the shipment (``GET /v2/shipments/{id}``), which needs a target.
  Events of other kinds (batches, refunds) are acknowledged with no canonical event.

Duplicates: EasyPost documents no idempotency key and creates a new shipment for every
``POST /v2/shipments``. EasyPost does accept a ``reference`` in place of the id on
``GET /v2/shipments/{id}``, so before creating, this connector reads the shipment by its
reference (the return id): found and bought, it is answered as it is; found unbought, it is
bought; not found, it is created. EasyPost refuses to buy a shipment twice
(``SHIPMENT.POSTAGE.EXISTS``), which covers a buy whose reply was lost. A repeat therefore
buys one label. The buy is safe to repeat and goes out with an idempotency key (tried again
in-process on a 503 or 429); the create is not (a repeat would make a second shipment), so it
is only tried again through the runtime, which reads by reference first.

Errors are ``{"error": {"code", "message", "errors": [...]}}``; 429 is EasyPost's throttle
(load-based, no fixed limit: ``Retry-After`` is honoured when present, else the runtime's
backoff applies). Authentication is HTTP Basic with the API key as user name and no password.

Options: ``return_sites`` (site code → EasyPost address of the return site),
``default_return_site`` (when the authorization names none), ``parcel`` (default parcel, inches
and ounces), ``label_options`` (``label_format``, ``label_size``), ``carrier`` and ``service``
(which rate to buy; the cheapest matching one), ``webhook_secret_env`` (environment variable
holding the webhook secret).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from gateway.sdk import (
    Connector,
    Delivery,
    DeliveryFailed,
    Emitted,
    Inbound,
    MappingFailure,
    PermanentDeliveryFailure,
    Receiver,
    TargetError,
    WebhookRejected,
    handler,
    hmac_hex,
    reply_json,
    verify_signature,
    webhook_secret,
)

SHIPMENTS = "/v2/shipments"
POSTAGE_EXISTS = "SHIPMENT.POSTAGE.EXISTS"
SIGNATURE_HEADER = "x-hmac-signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="
#: Parcel when the options name none: a small box, 2 lb (EasyPost's units: inches, ounces).
DEFAULT_PARCEL = {"length": 12.0, "width": 9.0, "height": 4.0, "weight": 32.0}


def signature(secret: str, body: bytes) -> str:
    """``X-Hmac-Signature`` for ``body``, as EasyPost computes it."""
    return SIGNATURE_PREFIX + hmac_hex(secret, body)


class EasyPostConnector(Connector, Receiver):
    profile: ClassVar[str] = "easypost"

    def read_error(self, response: httpx.Response) -> TargetError:
        error = json.loads(response.content)["error"]
        details = [
            f"{item.get('field')}: {item.get('message')}" if isinstance(item, dict) else str(item)
            for item in error.get("errors") or ()
        ]
        message = str(error.get("message") or response.reason_phrase)
        return TargetError("; ".join([message, *details]), code=error.get("code"))

    # -- return labels -------------------------------------------------------------------
    @handler("return-authorization.v1")
    async def _ship_back(self, delivery: Delivery) -> Sequence[Emitted] | None:
        authorization = delivery.payload
        if authorization["decision"] == "rejected":
            return None  # nothing to ship back
        settings = self._label_settings(authorization)
        shipment = await self.shipment(authorization["return_id"])
        if shipment is None:
            body = self.map(
                "return-authorization.v1.outbound",
                {"authorization": authorization, "settings": settings},
                delivery,
            )
            shipment = reply_json(await self.target.post(SHIPMENTS, json=body))
        if not shipment.get("postage_label"):
            shipment = await self._buy(shipment)
        tracking = self.map("label.inbound", {"authorization": authorization, "shipment": shipment}, delivery)
        return [self.event("tracking-event.v1", tracking, f"{self.name}.{shipment['id']}.label")]

    async def shipment(self, key: str) -> dict[str, Any] | None:
        """A shipment by id or by reference; ``None`` if EasyPost has none."""
        try:
            return reply_json(await self.target.get(f"{SHIPMENTS}/{quote(key, safe='')}"))  # type: ignore[no-any-return]
        except PermanentDeliveryFailure as failure:
            if failure.status_code == 404:
                return None
            raise

    def _label_settings(self, authorization: dict[str, Any]) -> dict[str, Any]:
        """What the label takes from configuration: the return site's address, the parcel."""
        if not authorization.get("ship_from"):
            raise PermanentDeliveryFailure(
                f"return {authorization['return_id']} has no ship_from address to collect from",
                code="NO_SHIP_FROM",
            )
        site = authorization.get("return_site") or self.options.get("default_return_site")
        address = (self.options.get("return_sites") or {}).get(site)
        if not address:
            raise PermanentDeliveryFailure(
                f"no address for return site {site!r} in options.return_sites", code="UNKNOWN_RETURN_SITE"
            )
        settings = {"return_address": address, "parcel": self.options.get("parcel") or DEFAULT_PARCEL}
        if self.options.get("label_options"):
            settings["label_options"] = self.options["label_options"]
        return settings

    async def _buy(self, shipment: dict[str, Any]) -> dict[str, Any]:
        rate = self._choose_rate(shipment)
        url = f"{SHIPMENTS}/{shipment['id']}/buy"
        try:
            bought = await self.target.post(
                url, json={"rate": {"id": rate["id"]}}, idempotency_key=f"{shipment['id']}.buy"
            )
            return reply_json(bought)  # type: ignore[no-any-return]
        except PermanentDeliveryFailure as failure:
            if failure.code != POSTAGE_EXISTS:  # bought by a try whose reply we lost
                raise
        return reply_json(await self.target.get(f"{SHIPMENTS}/{shipment['id']}"))  # type: ignore[no-any-return]

    def _choose_rate(self, shipment: dict[str, Any]) -> dict[str, Any]:
        """The cheapest rate of ``options.carrier`` / ``options.service`` (either may be unset)."""
        carrier, service = self.options.get("carrier"), self.options.get("service")
        rates = [
            rate
            for rate in shipment.get("rates") or ()
            if (not carrier or rate.get("carrier") == carrier)
            and (not service or rate.get("service") == service)
        ]
        if not rates:
            offered = ", ".join(f"{r.get('carrier')} {r.get('service')}" for r in shipment.get("rates") or ())
            notes = "; ".join(
                str(m.get("message")) for m in shipment.get("messages") or () if isinstance(m, dict)
            )
            raise PermanentDeliveryFailure(
                f"shipment {shipment['id']} has no rate for {carrier or 'any carrier'} "
                f"{service or 'any service'} (offered: {offered or 'none'}){'; ' + notes if notes else ''}",
                code="NO_MATCHING_RATE",
            )
        return min(rates, key=_price)

    # -- tracker webhooks ----------------------------------------------------------------
    async def receive(self, inbound: Inbound) -> Sequence[Emitted]:
        self._verify(inbound)
        try:
            event = json.loads(inbound.body)
        except ValueError as exc:
            raise WebhookRejected(422, f"body is not JSON: {exc}") from None
        if not isinstance(event, dict) or event.get("object") != "Event" or not event.get("id"):
            raise WebhookRejected(422, "body is not an EasyPost Event")
        tracker = event.get("result")
        if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
            return []  # another kind of event (batch, refund, invoice): nothing to track here
        shipment = await self._tracked_shipment(tracker)
        listed = tracker.get("tracking_details") or []
        if not isinstance(listed, list):
            raise WebhookRejected(422, "the Tracker's tracking_details is not a list")
        details = [d for d in listed if isinstance(d, dict)]
        try:
            payload = self.map(
                "tracker.inbound",
                {"event": event, "shipment": shipment, "latest": details[-1] if details else {}},
            )
        except MappingFailure as exc:
            raise WebhookRejected(422, exc.detail) from None
        return [self.event("tracking-event.v1", payload, f"{self.name}.{event['id']}")]

    def _verify(self, inbound: Inbound) -> None:
        secret = webhook_secret(self.options, self.name)
        verify_signature(inbound, secret=secret, header=SIGNATURE_HEADER, prefix=SIGNATURE_PREFIX)

    async def _tracked_shipment(self, tracker: dict[str, Any]) -> dict[str, str]:
        """The tracker's shipment id and reference (the return id): from the event when it
        carries the reference, else read from EasyPost, which needs the connector's target."""
        shipment_id = tracker.get("shipment_id")
        if not shipment_id:
            raise WebhookRejected(422, f"tracker {tracker.get('id')} follows no shipment of ours")
        if tracker.get("reference"):
            return {"id": str(shipment_id), "reference": str(tracker["reference"])}
        if self._target is None:
            raise WebhookRejected(422, f"tracker {tracker.get('id')} names no reference and no target to ask")
        try:
            shipment = await self.shipment(str(shipment_id))
        except DeliveryFailed as failure:
            raise WebhookRejected(503, f"cannot read shipment {shipment_id}: {failure.detail}") from None
        if shipment is None or not shipment.get("reference"):
            raise WebhookRejected(422, f"EasyPost has no shipment {shipment_id} with a reference")
        return {"id": str(shipment_id), "reference": str(shipment["reference"])}


def _price(rate: dict[str, Any]) -> Decimal:
    try:
        return Decimal(str(rate.get("rate")))
    except InvalidOperation:
        return Decimal("Infinity")
