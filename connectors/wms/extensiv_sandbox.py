"""Extensiv 3PL Warehouse Manager (formerly 3PL Central) REST API sandbox.

Speaks the shape a WMS connector meets at ``https://secure-wms.com``:

* OAuth 2.0 client credentials at ``/AuthServer/api/Token`` (HTTP Basic client id and secret,
  ``grant_type=client_credentials`` as JSON, as Extensiv takes it, or as a form), bearer tokens;
* ``POST /inventory/receivers`` creates a receiver (an expected receipt, ASN) and answers
  201 with the receiver as HAL+JSON and its URL in ``Location``;
* a second receiver with the same ``referenceNum`` for the same customer is refused with 400
  ``DuplicateReferenceNumber``: Extensiv's "unique reference number" rule for receivers,
  modelled (its exact error code is not in the public docs);
* ``GET /inventory/receivers/{id}`` and ``GET /inventory/receivers?rql=...`` (RQL clauses
  ``field==value`` joined by ``;``, field names case-insensitive) with the result under
  ``_embedded`` keyed by the receiver rel, as Extensiv's HAL collections are;
* errors as ``{"ErrorCode", "Hint", "Properties", "ErrorData"}``.

The warehouse side is a method, not an endpoint Extensiv has: :meth:`ExtensivSandbox.confirm_receipt`
confirms a receiver (the goods arrived, were counted and put in a bin) and answers the signed
``ReceiptConfirm`` webhook Warehouse Manager would send; :meth:`ExtensivSandbox.inspect_return`
answers the companion ``ReturnInspectionComplete`` webhook a QC station sends after grading.
Both are also under ``/_sandbox/`` for a sandbox running in another process.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody

from gateway.sandbox import CONTROL_PREFIX, Credentials, Sandbox

RECEIVERS = "/inventory/receivers"
RECEIVER_REL = "http://api.3plcentral.com/rels/inventory/receiver"
HAL = "application/hal+json; charset=utf-8"
SIGNATURE_HEADER = "X-Webhook-Signature"
DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"
_ERROR_CODES = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests"}
_RQL_CLAUSE = re.compile(r"^\s*([A-Za-z][\w.]*)\s*==\s*\"?([^\";]*)\"?\s*$")
#: The 3PL's customers (the distributor renting the warehouse) and facilities.
CUSTOMERS = {1: "Returns Gateway Demo GmbH"}
FACILITIES = {1: "DC-HAM", 2: "DC-KOELN"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    """``readOnly.customerIdentifier.id`` in ``record``, field names compared case-insensitively."""
    value: Any = record
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == step.lower()), None)
    return value


class ExtensivSandbox(Sandbox):
    profile = "extensiv"
    token_path = "/AuthServer/api/Token"
    token_lifetime = 1800

    def __init__(
        self, credentials: Credentials | None = None, *, webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    ):
        super().__init__(credentials)
        self.webhook_secret = webhook_secret

    # -- the system's error format ---------------------------------------------------
    def error(self, status: int, message: str, code: str = "") -> Response[Any]:
        return Response(
            {
                "ErrorCode": code
                if code and code != "SANDBOX_FAULT"
                else _ERROR_CODES.get(status, "ServerError"),
                "Hint": message,
                "Properties": {},
                "ErrorData": None,
            },
            status_code=status,
            media_type="application/json; charset=utf-8",
        )

    def unauthorized(self) -> Response[Any]:
        return self.error(401, "Authorization has been denied for this request.")

    # -- receivers ------------------------------------------------------------------
    def find_receiver(self, reference_num: str, customer_id: int = 1) -> dict[str, Any] | None:
        for record in self.state.all("receivers"):
            if (
                record["referenceNum"] == reference_num
                and _lookup(record, "readOnly.customerIdentifier.id") == customer_id
            ):
                return record
        return None

    def _problems(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["the body is not a receiver object"]
        problems = []
        customer = _lookup(body, "customerIdentifier.id")
        if customer not in CUSTOMERS:
            problems.append(f"customerIdentifier.id {customer!r} is not a customer of this warehouse")
        facility = _lookup(body, "facilityIdentifier.id")
        if facility not in FACILITIES:
            problems.append(f"facilityIdentifier.id {facility!r} is not a facility of this warehouse")
        if not isinstance(body.get("referenceNum"), str) or not body["referenceNum"].strip():
            problems.append("referenceNum is required")
        items = body.get("receiveItems")
        if not isinstance(items, list) or not items:
            problems.append("receiveItems must hold at least one item")
            return problems
        for position, item in enumerate(items):
            if not isinstance(_lookup(item, "itemIdentifier.sku"), str):
                problems.append(f"receiveItems[{position}].itemIdentifier.sku is required")
            qty = item.get("qty") if isinstance(item, dict) else None
            if not isinstance(qty, int | float) or isinstance(qty, bool) or qty <= 0:
                problems.append(f"receiveItems[{position}].qty must be a positive number")
        return problems

    def _create(self, body: Any, request: Request[Any, Any, Any]) -> Response[Any]:
        problems = self._problems(body)
        if problems:
            return self.error(400, "; ".join(problems), "ValidationError")
        customer = body["customerIdentifier"]["id"]
        if self.find_receiver(body["referenceNum"], customer) is not None:
            return self.error(
                400,
                f"A receiver with reference number {body['referenceNum']} already exists for this customer.",
                "DuplicateReferenceNumber",
            )
        receiver_id = int(self.state.new_id())
        items = []
        for item in body["receiveItems"]:
            items.append(
                {
                    **item,
                    "readOnly": {
                        "receiveItemId": int(self.state.new_id()),
                        "unitIdentifier": {"id": 1, "name": "Each"},
                    },
                }
            )
        facility = body["facilityIdentifier"]["id"]
        record = {
            **{k: v for k, v in body.items() if k not in ("customerIdentifier", "facilityIdentifier")},
            "readOnly": {
                "receiverId": receiver_id,
                "status": 0,
                "customerIdentifier": {"id": customer, "name": CUSTOMERS[customer]},
                "facilityIdentifier": {"id": facility, "name": FACILITIES[facility]},
                "creationDate": _now().replace(tzinfo=None).isoformat(),
            },
            "receiveItems": items,
            "_links": {"self": {"href": f"{RECEIVERS}/{receiver_id}"}},
        }
        self.state.put("receivers", str(receiver_id), record)
        location = f"{str(request.base_url).rstrip('/')}{RECEIVERS}/{receiver_id}"
        return Response(record, status_code=201, media_type=HAL, headers={"Location": location})

    def _query(self, rql: str) -> Response[Any]:
        clauses = []
        for text in filter(None, rql.split(";")):
            match = _RQL_CLAUSE.match(text)
            if match is None:
                return self.error(400, f"Unsupported RQL clause: {text!r}", "InvalidRql")
            clauses.append((match.group(1), match.group(2)))
        found = [r for r in self.state.all("receivers") if all(str(_lookup(r, f)) == v for f, v in clauses)]
        return Response(
            {"totalResults": len(found), "_embedded": {RECEIVER_REL: found}, "_links": {}}, media_type=HAL
        )

    # -- the warehouse's side: webhooks ------------------------------------------------
    def sign(self, body: bytes, secret: str | None = None) -> dict[str, str]:
        """Headers of a webhook carrying ``body``: its HMAC-SHA256 under the webhook secret."""
        digest = hmac.new((secret or self.webhook_secret).encode(), body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", SIGNATURE_HEADER: f"sha256={digest}"}

    def confirm_receipt(
        self,
        reference_num: str,
        *,
        customer_id: int = 1,
        location: str = "QRN-01-A",
        tracking_number: str | None = None,
        extra_items: Sequence[tuple[str, float]] = (),
        event_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The warehouse received the goods of receiver ``reference_num`` in full, put them in
        ``location`` (plus ``extra_items`` nobody expected) and confirmed it: answers the signed
        ``ReceiptConfirm`` webhook body and headers."""
        receiver = self._receiver_or_fail(reference_num, customer_id)
        extra_ids = [int(self.state.new_id()) for _ in extra_items]
        with self.state.lock:
            if receiver["readOnly"]["status"] != 1:
                facility = receiver["readOnly"]["facilityIdentifier"]
                for (sku, qty), item_id in zip(extra_items, extra_ids, strict=True):
                    receiver["receiveItems"].append(
                        {
                            "itemIdentifier": {"sku": sku},
                            "qty": qty,
                            "readOnly": {
                                "receiveItemId": item_id,
                                "unitIdentifier": {"id": 1, "name": "Each"},
                            },
                        }
                    )
                for item in receiver["receiveItems"]:
                    item["locationIdentifier"] = {
                        "nameKey": {"name": location, "facilityIdentifier": facility}
                    }
                receiver["readOnly"]["status"] = 1
                receiver["arrivalDate"] = _now().replace(tzinfo=None).isoformat()
                if tracking_number:
                    receiver["trackingNumber"] = tracking_number
            resource = copy.deepcopy(receiver)
        read_only = resource["readOnly"]
        return self._signed(
            self._event(
                "ReceiptConfirm",
                resource,
                customer_id=customer_id,
                facility_id=read_only["facilityIdentifier"]["id"],
                transaction_id=read_only["receiverId"],
                event_id=event_id,
            )
        )

    def inspect_return(
        self,
        reference_num: str,
        *,
        grades: Mapping[int, str] | None = None,
        customer_id: int = 1,
        inspector: tuple[str, str] = ("t.nowak", "Tomasz Nowak"),
        inspection_id: str | None = None,
        event_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """QC graded every line of the confirmed receiver ``reference_num`` (``grades`` by
        receipt line, ``NEW`` when not given): answers the signed ``ReturnInspectionComplete``
        webhook body and headers."""
        receiver = copy.deepcopy(self._receiver_or_fail(reference_num, customer_id))
        if receiver["readOnly"]["status"] != 1:
            raise ValueError(f"receiver {reference_num} is not confirmed: nothing to inspect yet")
        lines = []
        for number, item in enumerate(receiver["receiveItems"], 1):
            line: dict[str, Any] = {
                "lineNumber": number,
                "receiptLineNumber": number,
                "sku": item["itemIdentifier"]["sku"],
                "qty": item["qty"],
                "unit": item["readOnly"]["unitIdentifier"]["name"],
                "grade": (grades or {}).get(number, "NEW"),
            }
            if item.get("serialNumber"):
                line["serialNumbers"] = [item["serialNumber"]]
            lines.append(line)
        resource = {
            "inspectionId": inspection_id or f"QC-{receiver['readOnly']['receiverId']}",
            "receiverId": receiver["readOnly"]["receiverId"],
            "referenceNum": receiver["referenceNum"],
            "poNum": receiver.get("poNum", ""),
            "inspectedAt": _now().isoformat(),
            "inspectedBy": {"login": inspector[0], "name": inspector[1]},
            "lines": lines,
        }
        return self._signed(
            self._event(
                "ReturnInspectionComplete",
                resource,
                customer_id=customer_id,
                facility_id=receiver["readOnly"]["facilityIdentifier"]["id"],
                transaction_id=receiver["readOnly"]["receiverId"],
                event_id=event_id,
            )
        )

    def _receiver_or_fail(self, reference_num: str, customer_id: int) -> dict[str, Any]:
        receiver = self.find_receiver(reference_num, customer_id)
        if receiver is None:
            raise KeyError(f"the sandbox holds no receiver {reference_num} for customer {customer_id}")
        return receiver

    @staticmethod
    def _event(
        event_type: str,
        resource: dict[str, Any],
        *,
        customer_id: int,
        facility_id: int,
        transaction_id: int,
        event_id: str | None,
    ) -> dict[str, Any]:
        """An event notification as Warehouse Manager frames one, with its resource attached."""
        return {
            "eventId": event_id or uuid.uuid4().hex,
            "eventType": event_type,
            "eventDate": _now().isoformat(),
            "customerId": customer_id,
            "facilityId": facility_id,
            "transactionId": transaction_id,
            "resource": resource,
        }

    def _signed(self, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = msgspec.json.encode(event)
        return body, self.sign(body)

    # -- routes ------------------------------------------------------------------------
    def handlers(self) -> list[BaseRouteHandler]:
        sandbox = self

        @post(sandbox.token_path, status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            import base64

            body = await request.body()
            try:
                form: Any = (
                    msgspec.json.decode(body) if body.lstrip().startswith(b"{") else await request.form()
                )
            except msgspec.DecodeError:
                form = {}
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            try:
                user, _, secret = (
                    base64.b64decode(value).decode() if scheme.lower() == "basic" else ":"
                ).partition(":")
            except ValueError:
                user, secret = "", ""
            issued = (
                sandbox.issue_token(user, secret) if form.get("grant_type") == "client_credentials" else None
            )
            if issued is None:
                return Response({"error": "invalid_client"}, status_code=401)
            return Response({**issued, "refresh_token": None, "scope": None})

        @post(RECEIVERS, status_code=201)
        async def create(request: Request[Any, Any, Any]) -> Response[Any]:
            try:
                body = msgspec.json.decode(await request.body())
            except msgspec.DecodeError:
                return sandbox.error(400, "The request body is not valid JSON.", "InvalidJson")
            return sandbox._create(body, request)

        @get(f"{RECEIVERS}/{{receiver_id:int}}")
        async def read(receiver_id: FromPath[int]) -> Response[Any]:
            record = sandbox.state.get("receivers", str(receiver_id))
            if record is None:
                return sandbox.error(404, f"Receiver {receiver_id} was not found.", "EntityNotFound")
            return Response(
                record, media_type=HAL, headers={"ETag": f'"{receiver_id}-{record["readOnly"]["status"]}"'}
            )

        @get(RECEIVERS)
        async def query(rql: FromQuery[str] = "") -> Response[Any]:
            return sandbox._query(rql)

        @post(f"{CONTROL_PREFIX}/confirm-receipt", status_code=200)
        async def confirm(data: JSONBody[dict[str, Any]]) -> Response[Any]:
            options = {k: v for k, v in data.items() if k != "reference_num"}
            try:
                body, headers = sandbox.confirm_receipt(str(data.get("reference_num")), **options)
            except (KeyError, TypeError) as exc:
                return Response({"error": str(exc)}, status_code=404)
            return Response({"body": body.decode(), "headers": headers})

        @post(f"{CONTROL_PREFIX}/inspect-return", status_code=200)
        async def inspect(data: JSONBody[dict[str, Any]]) -> Response[Any]:
            options = {k: v for k, v in data.items() if k != "reference_num"}
            if "grades" in options:
                options["grades"] = {int(k): v for k, v in options["grades"].items()}
            try:
                body, headers = sandbox.inspect_return(str(data.get("reference_num")), **options)
            except (KeyError, TypeError, ValueError) as exc:
                return Response({"error": str(exc)}, status_code=404)
            return Response({"body": body.decode(), "headers": headers})

        return [token, create, read, query, confirm, inspect]
