"""The Salesforce connector against the Salesforce sandbox, over real HTTP: one Case per return,
upserted by the return id as the return moves; repeats, throttling, the API allowance, errors,
malformed replies, timeouts and credentials, each read the way Salesforce means it."""

from __future__ import annotations

import copy
import functools
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.crm.salesforce_sandbox import PICKLISTS, SalesforceSandbox
from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.mapping import MappingCatalog
from gateway.registry import ContractRegistry
from gateway.sandbox import Fault
from gateway.sdk import Connector
from gateway.settings import PROJECT_ROOT
from tests.support import profiles
from tests.support.profiles import connector_on, delivery

USE = "connectors.crm.salesforce:SalesforceConnector"
CASES = "/services/data/v60.0/sobjects/Case/Return_Id__c"
CONTRACTS = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")

#: The return's life, in the order the gateway normally sends it, with the example each step uses.
LIFECYCLE = [
    ("return-request", "defective-ssd-with-serials"),
    ("return-authorization", "auto-authorized-defective-ssd"),
    ("tracking-event", "delivered-to-return-site"),
    ("receipt", "ssd-received-into-quarantine"),
    ("inspection-result", "ssd-split-by-condition"),
    ("credit-memo", "posted-sap-defective-ssd"),
]


def example(contract: str, name: str, return_id: str, **changes: Any) -> dict[str, Any]:
    """A contract's valid example about ``return_id``."""
    [found] = [e for e in CONTRACTS.require(contract, "v1").valid_examples if e.name == name]
    payload = copy.deepcopy(found.payload)
    if contract != "return-request":
        payload["return_id"] = return_id
    payload.update(changes)
    return payload


def step(contract: str, name: str, return_id: str, **changes: Any) -> Any:
    return delivery(f"{contract}.v1", example(contract, name, return_id, **changes), correlation_id=return_id)


def new_return_id() -> str:
    return f"ret_{uuid.uuid4().hex}"


def only_case(sandbox: SalesforceSandbox) -> dict[str, Any]:
    [case] = sandbox.state.all("Case")
    return case


@functools.cache
def salesforce_mappings() -> MappingCatalog:
    return MappingCatalog.load(PROJECT_ROOT / "mappings", PROJECT_ROOT / "contracts", profiles={"salesforce"})


