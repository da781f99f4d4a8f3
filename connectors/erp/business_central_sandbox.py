"""Dynamics 365 Business Central sandbox (standard REST API v2.0).

Speaks the shape a Business Central connector meets in production:

* OAuth 2.0 client credentials at the Microsoft identity platform's
  ``/{tenant}/oauth2/v2.0/token`` (client secret as Basic or in the form; scope, when sent,
  must be ``https://api.businesscentral.dynamics.com/.default``); AAD-style error bodies;
* ``/v2.0/{tenant}/{environment}/api/v2.0/companies({id})/<entitySet>``: ``salesOrders``,
  ``salesInvoices``, ``salesShipments`` (read), ``salesCreditMemos`` and ``purchaseCreditMemos``
  (deep insert of their lines on POST, 201 with the entity), lines under
  ``<entitySet>({id})/<entity>Lines``, ``$filter=field eq 'value'`` (``and``-ed), ``$expand``;
* every entity carries ``@odata.etag``; PATCH and DELETE require ``If-Match`` and a stale one
  is refused with 412 ``Request_EntityChanged``, as Business Central does; the bound action
  ``Microsoft.NAV.post`` (204) checks ``If-Match`` when sent;
* ``locations`` (read); a document line's ``locationId`` must name one (else 400, as BC refuses a
  Location Code not in the Location table); posting a sales credit memo writes one
  ``itemLedgerEntries`` entry per item line (``Sale``, positive quantity: the goods come back into
  stock at the line's location, which the posted line keeps);
* ``externalDocumentNumber`` is NOT unique, as in Business Central: a second POST makes a
  second document (the connector must look before it creates);
* errors as OData ``{"error": {"code", "message"}}``; throttling is 429 with ``Retry-After``.

Seeded with the sales order, shipment and invoice the demo returns refer to, and the locations
the demo policy restocks into.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from typing import Any

from litestar import Request, Response, delete, get, patch, post
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath

from gateway.sandbox import Sandbox

TENANT = "7f3c2a10-5b8e-4d21-9c4a-0e6f1b2d3a45"
ENVIRONMENT = "sandbox"
COMPANY_ID = "3c9f1e52-8a47-4b0d-b6e2-91d5a0c7f318"
API = f"/v2.0/{TENANT}/{ENVIRONMENT}/api/v2.0"
SCOPE = "https://api.businesscentral.dynamics.com/.default"

_PATH = re.compile(
    r"^companies\((?P<company>[^)]+)\)/(?P<set>[A-Za-z]+)(?:\((?P<id>[^)]+)\))?"
    r"(?:/(?P<nav>[A-Za-z.]+)(?:\((?P<line>[^)]+)\))?)?$"
)
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$")
#: Entity set → the navigation property holding its lines.
_LINES = {
    "salesOrders": "salesOrderLines",
    "salesInvoices": "salesInvoiceLines",
    "salesShipments": "salesShipmentLines",
    "salesCreditMemos": "salesCreditMemoLines",
    "purchaseCreditMemos": "purchaseCreditMemoLines",
}
_WRITABLE = {"salesCreditMemos": "S-CR", "purchaseCreditMemos": "P-CR"}
_CODES = {
    400: "BadRequest",
    401: "Authentication_InvalidCredentials",
    404: "BadRequest_NotFound",
    412: "Request_EntityChanged",
    429: "Application_TooManyRequests",
    500: "Internal_ServerError",
    503: "Internal_ServiceUnavailable",
}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _seed_documents() -> list[tuple[str, dict[str, Any]]]:
    """The order, its shipment and its invoice for the demo customers' returns."""
    items = [
        ("SSD-SAM-PM893-1T92", "Samsung PM893 1.92 TB SATA SSD", 6, 289.5),
        ("PSU-MW-RSP-500-24", "Mean Well RSP-500-24 power supply", 4, 96.0),
        ("CBL-CAT6A-SFTP-5M", "Cat6A S/FTP patch cable 5 m", 50, 7.9),
    ]

    def lines() -> list[dict[str, Any]]:
        return [
            {
                "id": str(uuid.uuid4()),
                "sequence": 10000 * (n + 1),
                "lineType": "Item",
                "lineObjectNumber": sku,
                "description": text,
                "unitOfMeasureCode": "PCS",
                "quantity": qty,
                "unitPrice": price,
            }
            for n, (sku, text, qty, price) in enumerate(items)
        ]

    base = {"customerNumber": "C100234", "customerName": "Nordwind Automation GmbH", "currencyCode": "EUR"}
    return [
        (
            "salesOrders",
            {**base, "id": "5d0c8f3e-1a2b-4c3d-8e4f-500000118832", "number": "4500118832",
             "orderDate": "2024-02-02", "status": "Released", "salesOrderLines": lines()},
        ),
        (
            "salesShipments",
            {**base, "id": "5d0c8f3e-1a2b-4c3d-8e4f-500000071234", "number": "80071234",
             "postingDate": "2024-02-05", "orderNumber": "4500118832", "salesShipmentLines": lines()},
        ),
        (
            "salesInvoices",
            {**base, "id": "5d0c8f3e-1a2b-4c3d-8e4f-500000031877", "number": "90031877",
             "invoiceDate": "2024-02-06", "postingDate": "2024-02-06", "orderNumber": "4500118832",
             "status": "Open", "salesInvoiceLines": lines()},
        ),
    ]  # fmt: skip


