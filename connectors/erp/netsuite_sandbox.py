"""NetSuite REST web services sandbox (SuiteTalk REST, ``/services/rest/record/v1``).

Speaks the shape a NetSuite connector meets in production:

* OAuth 2.0 client credentials at ``/services/rest/auth/oauth2/v1/token``, bearer tokens;
* ``POST /record/v1/<type>`` answers 204 with the new record's URL in ``Location``;
* a second record with the same ``externalId`` is refused (400, ``DUP_RCRD``), as NetSuite does;
* ``GET /record/v1/<type>/<id>`` and ``/<type>/eid:<externalId>``;
* ``GET /record/v1/<type>?q=tranId IS "..."`` finds transactions by number;
* ``POST /record/v1/invoice/<id>/!transform/creditMemo`` credits an invoice;
* errors as RFC 9457 problem details with ``o:errorDetails`` (``detail``, ``o:errorCode``);
  throttling is 429 ``CONCURRENCY_LIMIT_EXCEEDED``.

Seeded with the sales order, shipment and invoice the demo returns refer to.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery

from gateway.sandbox import Sandbox

BASE = "/services/rest/record/v1"
_QUERY = re.compile(r'^\s*tranId\s+IS\s+"?([^"]+?)"?\s*$', re.IGNORECASE)
_STATUS_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
_ERROR_CODES = {401: "INVALID_LOGIN", 404: "NONEXISTENT_ID", 429: "CONCURRENCY_LIMIT_EXCEEDED"}
_WRITABLE = ("returnAuthorization", "creditMemo", "vendorReturnAuthorization", "inventoryAdjustment")
_PREFIXES = {
    "returnAuthorization": "RMA",
    "creditMemo": "CM",
    "vendorReturnAuthorization": "VRMA",
    "inventoryAdjustment": "IA",
}
#: What NetSuite insists on per record type (an adjustment has an account and inventory lines).
_REQUIRED = {
    "inventoryAdjustment": ("externalId", "account", "inventory"),
    "creditMemo": ("externalId", "item"),
}


def _seed_documents() -> list[tuple[str, dict[str, Any]]]:
    """The order, its shipment and its invoice for the demo customers' returns."""
    lines = [
        {"line": 10, "item": {"id": "501", "refName": "SSD-SAM-PM893-1T92"}, "quantity": 6, "rate": 289.5},
        {"line": 20, "item": {"id": "502", "refName": "PSU-MW-RSP-500-24"}, "quantity": 4, "rate": 96.0},
        {"line": 30, "item": {"id": "503", "refName": "CBL-CAT6A-SFTP-5M"}, "quantity": 50, "rate": 7.9},
    ]
    base = {"entity": {"id": "77", "refName": "C100234"}, "currency": {"refName": "EUR"}}
    return [
        (
            "salesOrder",
            {
                **base,
                "id": "9001",
                "tranId": "4500118832",
                "tranDate": "2024-02-02",
                "item": {"items": lines},
            },
        ),
        (
            "itemFulfillment",
            {**base, "id": "9002", "tranId": "80071234", "tranDate": "2024-02-05", "item": {"items": lines}},
        ),
        (
            "invoice",
            {**base, "id": "9003", "tranId": "90031877", "tranDate": "2024-02-06", "item": {"items": lines}},
        ),
    ]


