"""EasyPost sandbox (``/v2``): return shipments, rates, label purchase, signed tracker webhooks.

Speaks the shape an EasyPost connector meets in production:

* HTTP Basic with the API key as user name (the kit checks it); a wrong key is a 401 in
  EasyPost's error shape;
* ``POST /v2/shipments`` (``{"shipment": {...}}``) answers 201 with the shipment and its
  ``rates``; every call creates a new shipment, as EasyPost does (no idempotency key);
* ``GET /v2/shipments/{id}`` takes the id or the ``reference`` set at creation;
* ``POST /v2/shipments/{id}/buy`` (``{"rate": {"id"}}``) buys the label: ``tracking_code``,
  ``postage_label.label_url``, ``selected_rate``, a ``tracker``; a second buy is refused
  (422 ``SHIPMENT.POSTAGE.EXISTS``);
* errors as ``{"error": {"code", "message", "errors": [...]}}``; 429 when throttled.

:meth:`EasyPostSandbox.tracker_event` builds the ``tracker.updated`` webhook EasyPost would
send for a shipment it holds, signed in ``X-Hmac-Signature`` with :attr:`webhook_secret`.
Unlike EasyPost's Tracker it carries the shipment's ``reference`` unless asked not to, so a
receiver without API access (the gateway's webhook intake) can tie it to its return.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import unicodedata
from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath

from gateway.sandbox import Sandbox

BASE = "/v2/shipments"
_FAULT_CODES = {
    401: "APIKEY.INACTIVE",
    404: "NOT_FOUND",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
#: What every shipment is offered: (carrier, service, price in USD, days).
_RATES = (
    ("USPS", "Priority", "8.45", 2),
    ("UPS", "Ground", "11.20", 3),
    ("FedEx", "FEDEX_GROUND", "12.05", 3),
)
_ADDRESS_FIELDS = ("street1", "city", "country")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"


def _signed(secret: str, body: bytes) -> str:
    """EasyPost's ``X-Hmac-Signature``, computed here on its own (not with the connector's code)."""
    key = unicodedata.normalize("NFKD", secret).encode()
    return "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


class EasyPostSandbox(Sandbox):
    profile = "easypost"
    token_path = None  # HTTP Basic: the API key is the user name
    webhook_secret = DEFAULT_WEBHOOK_SECRET

    def error(
        self, status: int, message: str, code: str = "", errors: list[Any] | None = None
    ) -> Response[Any]:
        if not code or code == "SANDBOX_FAULT":
            code = _FAULT_CODES.get(status, "UNKNOWN")
        return Response(
            {"error": {"code": code, "message": message, "errors": errors or []}}, status_code=status
        )

    def unauthorized(self) -> Response[Any]:
        return self.error(401, "The API key provided is inactive or does not exist.", "APIKEY.INACTIVE")

    # -- operations --------------------------------------------------------------------
    def _find(self, key: str) -> dict[str, Any] | None:
        if key.startswith("shp_"):
            return self.state.get("shipments", key)
        matches = [s for s in self.state.all("shipments") if s.get("reference") == key]
        return matches[-1] if matches else None

    def _create(self, body: Any) -> Response[Any]:
        shipment = body.get("shipment") if isinstance(body, dict) else None
        if not isinstance(shipment, dict):
            return self.error(422, "Missing required parameter.", "PARAMETER.REQUIRED", ["shipment"])
        problems = [
            {"field": f"{side}.{name}", "message": "cannot be blank"}
            for side in ("to_address", "from_address")
            for name in _ADDRESS_FIELDS
            if not (shipment.get(side) or {}).get(name)
        ]
        if not (shipment.get("parcel") or {}).get("weight"):
            problems.append({"field": "parcel.weight", "message": "must be greater than 0"})
        if problems:
            return self.error(
                422,
                "Unable to create shipment, one or more parameters were invalid.",
                "SHIPMENT.INVALID_PARAMS",
                problems,
            )
        shipment_id, now = _id("shp"), _now()
        record = {
            "id": shipment_id,
            "object": "Shipment",
            "mode": "test",
            "reference": shipment.get("reference"),
            "is_return": bool(shipment.get("is_return")),
            "status": "unknown",
            "to_address": {"id": _id("adr"), "object": "Address", **shipment["to_address"]},
            "from_address": {"id": _id("adr"), "object": "Address", **shipment["from_address"]},
            "parcel": {"id": _id("prcl"), "object": "Parcel", **shipment["parcel"]},
            "options": shipment.get("options") or {},
            "rates": [
                {
                    "id": _id("rate"),
                    "object": "Rate",
                    "carrier": carrier,
                    "service": service,
                    "rate": price,
                    "currency": "USD",
                    "delivery_days": days,
                    "shipment_id": shipment_id,
                }
                for carrier, service, price, days in _RATES
            ],
            "selected_rate": None,
            "postage_label": None,
            "tracking_code": None,
            "tracker": None,
            "messages": [],
            "created_at": now,
            "updated_at": now,
        }
        self.state.put("shipments", shipment_id, record)
        return Response(record, status_code=201)

    def _buy(self, shipment_id: str, body: Any) -> Response[Any]:
        rate_id = ((body or {}).get("rate") or {}).get("id") if isinstance(body, dict) else None
        with self.state.lock:  # check and buy as one step, as EasyPost refuses a second purchase
            shipment = self.state.records.get("shipments", {}).get(shipment_id)
            if shipment is None:
                return self.error(404, "The requested resource could not be found.", "NOT_FOUND")
            if shipment["postage_label"] is not None:
                return self.error(422, "Postage already exists for this shipment.", "SHIPMENT.POSTAGE.EXISTS")
            rate = next((r for r in shipment["rates"] if r["id"] == rate_id), None)
            if rate is None:
                return self.error(
                    422, f"Rate {rate_id!r} is not a rate of this shipment.", "SHIPMENT.RATE.INVALID"
                )
            now = _now()
            tracking_code = f"EZ{self.state.next_id:010d}"
            self.state.next_id += 1
            shipment.update(
                selected_rate=rate,
                tracking_code=tracking_code,
                postage_label={
                    "id": _id("pl"),
                    "object": "PostageLabel",
                    "label_date": now,
                    "label_file_type": "image/png",
                    "label_url": f"https://easypost-files.example/postage_label/{shipment_id}.png",
                },
                tracker={
                    "id": _id("trk"),
                    "object": "Tracker",
                    "tracking_code": tracking_code,
                    "status": "pre_transit",
                    "carrier": rate["carrier"],
                    "shipment_id": shipment_id,
                },
                updated_at=now,
            )
            self.state.records.setdefault("purchases", {})[shipment_id] = {
                "shipment_id": shipment_id,
                "rate": rate,
            }
            return Response(dict(shipment))

    def tracker_event(
        self,
        shipment_id: str,
        status: str,
        *,
        message: str = "",
        location: dict[str, str] | None = None,
        with_reference: bool = True,
    ) -> tuple[bytes, dict[str, str]]:
        """The signed ``tracker.updated`` webhook for a bought shipment now at ``status``:
        raw body and headers, as EasyPost would POST them."""
        shipment = self.state.get("shipments", shipment_id)
        if shipment is None or shipment["tracker"] is None:
            raise KeyError(f"the sandbox holds no bought shipment {shipment_id}")
        now = _now()
        detail = {
            "object": "TrackingDetail",
            "message": message or status.replace("_", " ").capitalize(),
            "status": status,
            "datetime": now,
            "source": shipment["tracker"]["carrier"],
            "tracking_location": {"object": "TrackingLocation", **(location or {})},
        }
        tracker = {**shipment["tracker"], "status": status, "updated_at": now, "tracking_details": [detail]}
        if with_reference:
            tracker["reference"] = shipment["reference"]
        shipment["tracker"] = {k: v for k, v in tracker.items() if k not in ("reference", "tracking_details")}
        event = {
            "object": "Event",
            "id": _id("evt"),
            "mode": "test",
            "description": "tracker.updated",
            "created_at": now,
            "updated_at": now,
            "result": tracker,
        }
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "X-Hmac-Signature": _signed(self.webhook_secret, body)}
        return body, headers

    def handlers(self) -> list[BaseRouteHandler]:
        sandbox = self

        @post(BASE, status_code=201)
        async def create(request: Request[Any, Any, Any]) -> Response[Any]:
            return sandbox._create(await _json(request))

        @get(f"{BASE}/{{key:str}}")
        async def read(key: FromPath[str]) -> Response[Any]:
            shipment = sandbox._find(key)
            if shipment is None:
                return sandbox.error(404, "The requested resource could not be found.", "NOT_FOUND")
            return Response(shipment)

        @post(f"{BASE}/{{shipment_id:str}}/buy", status_code=200)
        async def buy(shipment_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
            return sandbox._buy(shipment_id, await _json(request))

        return [create, read, buy]


async def _json(request: Request[Any, Any, Any]) -> Any:
    try:
        return await request.json()
    except Exception:
        return None
