"""Salesforce over its REST API (``/services/data/vXX.X/sobjects``), OAuth 2.0 client credentials.

Modelled on Salesforce's public REST API reference: "Upsert Records Using sObject Rows by
External ID", "Status Codes and Error Responses", the ``Sforce-Limit-Info`` response header,
and the OAuth 2.0 client credentials flow at ``/services/oauth2/token``.

Every message about a return is one upsert of the customer's Case, keyed by the gateway's
return id in an external id field (``options.external_id_field``, ``Return_Id__c``)::

    PATCH /services/data/v60.0/sobjects/Case/Return_Id__c/ret_3f9a...

* ``return-request.v1``       → Subject, Description, Origin, Reason, Priority, the Account by
  its own external id, the contact; Status is left to the org's default (New) on insert.
* ``return-authorization.v1`` → Status Authorized / Rejected, RMA number, expiry, return site.
* ``tracking-event.v1``       → Status from the carrier status, carrier and tracking number.
* ``receipt.v1``, ``inspection-result.v1`` → Status Received / Inspected, receipt number.
* ``credit-memo.v1``          → Status Credit Pending (draft) or Closed (posted), number, amount.
* ``inspection-task.v1``      → a Task on the Case for the inspection team (subject, instructions,
  priority, due date, site, rule), upserted by the return id in the Task's own external id field
  (one inspection task per return). Its ``WhatId`` is the Case's record id, read first
  (``GET .../Case/Return_Id__c/<id>``); while the Case is not there yet the task is retried.
  ``options.task_owner_id`` assigns it to a user or queue; else the org assigns the integration user.
  When the ``inspection-result`` comes, the Task (if there is one) is marked Completed. The two
  travel separately (the result straight from the WMS, the task through the lifecycle), so the
  task may come second: a Case that already has its inspection date (``options.inspected_field``,
  ``Inspected_At__c``) gets its Task Completed; read before the Task is written and again after,
  so whichever of the two comes last closes it.

Each mapping's ``tables/case-status.yaml`` turns the canonical step into the org's Status picklist.

Idempotency is the upsert's own: a repeat updates the same Case (Salesforce answers 200,
``created: false``). So an upsert is safe to repeat and goes out with an idempotency key (the
record and the SHA-256 of its fields: the same key is the same effect), which also has a 503
or 429 tried again in-process. Messages may arrive out of order: each sets only the fields it knows, so
whichever comes first creates the Case and the others fill it in; Status follows the last
message applied (a late tracking scan can move it back; the per-step fields stay).

Errors come as ``[{"message", "errorCode", "fields"}]``. 403 ``REQUEST_LIMIT_EXCEEDED`` (the
org's API allowance) and ``UNABLE_TO_LOCK_ROW`` are retried; 400s (``INVALID_FIELD``,
``REQUIRED_FIELD_MISSING``, ``FIELD_CUSTOM_VALIDATION_EXCEPTION``...) are permanent; 300 means the
return id matches several Cases, permanent until someone merges them. Every reply's
``Sforce-Limit-Info: api-usage=N/M`` is read: above ``options.api_usage_warning`` (90 %) a
warning is logged, and a failure while the allowance is used up is retryable.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import msgspec

from gateway.sdk import (
    Connector,
    Delivery,
    PermanentDeliveryFailure,
    RetryableDeliveryFailure,
    TargetError,
    handler,
    reply_json,
)

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "v60.0"
DEFAULT_EXTERNAL_ID_FIELD = "Return_Id__c"
#: Task Status once the inspection is reported (the standard picklist's closed value).
DEFAULT_TASK_COMPLETED = "Completed"
#: The Case field the inspection-result mapping writes: set means the inspection is done.
DEFAULT_INSPECTED_FIELD = "Inspected_At__c"
#: How long to wait for the Case an inspection task hangs on (the request opens it).
CASE_PENDING_RETRY_AFTER = 5.0
#: How long to wait when the org's API allowance is used up: it is a rolling 24-hour count.
DEFAULT_QUOTA_RETRY_AFTER = 300.0
#: Error codes that clear by themselves: the API allowance, a record locked by another transaction.
TRANSIENT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


def api_usage(response: httpx.Response) -> tuple[int, int] | None:
    """``Sforce-Limit-Info: api-usage=18/15000`` as ``(18, 15000)``; ``None`` when absent."""
    match = _LIMIT_INFO.search(response.headers.get("sforce-limit-info", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


class SalesforceConnector(Connector):
    profile: ClassVar[str] = "salesforce"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        version = str(self.options.get("api_version", DEFAULT_API_VERSION))
        field = str(self.options.get("external_id_field", DEFAULT_EXTERNAL_ID_FIELD))
        task_field = str(self.options.get("task_external_id_field", field))
        self._cases = f"/services/data/{version}/sobjects/Case/{urllib.parse.quote(field, safe='')}"
        self._tasks = f"/services/data/{version}/sobjects/Task/{urllib.parse.quote(task_field, safe='')}"
        self._task_owner = self.options.get("task_owner_id")
        self._task_completed = str(self.options.get("task_completed_status", DEFAULT_TASK_COMPLETED))
        self._inspected_field = str(self.options.get("inspected_field", DEFAULT_INSPECTED_FIELD))
        self._warn_above = float(self.options.get("api_usage_warning", 0.9))
        self._quota_wait = float(self.options.get("quota_retry_after_seconds", DEFAULT_QUOTA_RETRY_AFTER))
        self._warned_at = -1
        self.api_usage: tuple[int, int] | None = None
        """The org's API usage as the last reply stated it: (used, allowed)."""

    @handler(
        "return-request.v1", "return-authorization.v1", "tracking-event.v1", "receipt.v1", "credit-memo.v1"
    )
    async def _update_case(self, delivery: Delivery) -> None:
        await self.upsert_case(*self._mapped(delivery))

    @handler("inspection-result.v1")
    async def _record_inspection(self, delivery: Delivery) -> None:
        return_id, fields = self._mapped(delivery)
        await self.upsert_case(return_id, fields)
        await self.complete_task(return_id)

    @handler("inspection-task.v1")
    async def _request_inspection(self, delivery: Delivery) -> None:
        await self.open_task(*self._mapped(delivery))

    def _mapped(self, delivery: Delivery) -> tuple[str, dict[str, Any]]:
        """The return the message is about, and the fields its mapping gives the record."""
        fields = self.map(f"{delivery.message_type}.outbound", delivery.payload, delivery)
        return str(delivery.payload.get("return_id") or delivery.correlation_id), fields

    async def upsert_case(self, return_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Create or update the Case of ``return_id``; answers Salesforce's UpsertResult."""
        return await self._upsert("Case", self._cases, return_id, fields)

    async def open_task(self, return_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Create (or bring up to date) the inspection Task on the Case of ``return_id``."""
        case = await self._read(self._cases, return_id)
        if case is None:
            raise RetryableDeliveryFailure(
                f"Salesforce has no Case for return {return_id} yet to hang the inspection task on",
                retry_after=CASE_PENDING_RETRY_AFTER,
            )
        task = {**fields, "WhatId": case["Id"]}
        if self._task_owner:
            task["OwnerId"] = str(self._task_owner)
        inspected = bool(case.get(self._inspected_field))
        if inspected:
            task["Status"] = self._task_completed
        result = await self._upsert("Task", self._tasks, return_id, task)
        if not inspected:  # the result may have come in while the Task was being written
            again = await self._read(self._cases, return_id)
            if again is not None and again.get(self._inspected_field):
                await self._upsert("Task", self._tasks, return_id, {"Status": self._task_completed})
        return result

    async def complete_task(self, return_id: str) -> None:
        """Mark the inspection Task of ``return_id`` Completed; nothing when it never had one."""
        if await self._read(self._tasks, return_id) is not None:
            await self._upsert("Task", self._tasks, return_id, {"Status": self._task_completed})

    async def _read(self, records: str, return_id: str) -> dict[str, Any] | None:
        """The record ``return_id`` names through an external id, or ``None`` when there is none."""
        try:
            response = await self.target.get(f"{records}/{urllib.parse.quote(return_id, safe='')}")
        except PermanentDeliveryFailure as failure:
            if failure.status_code == 404:
                return None
            raise
        self._watch_usage(response)
        record = reply_json(response)
        if not isinstance(record, dict) or "Id" not in record:
            raise RetryableDeliveryFailure(f"Salesforce answered {records} without a record Id")
        return record

    async def _upsert(
        self, sobject: str, records: str, return_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        path = f"{records}/{urllib.parse.quote(return_id, safe='')}"
        response = await self.target.patch(path, json=fields, idempotency_key=_upsert_key(path, fields))
        self._watch_usage(response)
        if response.status_code == 204:  # API versions before 46.0 answer an update with no body
            return {"success": True, "created": False}
        result = reply_json(response)
        if not isinstance(result, dict) or result.get("success") is not True:
            errors = result.get("errors") if isinstance(result, dict) else None
            raise PermanentDeliveryFailure(
                f"Salesforce did not upsert {sobject} {return_id}: {_describe(errors or [result])}",
                status_code=response.status_code,
                code=_first_code(errors),
            )
        log.debug(
            "%s %s %s for return %s",
            sobject,
            result.get("id"),
            "created" if result.get("created") else "updated",
            return_id,
        )
        return result  # type: ignore[no-any-return]

    def read_error(self, response: httpx.Response) -> TargetError:
        usage = self._watch_usage(response)
        exhausted = usage is not None and usage[0] >= usage[1]
        try:
            body: Any = msgspec.json.decode(response.content)
        except msgspec.DecodeError:  # a proxy's HTML page, say: keep its text
            body = [{"message": response.text[:500]}]
        if response.status_code == 300:  # the body lists the matching records' URLs
            matches = [str(url) for url in body] if isinstance(body, list) else []
            return TargetError(
                f"the external id matches {len(matches)} Cases: {', '.join(matches)}", code="MULTIPLE_CHOICES"
            )
        errors = body if isinstance(body, list) else [body]
        code = _first_code(errors)
        throttled = code == "REQUEST_LIMIT_EXCEEDED" or exhausted
        return TargetError(
            _describe(errors) or response.reason_phrase,
            code=code,
            retryable=True if throttled or code in TRANSIENT_CODES else None,
            retry_after=self._quota_wait if throttled else None,
        )

    def _watch_usage(self, response: httpx.Response) -> tuple[int, int] | None:
        """Remember the org's API usage; warn once per percent above the warning level."""
        usage = api_usage(response)
        if usage is None or usage[1] <= 0:
            return usage
        self.api_usage = usage
        share = usage[0] / usage[1]
        percent = int(share * 100)
        if share <= self._warn_above:
            self._warned_at = -1  # below again (a new day): the next climb warns afresh
        elif percent != self._warned_at:
            self._warned_at = percent
            log.warning(
                "Salesforce target %s: API usage %d of %d requests (%d%%) of the org's daily allowance",
                self.target.name,
                usage[0],
                usage[1],
                percent,
            )
        return usage


def _upsert_key(path: str, fields: dict[str, Any]) -> str:
    """The idempotency key of an upsert: the record it writes and what it writes there."""
    content = msgspec.json.encode([path, fields], order="sorted")
    return f"sf-{hashlib.sha256(content).hexdigest()}"


def _first_code(errors: Any) -> str | None:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("errorCode") or errors[0].get("statusCode")  # REST / UpsertResult errors
        return str(code) if code else None
    return None


def _describe(errors: Sequence[Any]) -> str:
    """Salesforce's messages, each with the fields it names."""
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            parts.append(str(error))
            continue
        fields = error.get("fields") or []
        suffix = f" (fields: {', '.join(map(str, fields))})" if fields else ""
        parts.append(f"{error.get('message', '')}{suffix}")
    return "; ".join(parts)
