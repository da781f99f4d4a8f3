"""Salesforce REST API sandbox (``/services/data/vXX.X/sobjects``), Service Cloud Cases and Tasks.

Speaks the shape a Salesforce connector meets in production (REST API, API version 46.0+):

* OAuth 2.0 client credentials at ``/services/oauth2/token`` (credentials as form fields or
  HTTP Basic); the token reply has no ``expires_in``, as Salesforce's has none;
* ``PATCH /sobjects/{Case,Task}/<ExternalIdField>/<value>`` upserts by external id: 201 with
  ``{id, success, errors, created: true}`` on insert, 200 with ``created: false`` on update,
  300 with the matching records' URLs when the value matches more than one Case (matching is
  case-insensitive, as Salesforce's is);
* ``GET`` on the same URL reads the Case;
* the org's schema: unknown fields are refused (400 ``INVALID_FIELD``), the external id or
  ``Id`` in the body too, restricted picklists check their values
  (``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``), ``Account: {Account_Number__c: ...}`` is
  resolved by the Account's external id (``INVALID_FIELD`` "Foreign key external ID ... not
  found"); a Task's ``WhatId`` must be an existing Case's Id (``INVALID_CROSS_REFERENCE_KEY``);
  on insert the org's defaults fill what the body leaves out (Case Status ``New``, Task Status
  ``Not Started`` and Priority ``Normal``);
* errors as Salesforce's array ``[{"message", "errorCode", "fields"}]``; 401
  ``INVALID_SESSION_ID``; the daily API request limit: every reply carries
  ``Sforce-Limit-Info: api-usage=N/M``, and above the limit the API answers 403
  ``REQUEST_LIMIT_EXCEEDED``.

Seeded with the demo customers' Accounts. ``upserts`` counts Case upserts per external id value,
``task_upserts`` Task upserts.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
from collections import Counter
from typing import Any

from litestar import Request, Response, get, patch, post
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath

from gateway.sandbox import Credentials, Sandbox

DATA = "/services/data"
_VERSION = re.compile(r"^v\d{2,3}\.\d$")
_FAULT_CODES = {
    400: "JSON_PARSER_ERROR",
    401: "INVALID_SESSION_ID",
    403: "REQUEST_LIMIT_EXCEEDED",
    404: "NOT_FOUND",
    503: "SERVER_UNAVAILABLE",
}

#: Case fields of the demo org that an integration user may write (custom ones end in ``__c``).
CASE_FIELDS = frozenset(
    {
        "Subject",
        "Description",
        "Status",
        "Origin",
        "Priority",
        "Reason",
        "Type",
        "SuppliedName",
        "SuppliedEmail",
        "SuppliedPhone",
        "SuppliedCompany",
        "AccountId",
        "Account",
        "Return_Id__c",
        "Partner_Return_Ref__c",
        "Return_Status__c",
        "RMA_Number__c",
        "Order_Number__c",
        "Invoice_Number__c",
        "Requested_Date__c",
        "Return_Expires_On__c",
        "Return_Site__c",
        "Rejection_Reason__c",
        "Carrier__c",
        "Tracking_Number__c",
        "Tracking_Status__c",
        "Last_Tracking_Event_At__c",
        "Receipt_Number__c",
        "Received_At__c",
        "Inspected_At__c",
        "Credit_Memo_Number__c",
        "Credit_Amount__c",
        "Credit_Currency__c",
    }
)
ACCOUNT_EXTERNAL_IDS = frozenset({"Account_Number__c"})

#: Restricted picklists: the values this org's admins set up.
PICKLISTS: dict[str, frozenset[str]] = {
    "Status": frozenset(
        {
            "New",
            "Working",
            "Escalated",
            "Authorized",
            "Rejected",
            "Awaiting Shipment",
            "In Transit",
            "Delivered",
            "Shipment Exception",
            "Received",
            "Inspected",
            "Credit Pending",
            "Closed",
        }
    ),
    "Origin": frozenset({"Phone", "Email", "Web", "EDI", "Field Service"}),
    "Priority": frozenset({"High", "Medium", "Low"}),
    "Reason": frozenset(
        {
            "No Longer Needed",
            "Ordered in Error",
            "Damaged in Transit",
            "Wrong Item Shipped",
            "Defective",
            "Warranty",
            "Quantity Discrepancy",
            "Late Delivery",
            "Not as Described",
            "Product Recall",
            "Unauthorized Return",
            "Field Service",
            "Other",
        }
    ),
    "Type": frozenset({"Mechanical", "Electrical", "Electronic", "Structural", "Return", "Other"}),
}
#: What an insert gets for fields the body leaves out.
CASE_DEFAULTS = {"Status": "New", "Priority": "Medium", "Return_Status__c": "requested"}

#: Task fields of the demo org (Activity custom fields end in ``__c``).
TASK_FIELDS = frozenset(
    {
        "Subject",
        "Description",
        "Status",
        "Priority",
        "ActivityDate",
        "WhatId",
        "OwnerId",
        "Return_Id__c",
        "Inspection_Task_Number__c",
        "RMA_Number__c",
        "Return_Site__c",
        "Due_By__c",
        "Inspection_Rule__c",
    }
)
TASK_PICKLISTS: dict[str, frozenset[str]] = {
    "Status": frozenset({"Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"}),
    "Priority": frozenset({"High", "Normal", "Low"}),
}


@dataclasses.dataclass
class SObjectType:
    """What the org knows of one sObject: writable fields, external ids, picklists, defaults."""

    name: str
    fields: set[str]
    external_ids: frozenset[str]
    picklists: dict[str, frozenset[str]]
    defaults: dict[str, str]
    id_prefix: str
    upserts: Counter[str] = dataclasses.field(default_factory=Counter)


_ACCOUNTS = [
    ("001000000000077AAA", "C100234", "Nordwind Automation GmbH"),
    ("001000000000078AAA", "C100901", "Account C100901"),
    ("001000000000079AAA", "C204511", "Midwest Conveyor Services LLC"),
    ("001000000000080AAA", "C300078", "Rheinland Packaging AG"),
]


class SalesforceSandbox(Sandbox):
    profile = "salesforce"
    token_path = "/services/oauth2/token"

    def __init__(self, credentials: Credentials | None = None, *, api_limit: int = 15000) -> None:
        super().__init__(credentials)
        self.api_limit = api_limit
        """The org's daily API request allowance."""
        self.api_used_before = 0
        """Requests already counted today when the sandbox starts (set it to test the limit)."""
        self.sobjects = {
            "Case": SObjectType(
                "Case", set(CASE_FIELDS), frozenset({"Return_Id__c"}), PICKLISTS, CASE_DEFAULTS, "500"
            ),
            "Task": SObjectType(
                "Task",
                set(TASK_FIELDS),
                frozenset({"Return_Id__c"}),
                TASK_PICKLISTS,
                {"Status": "Not Started", "Priority": "Normal"},
                "00T",
            ),
        }
        self.case_fields = self.sobjects["Case"].fields
        """The Case fields the org has; remove one to play an org where it is not deployed."""
        self.upserts = self.sobjects["Case"].upserts
        self.task_upserts = self.sobjects["Task"].upserts
        self._upsert_lock = threading.Lock()
        for account_id, number, name in _ACCOUNTS:
            self.state.put(
                "Account", account_id, {"Id": account_id, "Account_Number__c": number, "Name": name}
            )

    # -- the org's API limit ---------------------------------------------------------
    def api_usage(self) -> int:
        """Requests counted against the daily limit: every REST call the sandbox has seen."""
        with self.state.lock:
            calls = sum(1 for seen in self.state.requests if seen.path.startswith(DATA))
        return self.api_used_before + calls

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage()}/{self.api_limit}"}

    def _reply(self, body: Any, status: int) -> Response[Any]:
        return Response(body, status_code=status, headers=self._limit_header())

    # -- Salesforce's error format ------------------------------------------------------
    def error(
        self, status: int, message: str, code: str = "", fields: list[str] | None = None
    ) -> Response[Any]:
        if not code or code == "SANDBOX_FAULT":
            code = _FAULT_CODES.get(status, "UNKNOWN_EXCEPTION")
        return self._reply([{"message": message, "errorCode": code, "fields": fields or []}], status)

    def unauthorized(self) -> Response[Any]:
        return self.error(401, "Session expired or invalid", "INVALID_SESSION_ID")

    # -- the upsert ----------------------------------------------------------------------
    def _matches(self, sobject: str, field: str, value: str) -> list[dict[str, Any]]:
        wanted = value.casefold()
        return [c for c in self.state.all(sobject) if str(c.get(field, "")).casefold() == wanted]

    def _check(
        self, kind: SObjectType, body: Any, external_field: str
    ) -> tuple[dict[str, Any], Response[Any] | None]:
        """The body as fields to write, or the error Salesforce answers for it."""
        if not isinstance(body, dict):
            return {}, self.error(
                400, f"The request body is not a JSON object of {kind.name} fields.", "JSON_PARSER_ERROR"
            )
        fields: dict[str, Any] = {}
        for name, value in body.items():
            if name in ("Id", external_field):
                return {}, self.error(
                    400, f"{name} is in the URL of an upsert; it cannot be in the body too.", "INVALID_FIELD"
                )
            if name not in kind.fields:
                return {}, self.error(
                    400, f"No such column '{name}' on sobject of type {kind.name}", "INVALID_FIELD"
                )
            allowed = kind.picklists.get(name)
            if allowed is not None and value not in allowed:
                return {}, self.error(
                    400,
                    f"{name}: bad value for restricted picklist field: {value}",
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    [name],
                )
            if name == "Account":
                account_id, failure = self._account(value)
                if failure is not None:
                    return {}, failure
                fields["AccountId"] = account_id
                continue
            if name == "WhatId" and self.state.get("Case", str(value)) is None:
                return {}, self.error(
                    400,
                    f"invalid cross reference id: {value}",
                    "INVALID_CROSS_REFERENCE_KEY",
                    ["WhatId"],
                )
            fields[name] = value
        return fields, None

    def _account(self, reference: Any) -> tuple[str, Response[Any] | None]:
        """``{Account_Number__c: "C100234"}`` → the Account's Id, as a relationship upsert resolves it."""
        if not isinstance(reference, dict) or len(reference) != 1:
            return "", self.error(
                400, "Account must name one external id field.", "INVALID_FIELD", ["Account"]
            )
        [(field, value)] = reference.items()
        if field not in ACCOUNT_EXTERNAL_IDS:
            return "", self.error(
                400, f"No such column '{field}' on sobject of type Account", "INVALID_FIELD"
            )
        account = self.state.find("Account", field, value)
        if account is None:
            return "", self.error(
                400,
                f"Foreign key external ID: {value} not found for field {field} in entity Account",
                "INVALID_FIELD",
            )
        return str(account["Id"]), None

    def _upsert(self, version: str, kind: SObjectType, field: str, value: str, body: Any) -> Response[Any]:
        fields, failure = self._check(kind, body, field)
        if failure is not None:
            return failure
        with self._upsert_lock:  # one find-then-write at a time, as the database's unique index would
            found = self._matches(kind.name, field, value)
            if len(found) > 1:
                urls = [f"{DATA}/{version}/sobjects/{kind.name}/{record['Id']}" for record in found]
                return self._reply(urls, 300)
            kind.upserts[value] += 1
            if found:
                record = {**found[0], **fields}
                self.state.put(kind.name, record["Id"], record)
                return self._reply({"id": record["Id"], "success": True, "errors": [], "created": False}, 200)
            record_id = f"{kind.id_prefix}{int(self.state.new_id()):012d}AAA"
            record = {**kind.defaults, **fields, "Id": record_id, field: value}
            if kind.name == "Case":
                record["CaseNumber"] = f"{int(record_id[3:15]):08d}"
            self.state.put(kind.name, record_id, record)
            return self._reply({"id": record_id, "success": True, "errors": [], "created": True}, 201)

    def _resolve(self, version: str, sobject: str, field: str) -> Response[Any] | None:
        kind = self.sobjects.get(sobject)
        if not _VERSION.match(version) or kind is None:
            return self.error(404, "The requested resource does not exist", "NOT_FOUND")
        if field not in kind.external_ids:
            return self.error(
                404, f"Provided external ID field does not exist or is not accessible: {field}", "NOT_FOUND"
            )
        if self.api_usage() > self.api_limit:
            return self.error(403, "TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED")
        return None

    def handlers(self) -> list[BaseRouteHandler]:
        sandbox = self
        path = f"{DATA}/{{version:str}}/sobjects/{{sobject:str}}/{{field:str}}/{{value:str}}"

        @post(sandbox.token_path, status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            form = await request.form()
            client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "basic":
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            if form.get("grant_type") != "client_credentials":
                body = {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
                return Response(body, status_code=400)
            issued = sandbox.issue_token(client_id, client_secret)
            if issued is None:
                body = {"error": "invalid_client", "error_description": "invalid client credentials"}
                return Response(body, status_code=400)
            base = str(request.base_url).rstrip("/")
            return Response(
                {
                    "access_token": issued["access_token"],
                    "instance_url": base,
                    "id": f"{base}/id/00D000000000001AAA/005000000000001AAA",
                    "token_type": "Bearer",
                    "issued_at": "1700000000000",
                    "signature": "c2FuZGJveA==",
                    "scope": "api",
                }
            )

        @patch(path, status_code=200)
        async def upsert(
            version: FromPath[str],
            sobject: FromPath[str],
            field: FromPath[str],
            value: FromPath[str],
            request: Request[Any, Any, Any],
        ) -> Response[Any]:
            refused = sandbox._resolve(version, sobject, field)
            if refused is not None:
                return refused
            try:
                body = await request.json()
            except Exception:
                body = None
            return sandbox._upsert(version, sandbox.sobjects[sobject], field, value, body)

        @get(path)
        async def read(
            version: FromPath[str], sobject: FromPath[str], field: FromPath[str], value: FromPath[str]
        ) -> Response[Any]:
            refused = sandbox._resolve(version, sobject, field)
            if refused is not None:
                return refused
            found = sandbox._matches(sobject, field, value)
            if not found:
                return sandbox.error(404, "The requested resource does not exist", "NOT_FOUND")
            if len(found) > 1:
                return sandbox._reply([f"{DATA}/{version}/sobjects/{sobject}/{c['Id']}" for c in found], 300)
            return sandbox._reply({"attributes": {"type": sobject}, **found[0]}, 200)

        return [token, upsert, read]
