"""The NetSuite connector against the NetSuite sandbox, over real HTTP: a request is answered
with the documents NetSuite holds, a decision becomes the return authorization, a draft credit
is posted and answered as posted; duplicates, throttling, server errors, malformed replies and
credentials, each read the way NetSuite means it."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.erp.netsuite_sandbox import NetSuiteSandbox
from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.sandbox import Fault
from gateway.sdk import Connector
from tests.support.erp import CONTRACTS, decided, decision, only, request
from tests.support.profiles import TRIES, connector_on, delivery

USE = "connectors.erp.netsuite:NetSuiteConnector"
RECORDS = "/services/rest/record/v1"
RA = f"{RECORDS}/returnAuthorization"
SSD = "SSD-SAM-PM893-1T92"


def draft_credit(**changes: Any) -> dict[str, Any]:
    """A valid draft ``credit-memo`` against invoice 90031877."""
    payload = copy.deepcopy(CONTRACTS.require("credit-memo", "v1").valid_examples[0].payload)
    payload["invoice_reference"] = {"number": "90031877"}
    payload["posting_date"] = "2024-03-20"
    payload.update(changes)
    assert payload["document_status"] == "draft"
    assert CONTRACTS.require("credit-memo", "v1").violations(payload) == []
    return payload  # type: ignore[no-any-return]


def calls(sandbox: NetSuiteSandbox) -> list[tuple[str, str]]:
    """Every request NetSuite saw but for tokens."""
    return [(s.method, s.path) for s in sandbox.state.requests if s.path != NetSuiteSandbox.token_path]


@pytest.fixture
def sandbox() -> NetSuiteSandbox:
    return NetSuiteSandbox()


@pytest.fixture
async def netsuite(sandbox: NetSuiteSandbox) -> AsyncIterator[Connector]:
    async with connector_on(sandbox, USE, name="erp", options={"return_site": "DC-HAM"}) as connector:
        yield connector


# -- return-request: the documents NetSuite holds --------------------------------------------


async def test_a_request_is_answered_with_the_documents_netsuite_holds(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    message = delivery("return-request.v1", request())
    event = only(await netsuite.handle(message), "return-documents.v1")

    assert event.message_id == f"{message.message_id}.erp.documents"
    payload = event.payload
    assert payload["return_id"] == message.correlation_id and payload["system"] == "netsuite"
    assert payload["missing"] == []
    documents = {document["kind"]: document for document in payload["documents"]}
    assert {kind: (d["number"], d["system_id"]) for kind, d in documents.items()} == {
        "order": ("4500118832", "9001"),
        "invoice": ("90031877", "9003"),
        "shipment": ("80071234", "9002"),
    }
    invoice = documents["invoice"]
    assert invoice["date"] == "2024-02-06" and invoice["customer"] == "C100234"
    assert invoice["currency"] == "EUR"
    assert {line["sku"]: line["quantity"] for line in invoice["lines"]} == {
        SSD: 6, "PSU-MW-RSP-500-24": 4, "CBL-CAT6A-SFTP-5M": 50,
    }  # fmt: skip
    assert [line["line_number"] for line in invoice["lines"]] == [10, 20, 30]
    assert all(method == "GET" for method, _ in calls(sandbox))  # read only: no RMA
    assert sandbox.state.count("returnAuthorization") == 0


# -- return-decision: the return authorization ------------------------------------------------


async def test_an_authorized_decision_becomes_one_return_authorization_and_a_canonical_answer(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    payload = decision()
    message = decided(payload)
    event = only(await netsuite.handle(message), "return-authorization.v1")

    [record] = sandbox.state.all("returnAuthorization")
    assert record["externalId"] == message.message_id
    assert record["entity"] == {"externalId": "C100234"}
    assert [(line["line"], line["quantity"]) for line in record["item"]["items"]] == [(1, 2), (2, 1)]
    assert event.message_id == f"{message.message_id}.erp.rma"
    assert event.payload["rma_number"] == record["tranId"]
    assert event.payload["return_id"] == payload["return_id"]
    assert event.payload["external_id"] == payload["external_id"]
    assert event.payload["return_site"] == "DC-HAM"
    assert event.payload["expires_on"] == "2024-04-10"  # requested 2024-03-11, 30 days to receive
    assert event.payload["erp_documents"] == [
        {"system": "netsuite", "document_type": "returnAuthorization", "id": record["id"],
         "number": record["tranId"]},
    ]  # fmt: skip
    assert event.payload["decision"] == "authorized"
    assert event.payload["decided_by"] == payload["decided_by"]
    assert event.payload["rule"] == payload["rule"]
    assert event.payload["lines"] == payload["lines"]


async def test_a_partial_decision_creates_the_rma_for_the_authorized_quantities_only(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    payload = decision(authorized={1: 1, 2: 0}, rule={"id": "returnable-quantity", "version": "3"})
    event = only(await netsuite.handle(decided(payload)), "return-authorization.v1")

    [record] = sandbox.state.all("returnAuthorization")
    # line 2 is left out: nothing of it was authorized
    assert [(line["line"], line["quantity"]) for line in record["item"]["items"]] == [(1, 1)]
    assert event.payload["decision"] == "partially_authorized"
    assert event.payload["rule"] == {"id": "returnable-quantity", "version": "3"}
    assert event.payload["rma_number"] == record["tranId"]
    assert [
        (line["line_number"], line["requested_quantity"], line["authorized_quantity"])
        for line in event.payload["lines"]
    ] == [(1, 2, 1), (2, 1, 0)]
    assert event.payload["lines"][1]["rejection_reason"] == "exceeds_returnable_quantity"
    assert all("rule" not in line for line in event.payload["lines"])  # not in return-authorization


async def test_a_rejected_decision_makes_no_call(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    payload = decision(authorized={1: 0, 2: 0})
    assert payload["decision"] == "rejected"
    assert await netsuite.handle(decided(payload)) is None
    assert sandbox.state.requests == []  # not even a token
    assert sandbox.state.count("returnAuthorization") == 0


async def test_a_repeat_is_refused_by_netsuite_and_answered_with_the_first_record(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    message = decided()
    first = only(await netsuite.handle(message), "return-authorization.v1")
    again = only(await netsuite.handle(message), "return-authorization.v1")

    assert sandbox.state.count("returnAuthorization") == 1
    assert len(sandbox.state.requests_to("POST", RA)) == 2  # the second refused with DUP_RCRD
    assert first.payload["rma_number"] == again.payload["rma_number"]
    assert first.message_id == again.message_id


async def test_concurrency_throttling_is_retryable(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    sandbox.state.faults.append(Fault(status=429, method="POST", path=RA, times=TRIES))
    with pytest.raises(RetryableDeliveryFailure, match="CONCURRENCY_LIMIT_EXCEEDED") as caught:
        await netsuite.handle(decided())
    assert caught.value.status_code == 429
    assert sandbox.state.count("returnAuthorization") == 0
    assert len(sandbox.state.requests_to("POST", RA)) == TRIES


async def test_a_throttled_create_is_tried_again_in_process_with_its_external_id(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    # NetSuite refuses a second record with the externalId, so the create is safe to repeat.
    sandbox.state.faults.append(Fault(status=429, method="POST", path=RA))
    message = decided()
    only(await netsuite.handle(message), "return-authorization.v1")
    posts = sandbox.state.requests_to("POST", RA)
    assert [s.status for s in posts] == [429, 0]
    assert {s.idempotency for s in posts} == {message.message_id}
    assert sandbox.state.count("returnAuthorization") == 1


async def test_retry_after_is_kept_for_the_runtime(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    sandbox.state.faults.append(Fault(status=503, retry_after="7", path=RA))
    with pytest.raises(RetryableDeliveryFailure) as caught:
        await netsuite.handle(decided())
    assert caught.value.retry_after == 7


async def test_a_server_error_is_retryable_and_the_retry_posts_once(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    message = decided()
    sandbox.state.faults.append(Fault(status=500, method="POST", path=RA, times=TRIES))
    with pytest.raises(RetryableDeliveryFailure, match="answered 500"):
        await netsuite.handle(message)
    only(await netsuite.handle(message), "return-authorization.v1")
    assert sandbox.state.count("returnAuthorization") == 1


async def test_a_malformed_reply_is_retryable(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="GET", path=f"{RA}/eid:"))
    message = decided()
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await netsuite.handle(message)
    event = only(await netsuite.handle(message), "return-authorization.v1")  # DUP_RCRD: we read it
    assert sandbox.state.count("returnAuthorization") == 1
    assert event.payload["rma_number"] == sandbox.state.all("returnAuthorization")[0]["tranId"]


async def test_a_malformed_lookup_reply_is_retryable(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="GET", path=f"{RECORDS}/invoice"))
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await netsuite.handle(delivery("return-request.v1", request()))


async def test_a_timeout_is_retryable(sandbox: NetSuiteSandbox) -> None:
    async with connector_on(sandbox, USE, name="erp", timeout_seconds=0.3) as netsuite:
        sandbox.state.faults.append(Fault(status=None, delay=1.0, path=f"{RECORDS}/invoice"))
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await netsuite.handle(delivery("return-request.v1", request()))


async def test_a_revoked_token_is_renewed_once(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    only(await netsuite.handle(decided()), "return-authorization.v1")
    sandbox.revoke_tokens()
    only(await netsuite.handle(decided()), "return-authorization.v1")
    assert sandbox.state.count("returnAuthorization") == 2
    assert len(sandbox.state.requests_to("POST", NetSuiteSandbox.token_path or "")) == 2


async def test_wrong_credentials_are_a_permanent_failure_with_netsuites_message(
    sandbox: NetSuiteSandbox,
) -> None:
    sandbox.credentials = type(sandbox.credentials)(client_secret="rotated")
    async with connector_on(sandbox, USE, name="erp") as netsuite:
        with pytest.raises(PermanentDeliveryFailure, match="answered 401"):
            await netsuite.handle(delivery("return-request.v1", request()))
        with pytest.raises(PermanentDeliveryFailure, match="answered 401"):
            await netsuite.handle(decided())
    assert sandbox.state.count("returnAuthorization") == 0


# -- credit-memo: posted, and answered as posted -------------------------------------------


async def test_a_draft_credit_is_transformed_from_its_invoice_once_and_answered_as_posted(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    draft = draft_credit()
    message = delivery("credit-memo.v1", draft)
    first = only(await netsuite.handle(message), "credit-memo.v1")
    again = only(await netsuite.handle(message), "credit-memo.v1")  # DUP_RCRD: the same memo

    [memo] = sandbox.state.all("creditMemo")
    assert memo["createdFrom"] == {"id": "9003"} and memo["externalId"] == message.message_id
    assert first.message_id == again.message_id == f"{message.message_id}.erp.posted"
    assert first.payload == again.payload
    posted = first.payload
    assert posted["document_status"] == "posted"
    assert posted["credit_memo_number"] == memo["tranId"]
    assert posted["posting_date"] == "2024-03-20"
    assert posted["erp_documents"] == [
        {"system": "netsuite", "document_type": "creditMemo", "id": memo["id"], "number": memo["tranId"]}
    ]
    unchanged = {"credit_memo_number", "document_status", "erp_documents", "posting_date"}
    assert {k: v for k, v in posted.items() if k not in unchanged} == {
        k: v for k, v in draft.items() if k not in unchanged
    }


async def test_a_draft_credit_without_a_posting_date_is_answered_with_a_valid_posted_credit(
    netsuite: Connector,
) -> None:
    draft = draft_credit()
    del draft["posting_date"]
    posted = only(await netsuite.handle(delivery("credit-memo.v1", draft)), "credit-memo.v1")
    assert posted.payload["posting_date"] == dt.datetime.now(dt.UTC).date().isoformat()


async def test_a_posted_credit_is_ignored(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    posted = copy.deepcopy(CONTRACTS.require("credit-memo", "v1").valid_examples[1].payload)
    assert posted["document_status"] == "posted"
    assert await netsuite.handle(delivery("credit-memo.v1", posted)) is None
    assert sandbox.state.requests == []
    assert sandbox.state.count("creditMemo") == 0


async def test_a_credit_for_an_unknown_invoice_is_a_permanent_failure(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    draft = draft_credit(invoice_reference={"number": "99999999"})
    with pytest.raises(PermanentDeliveryFailure, match="NetSuite has no invoice 99999999") as caught:
        await netsuite.handle(delivery("credit-memo.v1", draft))
    assert caught.value.code == "UNKNOWN_DOCUMENT"
    assert sandbox.state.count("creditMemo") == 0


async def test_lookup_reads_an_invoice_as_an_erp_document(netsuite: Connector) -> None:
    document = await netsuite.lookup("invoice", "90031877")  # type: ignore[attr-defined]
    assert document["kind"] == "invoice" and document["system_id"] == "9003"
    assert {line["sku"]: line["quantity"] for line in document["lines"]}[SSD] == 6
    assert await netsuite.lookup("order", "nope") is None  # type: ignore[attr-defined]


# -- disposition.v1: the inventory adjustment ---------------------------------------------------


def disposition(*lines: tuple[str, float, str | None]) -> dict[str, Any]:
    """A valid ``disposition`` with one line per (disposition code, quantity, target location)."""
    payload: dict[str, Any] = {
        "return_id": f"ret_{uuid.uuid4().hex}",
        "rma_number": "RMA40007",
        "decided_at": "2024-03-19T13:25:00Z",
        "decided_by": {"type": "system", "id": "lifecycle"},
        "lines": [
            {
                "line_number": number,
                "sku": "SSD-SAM-PM893-1T92",
                "quantity": quantity,
                "unit_of_measure": "C62",
                "disposition_code": code,
                **({"target_location": location} if location else {}),
                **({"vendor": {"account_number": "V-20417"}} if code == "return_to_vendor" else {}),
            }
            for number, (code, quantity, location) in enumerate(lines, start=1)
        ],
    }
    assert CONTRACTS.require("disposition", "v1").violations(payload) == []
    return payload


async def test_goods_back_in_stock_become_one_inventory_adjustment(sandbox: NetSuiteSandbox) -> None:
    payload = disposition(
        ("restock", 1, "STOCK-A"), ("return_to_vendor", 2, None), ("refurbish", 1, "REFURB-01")
    )
    options = {"return_site": "DC-HAM", "adjustment_account": "1250"}
    async with connector_on(sandbox, USE, name="erp", options=options) as netsuite:
        message = delivery("disposition.v1", payload, correlation_id=payload["return_id"])
        assert await netsuite.handle(message) is None
        assert await netsuite.handle(message) is None  # a redelivery: NetSuite refuses the duplicate

    [adjustment] = sandbox.state.all("inventoryAdjustment")
    assert adjustment["externalId"] == message.message_id and adjustment["account"] == {"id": "1250"}
    assert [(i["location"]["refName"], i["adjustQtyBy"]) for i in adjustment["inventory"]["items"]] == [
        ("STOCK-A", 1),
        ("REFURB-01", 1),
    ]  # what goes back to the vendor never re-enters stock


async def test_nothing_back_in_stock_posts_nothing_and_no_account_is_refused(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    scrapped = disposition(("scrap", 2, None))
    assert await netsuite.handle(delivery("disposition.v1", scrapped)) is None
    assert sandbox.state.count("inventoryAdjustment") == 0
    with pytest.raises(PermanentDeliveryFailure, match="adjustment_account") as refused:
        await netsuite.handle(delivery("disposition.v1", disposition(("restock", 1, "STOCK-A"))))
    assert refused.value.code == "NOT_CONFIGURED"