@pytest.fixture(autouse=True)
def only_salesforce_mappings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile this profile's mappings only: another profile's mapping in progress is not ours
    to fail on (the whole catalog is checked by the mapping tests)."""
    monkeypatch.setattr(profiles, "catalog", salesforce_mappings)


@pytest.fixture
def sandbox() -> SalesforceSandbox:
    return SalesforceSandbox()


@pytest.fixture
async def salesforce(sandbox: SalesforceSandbox) -> AsyncIterator[Connector]:
    async with connector_on(sandbox, USE, name="crm") as connector:
        yield connector


async def test_the_request_opens_one_case_and_every_later_message_updates_it(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    return_id = new_return_id()
    statuses = []
    for contract, name in LIFECYCLE:
        await salesforce.handle(step(contract, name, return_id))
        statuses.append(only_case(sandbox)["Status"])

    assert statuses == ["New", "Authorized", "Delivered", "Received", "Inspected", "Closed"]
    case = only_case(sandbox)
    assert case["Return_Id__c"] == return_id
    assert case["Subject"] == "Return EDI180-NWA-2024-004417 from C100234"
    assert case["AccountId"] == "001000000000077AAA"
    assert (case["Origin"], case["Reason"], case["Type"]) == ("EDI", "Defective", "Return")
    assert case["RMA_Number__c"] == "RMA-2024-031877"
    assert case["Tracking_Number__c"] == "1Z999AA10123456784"
    assert case["Receipt_Number__c"] == "WR-HAM-240318-0007"
    assert case["Credit_Memo_Number__c"] == "90041123"
    assert case["Return_Status__c"] == "credit_posted"
    assert sandbox.upserts[return_id] == len(LIFECYCLE)


async def test_an_inspection_task_hangs_on_the_case_once_and_the_inspection_completes_it(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    return_id = new_return_id()
    task = step("inspection-task", "defective-ssds-after-receipt", return_id)
    with pytest.raises(RetryableDeliveryFailure, match="no Case"):  # the request has not opened it yet
        await salesforce.handle(task)
    assert sandbox.state.count("Task") == 0
    await salesforce.handle(step("return-request", "defective-ssd-with-serials", return_id))
    await salesforce.handle(task)
    await salesforce.handle(task)  # redelivered: the same Task
    [opened] = sandbox.state.all("Task")
    assert opened["WhatId"] == only_case(sandbox)["Id"] and opened["Return_Id__c"] == return_id
    assert (opened["Status"], opened["Priority"], opened["ActivityDate"]) == (
        "Not Started",
        "Normal",
        "2024-03-21",
    )
    assert opened["Subject"] == "Inspect return INS-3F9A1C2E7B4D at DC-HAM"
    assert "serials S5KANE0R401234, S5KANE0R401239" in opened["Description"]
    assert opened["Inspection_Rule__c"] == "inspect-warranty 2026-12-01"
    assert sandbox.task_upserts[return_id] == 2

    await salesforce.handle(step("inspection-result", "ssd-split-by-condition", return_id))
    assert sandbox.state.all("Task")[0]["Status"] == "Completed"
    assert only_case(sandbox)["Status"] == "Inspected"
    await salesforce.handle(task)  # a late copy of the task does not reopen it
    assert sandbox.state.all("Task")[0]["Status"] == "Completed"


async def test_a_task_that_comes_after_the_inspection_is_opened_completed(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    return_id = new_return_id()
    await salesforce.handle(step("return-request", "defective-ssd-with-serials", return_id))
    await salesforce.handle(step("inspection-result", "ssd-split-by-condition", return_id))
    await salesforce.handle(step("inspection-task", "defective-ssds-after-receipt", return_id))
    [task] = sandbox.state.all("Task")
    assert task["Status"] == "Completed" and task["Subject"].startswith("Inspect return")


async def test_an_inspection_without_a_task_creates_none(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    return_id = new_return_id()
    await salesforce.handle(step("inspection-result", "ssd-split-by-condition", return_id))
    assert sandbox.state.count("Task") == 0 and only_case(sandbox)["Status"] == "Inspected"


async def test_the_task_goes_to_the_owner_the_options_name(sandbox: SalesforceSandbox) -> None:
    options = {"task_owner_id": "00G000000000042AAA"}
    async with connector_on(sandbox, USE, name="crm", options=options) as salesforce:
        return_id = new_return_id()
        await salesforce.handle(step("return-request", "defective-ssd-with-serials", return_id))
        await salesforce.handle(step("inspection-task", "defective-ssds-after-receipt", return_id))
    assert sandbox.state.all("Task")[0]["OwnerId"] == "00G000000000042AAA"


async def test_the_upsert_answers_created_then_updated(salesforce: Connector) -> None:
    return_id = new_return_id()
    first = await salesforce.upsert_case(return_id, {"Subject": "first"})  # type: ignore[attr-defined]
    again = await salesforce.upsert_case(return_id, {"Subject": "again"})  # type: ignore[attr-defined]
    assert first["created"] is True and again["created"] is False
    assert first["id"] == again["id"] and first["success"] is True


async def test_a_repeat_leaves_one_case(salesforce: Connector, sandbox: SalesforceSandbox) -> None:
    return_id = new_return_id()
    request = step("return-request", "defective-ssd-with-serials", return_id)
    authorization = step("return-authorization", "auto-authorized-defective-ssd", return_id)
    for message in (request, request, authorization, authorization):
        await salesforce.handle(message)
    assert sandbox.state.count("Case") == 1
    assert sandbox.upserts[return_id] == 4
    assert only_case(sandbox)["Status"] == "Authorized"


async def test_a_late_request_fills_in_the_case_without_moving_its_status_back(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    return_id = new_return_id()
    await salesforce.handle(step("return-authorization", "auto-authorized-defective-ssd", return_id))
    await salesforce.handle(step("return-request", "defective-ssd-with-serials", return_id))
    case = only_case(sandbox)
    assert case["Status"] == "Authorized" and case["Return_Status__c"] == "authorized"
    assert case["Subject"].startswith("Return EDI180") and case["AccountId"] == "001000000000077AAA"


async def test_the_orgs_api_limit_is_throttling_and_is_retryable(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    sandbox.api_used_before = sandbox.api_limit
    with pytest.raises(RetryableDeliveryFailure, match="REQUEST_LIMIT_EXCEEDED") as caught:
        await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    assert caught.value.status_code == 403 and caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert caught.value.retry_after == 300
    assert sandbox.state.count("Case") == 0


async def test_an_injected_request_limit_fault_is_retryable(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=403, method="PATCH", path=CASES))
    return_id = new_return_id()
    message = step("return-request", "defective-ssd-with-serials", return_id)
    with pytest.raises(RetryableDeliveryFailure, match=r"\[REQUEST_LIMIT_EXCEEDED\]"):
        await salesforce.handle(message)
    await salesforce.handle(message)
    assert sandbox.state.count("Case") == 1


async def test_usage_above_ninety_percent_is_logged(
    salesforce: Connector, sandbox: SalesforceSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.api_limit, sandbox.api_used_before = 1000, 940
    with caplog.at_level(logging.WARNING, logger="connectors.crm.salesforce"):
        await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    used, allowed = salesforce.api_usage  # type: ignore[attr-defined]
    assert allowed == 1000 and 940 < used < 1000
    assert any("API usage" in r.getMessage() and "94%" in r.getMessage() for r in caplog.records)


async def test_usage_below_the_warning_level_is_quiet(
    salesforce: Connector, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.crm.salesforce"):
        await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    assert not [r for r in caplog.records if "API usage" in r.getMessage()]


@pytest.mark.parametrize("status, code", [(503, "SERVER_UNAVAILABLE"), (500, "UNKNOWN_EXCEPTION")])
async def test_server_errors_are_retryable_and_the_retry_leaves_one_case(
    salesforce: Connector, sandbox: SalesforceSandbox, status: int, code: str
) -> None:
    sandbox.state.faults.append(Fault(status=status, retry_after="7", method="PATCH", path=CASES))
    message = step("return-request", "defective-ssd-with-serials", new_return_id())
    with pytest.raises(RetryableDeliveryFailure, match=f"answered {status}") as caught:
        await salesforce.handle(message)
    assert caught.value.code == code and caught.value.retry_after == 7
    await salesforce.handle(message)
    assert sandbox.state.count("Case") == 1


async def test_a_field_the_org_lacks_is_permanent_with_salesforces_message(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    sandbox.case_fields.discard("RMA_Number__c")  # the custom field was never deployed
    with pytest.raises(PermanentDeliveryFailure) as caught:
        await salesforce.handle(
            step("return-authorization", "auto-authorized-defective-ssd", new_return_id())
        )
    assert caught.value.status_code == 400 and caught.value.code == "INVALID_FIELD"
    assert "No such column 'RMA_Number__c' on sobject of type Case" in str(caught.value)


async def test_an_account_unknown_to_salesforce_is_permanent(salesforce: Connector) -> None:
    payload = example("return-request", "defective-ssd-with-serials", "")
    payload["customer"]["account_number"] = "C999999"
    with pytest.raises(
        PermanentDeliveryFailure, match="Foreign key external ID: C999999 not found"
    ) as caught:
        await salesforce.handle(delivery("return-request.v1", payload))
    assert caught.value.code == "INVALID_FIELD"


async def test_a_status_outside_the_picklist_names_the_field(salesforce: Connector) -> None:
    with pytest.raises(PermanentDeliveryFailure, match=r"\(fields: Status\)") as caught:
        await salesforce.upsert_case(new_return_id(), {"Status": "Teleported"})  # type: ignore[attr-defined]
    assert caught.value.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


async def test_a_return_id_on_two_cases_is_permanent(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    return_id = new_return_id()
    for case_id, value in (("500000000000001AAA", return_id), ("500000000000002AAA", return_id.upper())):
        sandbox.state.put("Case", case_id, {"Id": case_id, "Return_Id__c": value, "Status": "New"})
    with pytest.raises(PermanentDeliveryFailure, match="matches 2 Cases") as caught:
        await salesforce.handle(step("receipt", "ssd-received-into-quarantine", return_id))
    assert caught.value.status_code == 300 and caught.value.code == "MULTIPLE_CHOICES"


async def test_an_external_id_field_the_org_lacks_is_permanent(sandbox: SalesforceSandbox) -> None:
    options = {"external_id_field": "Gateway_Id__c"}
    async with connector_on(sandbox, USE, name="crm", options=options) as salesforce:
        with pytest.raises(PermanentDeliveryFailure, match="Gateway_Id__c") as caught:
            await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    assert caught.value.status_code == 404 and caught.value.code == "NOT_FOUND"


async def test_a_malformed_reply_is_retryable_and_the_retry_leaves_one_case(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="PATCH", path=CASES))
    message = step("return-request", "defective-ssd-with-serials", new_return_id())
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await salesforce.handle(message)
    await salesforce.handle(message)
    assert sandbox.state.count("Case") == 1


async def test_a_timeout_is_retryable_and_the_retry_leaves_one_case(sandbox: SalesforceSandbox) -> None:
    message = step("return-request", "defective-ssd-with-serials", new_return_id())
    async with connector_on(sandbox, USE, name="crm", timeout_seconds=0.3) as salesforce:
        # The timed-out try spent the call's time (timeout_seconds): it goes to the runtime.
        sandbox.state.faults.append(Fault(status=None, delay=1.0, method="PATCH", path=CASES))
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await salesforce.handle(message)
        await salesforce.handle(message)
    assert sandbox.state.count("Case") == 1


async def test_a_revoked_token_is_renewed_once(salesforce: Connector, sandbox: SalesforceSandbox) -> None:
    await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    sandbox.revoke_tokens()
    await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    assert sandbox.state.count("Case") == 2
    assert len(sandbox.state.requests_to("POST", SalesforceSandbox.token_path or "")) == 2
    assert [s.status for s in sandbox.state.requests_to("PATCH", CASES)].count(401) == 1


async def test_a_session_refused_twice_is_permanent(
    salesforce: Connector, sandbox: SalesforceSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=401, method="PATCH", path=CASES, times=2))
    with pytest.raises(PermanentDeliveryFailure, match=r"answered 401: \[INVALID_SESSION_ID\]") as caught:
        await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    assert caught.value.code == "INVALID_SESSION_ID"
    assert len(sandbox.state.requests_to("POST", SalesforceSandbox.token_path or "")) == 2


async def test_wrong_client_credentials_are_a_permanent_failure(sandbox: SalesforceSandbox) -> None:
    sandbox.credentials = type(sandbox.credentials)(client_secret="rotated")
    async with connector_on(sandbox, USE, name="crm") as salesforce:
        with pytest.raises(PermanentDeliveryFailure, match="invalid_client"):
            await salesforce.handle(step("return-request", "defective-ssd-with-serials", new_return_id()))
    assert sandbox.state.count("Case") == 0


def test_every_table_value_is_in_the_orgs_picklists() -> None:
    tables = PROJECT_ROOT / "mappings" / "salesforce" / "tables"
    for table, picklist in [
        ("case-status.yaml", "Status"),
        ("origins.yaml", "Origin"),
        ("reasons.yaml", "Reason"),
        ("priorities.yaml", "Priority"),
    ]:
        values = set(yaml.safe_load(Path(tables / table).read_text()).values())
        assert values <= PICKLISTS[picklist], (table, values - PICKLISTS[picklist])