class NetSuiteSandbox(Sandbox):
    profile = "netsuite"
    token_path = "/services/rest/auth/oauth2/v1/token"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for record_type, record in _seed_documents():
            self.state.put(record_type, record["id"], record)

    def error(self, status: int, message: str, code: str = "") -> Response[Any]:
        return Response(
            {
                "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#status.{status}",
                "title": _STATUS_TITLES.get(status, "Error"),
                "status": status,
                "o:errorDetails": [
                    {
                        "detail": message,
                        "o:errorCode": code
                        if code and code != "SANDBOX_FAULT"
                        else _ERROR_CODES.get(status, "UNEXPECTED_ERROR"),
                    }
                ],
            },
            status_code=status,
            media_type="application/vnd.oracle.resource+json; type=error",
        )

    def unauthorized(self) -> Response[Any]:
        return self.error(401, "Invalid login attempt. For more details, see the Login Audit Trail.")

    def _find(self, record_type: str, key: str) -> dict[str, Any] | None:
        if key.startswith("eid:"):
            return self.state.find(record_type, "externalId", key[4:])
        return self.state.get(record_type, key)

    def _create(self, record_type: str, body: Any, request: Request[Any, Any, Any]) -> Response[Any]:
        if not isinstance(body, dict):
            return self.error(400, "Invalid content in the request body.", "INVALID_CONTENT")
        missing = [f for f in _REQUIRED.get(record_type, ("externalId", "entity", "item")) if f not in body]
        if missing:
            return self.error(400, f"Please enter value(s) for: {', '.join(missing)}", "USER_ERROR")
        if self.state.find(record_type, "externalId", body["externalId"]) is not None:
            return self.error(400, "A record with this externalId already exists.", "DUP_RCRD")
        record_id = self.state.new_id()
        status = {"id": body.get("orderStatus", "B")}
        record = {
            **body,
            "id": record_id,
            "tranId": f"{_PREFIXES[record_type]}{record_id}",
            "createdDate": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "status": status,
        }
        self.state.put(record_type, record_id, record)
        location = f"{request.base_url}{BASE.lstrip('/')}/{record_type}/{record_id}"
        return Response(None, status_code=204, headers={"Location": location})

    def handlers(self) -> list[BaseRouteHandler]:
        sandbox = self

        @post(sandbox.token_path, status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            import base64

            form = await request.form()
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            user, _, secret = (
                base64.b64decode(value).decode() if scheme.lower() == "basic" else ":"
            ).partition(":")
            issued = (
                sandbox.issue_token(user, secret) if form.get("grant_type") == "client_credentials" else None
            )
            if issued is None:
                return Response({"error": "invalid_client"}, status_code=401)
            return Response(issued)

        @post(f"{BASE}/{{record_type:str}}", status_code=200)
        async def create(record_type: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
            if record_type not in _WRITABLE:
                return sandbox.error(
                    400, f"Record type {record_type} cannot be created here.", "INVALID_RCRD_TYPE"
                )
            return sandbox._create(record_type, await _json(request), request)

        @post(
            f"{BASE}/{{source_type:str}}/{{invoice_id:str}}/!transform/{{target_type:str}}", status_code=200
        )
        async def credit(
            source_type: FromPath[str],
            invoice_id: FromPath[str],
            target_type: FromPath[str],
            request: Request[Any, Any, Any],
        ) -> Response[Any]:
            if (source_type, target_type) != ("invoice", "creditMemo"):
                return sandbox.error(
                    400, f"Cannot transform {source_type} to {target_type}.", "INVALID_TRANS"
                )
            invoice = sandbox._find("invoice", invoice_id)
            if invoice is None:
                return sandbox.error(404, f"The record instance does not exist. Invalid id {invoice_id}.")
            body = await _json(request)
            if isinstance(body, dict):
                body = {**body, "createdFrom": {"id": invoice["id"]}, "entity": invoice["entity"]}
            return sandbox._create("creditMemo", body, request)

        @get(f"{BASE}/{{record_type:str}}/{{key:str}}")
        async def read(record_type: FromPath[str], key: FromPath[str]) -> Response[Any]:
            record = sandbox._find(record_type, key)
            if record is None:
                return sandbox.error(404, f"The record instance does not exist. Invalid id {key}.")
            return Response(record)

        @get(f"{BASE}/{{record_type:str}}")
        async def query(record_type: FromPath[str], q: FromQuery[str] = "") -> Response[Any]:
            match = _QUERY.match(q)
            if match is None:
                return sandbox.error(400, f"Invalid query: {q!r}", "INVALID_PARAMETER")
            found = sandbox.state.find(record_type, "tranId", match.group(1))
            items = [{"id": found["id"], "links": []}] if found else []
            return Response(
                {"items": items, "count": len(items), "hasMore": False, "totalResults": len(items)}
            )

        return [token, create, credit, read, query]


async def _json(request: Request[Any, Any, Any]) -> Any:
    try:
        return await request.json()
    except Exception:
        return None