#: The demo company's locations: (code, name).
LOCATIONS = [
    ("DC-HAM", "Hamburg distribution centre"),
    ("STOCK-A", "Hamburg sellable stock"),
    ("REFURB-01", "Refurbishment bench"),
    ("REPAIR-01", "Repair workshop"),
    ("QUARANTINE", "Returns quarantine"),
]


class BusinessCentralSandbox(Sandbox):
    profile = "business_central"
    token_path = f"/{TENANT}/oauth2/v2.0/token"

    def connector_options(self) -> dict[str, Any]:
        return {"tenant": TENANT, "environment": ENVIRONMENT, "company_id": COMPANY_ID}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for entity_set, record in _seed_documents():
            self._stamp(record)
            self.state.put(entity_set, record["id"], record)
        for code, name in LOCATIONS:
            location = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bc-location/{code}")), "code": code,
                        "displayName": name}  # fmt: skip
            self._stamp(location)
            self.state.put("locations", location["id"], location)

    def location_code(self, location_id: str) -> str | None:
        """The code of the location with ``location_id``."""
        location = self.state.get("locations", location_id)
        return None if location is None else str(location["code"])

    # -- the system's formats -------------------------------------------------------------
    def error(self, status: int, message: str, code: str = "") -> Response[Any]:
        if not code or code == "SANDBOX_FAULT":
            code = _CODES.get(status, "Internal_ServerError")
        return Response({"error": {"code": code, "message": f"{message}  CorrelationId:  {uuid.uuid4()}."}},
                        status_code=status)  # fmt: skip

    def unauthorized(self) -> Response[Any]:
        response = self.error(401, "The server has rejected the client credentials.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
        return response

    # -- records --------------------------------------------------------------------------
    def _stamp(self, record: dict[str, Any]) -> None:
        """A new ``@odata.etag`` and modification time: the record changed."""
        record["lastModifiedDateTime"] = _now()
        record["@odata.etag"] = 'W/"' + base64.b64encode(uuid.uuid4().bytes).decode() + '"'

    def _view(self, entity_set: str, record: dict[str, Any], expand: str) -> dict[str, Any]:
        """The entity as the API answers it: lines only when expanded."""
        lines = _LINES.get(entity_set)
        view = {k: v for k, v in record.items() if k != lines}
        if lines and lines in expand:
            view[lines] = [dict(line) for line in record.get(lines, [])]
        return view

    def _stale(
        self, request: Request[Any, Any, Any], record: dict[str, Any], required: bool
    ) -> Response[Any] | None:
        match = request.headers.get("if-match")
        if match is None:
            if required:
                return self.error(
                    400, "Could not save changes: the If-Match header is missing.", "BadRequest"
                )
            return None
        if match != "*" and match != record["@odata.etag"]:
            return self.error(412, "Another user has already changed the record.", "Request_EntityChanged")
        return None

    def _new_line(self, body: dict[str, Any], sequence: int) -> dict[str, Any]:
        line = {"lineType": "Item", **body, "id": str(uuid.uuid4()), "sequence": sequence}
        self._stamp(line)
        return line

    def _unknown_location(self, lines: list[dict[str, Any]]) -> Response[Any] | None:
        """BC's refusal of a line whose ``locationId`` is not a location."""
        for line in lines:
            location = line.get("locationId")
            if location and self.state.get("locations", str(location)) is None:
                return self.error(
                    400,
                    f"The field Location Code of table Sales Line contains a value ({location}) that cannot "
                    "be found in the related table (Location).",
                    "Application_FieldValidationException",
                )
        return None

    def _post_inventory(self, memo: dict[str, Any]) -> None:
        """Posting a sales credit memo takes its items back into stock: one item ledger entry each."""
        for line in memo.get("salesCreditMemoLines") or []:
            if line.get("lineType", "Item") != "Item":
                continue
            quantity = float(line.get("quantity") or 0)
            entry = {
                "id": str(uuid.uuid4()),
                "entryNumber": self.state.count("itemLedgerEntries") + 1,
                "itemNumber": line.get("lineObjectNumber"),
                "postingDate": memo["postingDate"],
                "entryType": "Sale",
                "sourceNumber": memo.get("customerNumber", ""),
                "sourceType": "Customer",
                "documentNumber": memo["number"],
                "documentType": "Sales_x0020_Credit_x0020_Memo",
                "description": line.get("description", ""),
                "quantity": quantity,
                "salesAmountActual": -quantity * float(line.get("unitPrice") or 0),
                "costAmountActual": 0,
            }
            self._stamp(entry)
            self.state.put("itemLedgerEntries", entry["id"], entry)

    def _create(self, entity_set: str, body: Any) -> Response[Any] | dict[str, Any]:
        if entity_set not in _WRITABLE:
            return self.error(405, f"'POST' is not allowed on '{entity_set}'.", "BadRequest_MethodNotAllowed")
        if not isinstance(body, dict):
            return self.error(400, "Invalid Request Body", "BadRequest_InvalidRequestBody")
        party = "customerNumber" if entity_set.startswith("sales") else "vendorNumber"
        if not body.get(party):
            return self.error(400, f"The field {party} is required.", "Application_FieldValidationException")
        record_id = str(uuid.uuid4())
        lines_key = _LINES[entity_set]
        lines = [self._new_line(line, 10000 * (n + 1)) for n, line in enumerate(body.get(lines_key) or [])]
        refused = self._unknown_location(lines)
        if refused is not None:
            return refused
        record = {
            **{k: v for k, v in body.items() if k != lines_key},
            "id": record_id,
            "number": f"{_WRITABLE[entity_set]}{self.state.new_id()}",
            "status": "Draft",
            lines_key: lines,
        }
        self._stamp(record)
        self.state.put(entity_set, record_id, record)
        return record

    def _query(self, entity_set: str, params: dict[str, str]) -> Response[Any]:
        clauses: list[tuple[str, str]] = []
        for part in filter(None, re.split(r"\s+and\s+", params.get("$filter", ""))):
            match = _CLAUSE.match(part)
            if match is None:
                return self.error(400, f"Invalid filter expression: {part!r}", "BadRequest_InvalidFilter")
            clauses.append((match.group(1), match.group(2).replace("''", "'")))
        found = [
            self._view(entity_set, record, params.get("$expand", ""))
            for record in self.state.all(entity_set)
            if all(str(record.get(name)) == value for name, value in clauses)
        ]
        return Response({"@odata.context": f"{API}/$metadata#companies/{entity_set}", "value": found})

    def handlers(self) -> list[BaseRouteHandler]:
        sandbox = self

        @post(sandbox.token_path, status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            form = await request.form()
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "basic":
                user, _, secret = base64.b64decode(value).decode().partition(":")
            else:
                user, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
            if form.get("scope") not in (None, SCOPE):
                detail = "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
                return Response({"error": "invalid_scope", "error_description": detail}, status_code=400)
            issued = (
                sandbox.issue_token(user, secret) if form.get("grant_type") == "client_credentials" else None
            )
            if issued is None:
                return Response(
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                    status_code=401,
                )
            return Response({**issued, "ext_expires_in": issued["expires_in"]})

        def parse(rest: str) -> re.Match[str] | Response[Any]:
            match = _PATH.match(rest.lstrip("/"))
            if match is None:
                return sandbox.error(
                    404, f"No HTTP resource was found that matches the request URI '{rest}'."
                )
            if match["company"] != COMPANY_ID:
                return sandbox.error(404, f"Cannot find company '{match['company']}'.", "BadRequest_NotFound")
            return match

        route = f"{API}/{{rest:path}}"

        @get(route)
        async def read(rest: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
            match = parse(rest)
            if isinstance(match, Response):
                return match
            params = dict(request.query_params)
            if match["id"] is None:
                return sandbox._query(match["set"], params)
            record = sandbox.state.get(match["set"], match["id"])
            if record is None:
                return sandbox.error(404, "The record was not found.", "Internal_RecordNotFound")
            if match["nav"] == _LINES.get(match["set"]):
                return Response({"value": [dict(line) for line in record[match["nav"]]]})
            return Response(sandbox._view(match["set"], record, params.get("$expand", "")))

        @post(route, status_code=201)
        async def create(rest: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
            match = parse(rest)
            if isinstance(match, Response):
                return match
            body = await _json(request)
            expand = request.query_params.get("$expand", "")
            if match["id"] is None:
                created = sandbox._create(match["set"], body)
                if isinstance(created, Response):
                    return created
                return Response(sandbox._view(match["set"], created, expand), status_code=201)
            record = sandbox.state.get(match["set"], match["id"])
            if record is None:
                return sandbox.error(404, "The record was not found.", "Internal_RecordNotFound")
            if match["nav"] == "Microsoft.NAV.post":
                stale = sandbox._stale(request, record, required=False)
                if stale is not None:
                    return stale
                if record.get("status") != "Draft":
                    return sandbox.error(
                        400, "The document has already been posted.", "Application_DialogException"
                    )
                record["status"], record["postingDate"] = "Open", record.get("postingDate") or _now()[:10]
                sandbox._stamp(record)
                if match["set"] == "salesCreditMemos":
                    sandbox._post_inventory(record)
                return Response(None, status_code=204)
            if match["nav"] == _LINES.get(match["set"]) and isinstance(body, dict):
                lines = record[match["nav"]]
                line = sandbox._new_line(body, max((x["sequence"] for x in lines), default=0) + 10000)
                refused = sandbox._unknown_location([line])
                if refused is not None:
                    return refused
                lines.append(line)
                sandbox._stamp(record)
                return Response(line, status_code=201)
            return sandbox.error(400, f"Cannot POST to '{rest}'.", "BadRequest_InvalidRequestUrl")

        @patch(route)
        async def update(rest: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
            match = parse(rest)
            if isinstance(match, Response):
                return match
            record = sandbox.state.get(match["set"], match["id"] or "")
            if record is None or match["nav"] is not None:
                return sandbox.error(404, "The record was not found.", "Internal_RecordNotFound")
            stale = sandbox._stale(request, record, required=True)
            if stale is not None:
                return stale
            body = await _json(request)
            if not isinstance(body, dict):
                return sandbox.error(400, "Invalid Request Body", "BadRequest_InvalidRequestBody")
            if record.get("status") != "Draft":
                return sandbox.error(
                    400, "A posted document cannot be changed.", "Application_DialogException"
                )
            record.update({k: v for k, v in body.items() if k not in ("id", "number", "@odata.etag")})
            sandbox._stamp(record)
            return Response(sandbox._view(match["set"], record, ""))

        @delete(route, status_code=200)
        async def remove(rest: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
            match = parse(rest)
            if isinstance(match, Response):
                return match
            record = sandbox.state.get(match["set"], match["id"] or "")
            if record is None or match["nav"] != _LINES.get(match["set"]) or match["line"] is None:
                return sandbox.error(404, "The record was not found.", "Internal_RecordNotFound")
            lines = record[match["nav"]]
            line = next((x for x in lines if x["id"] == match["line"]), None)
            if line is None:
                return sandbox.error(404, "The record was not found.", "Internal_RecordNotFound")
            stale = sandbox._stale(request, line, required=True)
            if stale is not None:
                return stale
            if record.get("status") != "Draft":
                return sandbox.error(
                    400, "A posted document cannot be changed.", "Application_DialogException"
                )
            lines.remove(line)
            sandbox._stamp(record)
            return Response(None, status_code=204)

        return [token, read, create, update, remove]

    # -- for tests ------------------------------------------------------------------------
    def touch(self, entity_set: str, record_id: str) -> None:
        """Change a record as a Business Central user would, so a held ``@odata.etag`` goes stale."""
        record = self.state.get(entity_set, record_id)
        if record is not None:
            self._stamp(record)


async def _json(request: Request[Any, Any, Any]) -> Any:
    try:
        return await request.json()
    except Exception:
        return None
