"""The Business Central connector against the Business Central sandbox, over real HTTP: a
request is answered with the documents Business Central holds, a decision becomes the draft
credit memo that is the RMA, a draft credit is posted and answered as posted; repeats
(Business Central keeps no unique key, so the connector's look-before-create is the guard),
throttling, server errors, malformed replies, timeouts, credentials and ETag conflicts.
And the swap: NetSuite or Business Central, the canonical answer to a decision is the same."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.erp.business_central import document_key
from connectors.erp.business_central_sandbox import (
    API,
    COMPANY_ID,
    ENVIRONMENT,
    TENANT,
    BusinessCentralSandbox,
)
from connectors.erp.netsuite_sandbox import NetSuiteSandbox
from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.sandbox import Fault
from gateway.sdk import Connector
from tests.support.erp import CONTRACTS, decided, decision, only, request
from tests.support.profiles import connector_on, delivery

USE = "connectors.erp.business_central:BusinessCentralConnector"
OPTIONS = {"tenant": TENANT, "environment": ENVIRONMENT, "company_id": COMPANY_ID, "return_site": "DC-HAM"}
COMPANY = f"{API}/companies({COMPANY_ID})"
CREDITS = f"{COMPANY}/salesCreditMemos"
SSD = "SSD-SAM-PM893-1T92"


def credit_for(return_id: str, *, quantity: int = 3) -> dict[str, Any]:
    """A valid draft ``credit-memo`` for the return: one SSD line, invoice 90031877."""
    payload = copy.deepcopy(CONTRACTS.require("credit-memo", "v1").valid_examples[1].payload)
    for posted_only in ("credit_memo_number", "erp_documents"):
        del payload[posted_only]
    payload["document_status"] = "draft"
    payload["return_id"] = return_id
    payload["invoice_reference"] = {"number": "90031877"}
    payload["lines"] = [{**payload["lines"][0], "quantity": quantity}]
    assert CONTRACTS.require("credit-memo", "v1").violations(payload) == []
    return payload  # type: ignore[no-any-return]


def creates(sandbox: BusinessCentralSandbox, path: str = CREDITS) -> int:
    return sum(1 for seen in sandbox.state.requests_to("POST", path) if seen.path == path)


@pytest.fixture
def sandbox() -> BusinessCentralSandbox:
    return BusinessCentralSandbox()


@pytest.fixture
async def bc(sandbox: BusinessCentralSandbox) -> AsyncIterator[Connector]:
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS) as connector:
        yield connector


# -- return-request: the documents Business Central holds ------------------------------------


async def test_a_request_is_answered_with_the_documents_business_central_holds(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    message = delivery("return-request.v1", request())
    event = only(await bc.handle(message), "return-documents.v1")

    assert event.message_id == f"{message.message_id}.erp.documents"
    payload = event.payload
    assert payload["return_id"] == message.correlation_id and payload["system"] == "business_central"
    assert payload["missing"] == []
    documents = {document["kind"]: document for document in payload["documents"]}
    assert {kind: (d["number"], d["system_id"]) for kind, d in documents.items()} == {
        "order": ("4500118832", "5d0c8f3e-1a2b-4c3d-8e4f-500000118832"),
        "invoice": ("90031877", "5d0c8f3e-1a2b-4c3d-8e4f-500000031877"),
        "shipment": ("80071234", "5d0c8f3e-1a2b-4c3d-8e4f-500000071234"),
    }
    assert {kind: d["date"] for kind, d in documents.items()} == {
        "order": "2024-02-02", "invoice": "2024-02-06", "shipment": "2024-02-05",
    }  # fmt: skip
    invoice = documents["invoice"]
    assert invoice["customer"] == "C100234" and invoice["currency"] == "EUR"
    assert {line["sku"]: line["quantity"] for line in invoice["lines"]} == {
        SSD: 6, "PSU-MW-RSP-500-24": 4, "CBL-CAT6A-SFTP-5M": 50,
    }  # fmt: skip
    assert all(seen.method == "GET" for seen in sandbox.state.requests_to("GET", API))
    assert sandbox.state.requests_to("POST", API) == []  # read only: no credit memo
    assert sandbox.state.count("salesCreditMemos") == 0


# -- return-decision: the draft credit memo that is the RMA -----------------------------------


async def test_an_authorized_decision_becomes_one_draft_credit_memo_and_a_canonical_answer(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    payload = decision()
    message = decided(payload)
    event = only(await bc.handle(message), "return-authorization.v1")

    [memo] = sandbox.state.all("salesCreditMemos")
    assert memo["externalDocumentNumber"] == document_key(payload["return_id"])
    assert len(memo["externalDocumentNumber"]) == 35
    assert memo["customerNumber"] == "C100234" and memo["invoiceNumber"] == "90031877"
    assert memo["status"] == "Draft"
    assert [line["quantity"] for line in memo["salesCreditMemoLines"]] == [2, 1]
    assert event.message_id == f"{message.message_id}.erp.rma"
    assert event.payload["rma_number"] == memo["number"]
    assert event.payload["return_id"] == payload["return_id"]
    assert event.payload["external_id"] == payload["external_id"]
    assert event.payload["return_site"] == "DC-HAM"
    assert event.payload["expires_on"] == "2024-04-10"  # requested 2024-03-11, 30 days to receive
    assert event.payload["erp_documents"] == [
        {
            "system": "business_central",
            "document_type": "salesCreditMemo",
            "id": memo["id"],
            "number": memo["number"],
        }
    ]
    assert event.payload["decision"] == "authorized"
    assert event.payload["decided_by"] == payload["decided_by"]
    assert event.payload["rule"] == payload["rule"]
    assert event.payload["lines"] == payload["lines"]


async def test_a_partial_decision_creates_the_rma_for_the_authorized_quantities_only(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    payload = decision(authorized={1: 1, 2: 0}, rule={"id": "returnable-quantity", "version": "3"})
    event = only(await bc.handle(decided(payload)), "return-authorization.v1")

    [memo] = sandbox.state.all("salesCreditMemos")
    assert [(line["lineObjectNumber"], line["quantity"]) for line in memo["salesCreditMemoLines"]] == [
        (SSD, 1)  # line 2 left out
    ]
    assert event.payload["decision"] == "partially_authorized"
    assert event.payload["rule"] == {"id": "returnable-quantity", "version": "3"}
    assert event.payload["rma_number"] == memo["number"]
    assert [
        (line["line_number"], line["requested_quantity"], line["authorized_quantity"])
        for line in event.payload["lines"]
    ] == [(1, 2, 1), (2, 1, 0)]
    assert event.payload["lines"][1]["rejection_reason"] == "exceeds_returnable_quantity"
    assert all("rule" not in line for line in event.payload["lines"])  # not in return-authorization


async def test_a_rejected_decision_makes_no_call(bc: Connector, sandbox: BusinessCentralSandbox) -> None:
    payload = decision(authorized={1: 0, 2: 0})
    assert payload["decision"] == "rejected"
    assert await bc.handle(decided(payload)) is None
    assert sandbox.state.requests == []  # not even a token
    assert sandbox.state.count("salesCreditMemos") == 0


async def test_a_repeat_finds_the_first_document_and_creates_none(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    message = decided()
    first = only(await bc.handle(message), "return-authorization.v1")
    again = only(await bc.handle(message), "return-authorization.v1")

    assert sandbox.state.count("salesCreditMemos") == 1
    assert creates(sandbox) == 1  # the repeat looked it up by externalDocumentNumber and stopped
    assert first.payload == again.payload
    assert first.message_id == again.message_id


async def test_business_central_itself_would_take_a_duplicate(sandbox: BusinessCentralSandbox) -> None:
    """Why the connector looks first: Business Central keeps no externalDocumentNumber unique."""
    body = {"customerNumber": "C100234", "externalDocumentNumber": "RGW-same", "salesCreditMemoLines": []}
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS) as bc:
        await bc.target.post(CREDITS, json=body)
        await bc.target.post(CREDITS, json=body)
    assert sandbox.state.count("salesCreditMemos") == 2


async def test_throttling_is_retryable_after_the_wait_business_central_names(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=429, retry_after="12", method="POST", path=CREDITS))
    with pytest.raises(RetryableDeliveryFailure, match="Application_TooManyRequests") as caught:
        await bc.handle(decided())
    assert caught.value.status_code == 429 and caught.value.retry_after == 12
    assert sandbox.state.count("salesCreditMemos") == 0


async def test_a_server_error_is_retryable_and_the_retry_creates_once(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    message = decided()
    sandbox.state.faults.append(Fault(status=503, method="POST", path=CREDITS))
    with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
        await bc.handle(message)
    only(await bc.handle(message), "return-authorization.v1")
    assert sandbox.state.count("salesCreditMemos") == 1


async def test_a_malformed_reply_is_retryable_and_the_retry_finds_the_document(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="POST", path=CREDITS))
    message = decided()
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await bc.handle(message)
    event = only(await bc.handle(message), "return-authorization.v1")  # the first POST did create it
    assert sandbox.state.count("salesCreditMemos") == 1
    assert event.payload["rma_number"] == sandbox.state.all("salesCreditMemos")[0]["number"]


async def test_a_malformed_lookup_reply_is_retryable(bc: Connector, sandbox: BusinessCentralSandbox) -> None:
    sandbox.state.faults.append(
        Fault(status=None, malformed=True, method="GET", path=f"{COMPANY}/salesInvoices")
    )
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await bc.handle(delivery("return-request.v1", request()))


async def test_a_timeout_is_retryable(sandbox: BusinessCentralSandbox) -> None:
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS, timeout_seconds=0.3) as bc:
        sandbox.state.faults.append(Fault(status=None, delay=1.0, path=f"{COMPANY}/salesInvoices"))
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await bc.handle(delivery("return-request.v1", request()))


async def test_a_revoked_token_is_renewed_once(bc: Connector, sandbox: BusinessCentralSandbox) -> None:
    only(await bc.handle(decided()), "return-authorization.v1")
    sandbox.revoke_tokens()
    only(await bc.handle(decided()), "return-authorization.v1")
    assert sandbox.state.count("salesCreditMemos") == 2
    assert len(sandbox.state.requests_to("POST", BusinessCentralSandbox.token_path or "")) == 2


async def test_wrong_credentials_are_a_permanent_failure(sandbox: BusinessCentralSandbox) -> None:
    sandbox.credentials = type(sandbox.credentials)(client_secret="rotated")
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS) as bc:
        with pytest.raises(PermanentDeliveryFailure, match="answered 401"):
            await bc.handle(delivery("return-request.v1", request()))
        with pytest.raises(PermanentDeliveryFailure, match="answered 401"):
            await bc.handle(decided())
    assert sandbox.state.count("salesCreditMemos") == 0


# -- credit-memo: posted, and answered as posted -------------------------------------------


async def test_the_credit_posts_the_returns_draft_once_and_answers_it_as_posted(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    authorized = decided()
    await bc.handle(authorized)
    draft = credit_for(authorized.correlation_id, quantity=2)
    credit = delivery("credit-memo.v1", draft)
    first = only(await bc.handle(credit), "credit-memo.v1")
    again = only(await bc.handle(credit), "credit-memo.v1")

    [memo] = sandbox.state.all("salesCreditMemos")  # the RMA's draft became the credit: no second memo
    assert memo["status"] == "Open" and memo["postingDate"] == "2024-03-20"
    assert [(line["lineObjectNumber"], line["quantity"]) for line in memo["salesCreditMemoLines"]] == [
        (SSD, 2)
    ]
    posts = sandbox.state.requests_to("POST", f"{CREDITS}({memo['id']})/Microsoft.NAV.post")
    assert len(posts) == 1 and all(seen.status == 0 for seen in posts)
    assert first.message_id == again.message_id == f"{credit.message_id}.erp.posted"
    assert first.payload == again.payload
    posted = first.payload
    assert posted["document_status"] == "posted"
    assert posted["credit_memo_number"] == memo["number"]
    assert posted["posting_date"] == "2024-03-20"
    assert posted["erp_documents"] == [
        {"system": "business_central", "document_type": "salesCreditMemo", "id": memo["id"],
         "number": memo["number"]},
    ]  # fmt: skip
    unchanged = {"credit_memo_number", "document_status", "erp_documents", "posting_date"}
    assert {k: v for k, v in posted.items() if k not in unchanged} == {
        k: v for k, v in draft.items() if k not in unchanged
    }


async def test_posting_takes_restocked_goods_back_into_stock_at_the_dispositions_location(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    authorized = decided()
    await bc.handle(authorized)
    draft = credit_for(authorized.correlation_id, quantity=2)
    draft["lines"] = [{**draft["lines"][0], "return_location": "STOCK-A"}]
    assert CONTRACTS.require("credit-memo", "v1").violations(draft) == []
    credit = delivery("credit-memo.v1", draft)
    await bc.handle(credit)
    await bc.handle(credit)  # a repeat books nothing twice
    [memo] = sandbox.state.all("salesCreditMemos")
    [line] = memo["salesCreditMemoLines"]
    assert sandbox.location_code(line["locationId"]) == "STOCK-A"
    [entry] = sandbox.state.all("itemLedgerEntries")  # the inventory action of posting
    assert (entry["itemNumber"], entry["quantity"], entry["entryType"]) == (SSD, 2, "Sale")
    assert entry["documentNumber"] == memo["number"]
    assert len(sandbox.state.requests_to("GET", f"{COMPANY}/locations")) == 1  # read once, then known


async def test_goods_that_do_not_go_back_to_stock_land_in_the_non_stock_location(
    sandbox: BusinessCentralSandbox,
) -> None:
    async with connector_on(
        sandbox, USE, name="erp", options={**OPTIONS, "non_stock_location": "QUARANTINE"}
    ) as bc:
        await bc.handle(delivery("credit-memo.v1", credit_for("ret_" + "ef" * 16)))
    [line] = sandbox.state.all("salesCreditMemos")[0]["salesCreditMemoLines"]
    assert sandbox.location_code(line["locationId"]) == "QUARANTINE"


async def test_a_location_business_central_does_not_know_is_a_permanent_failure(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    draft = credit_for("ret_" + "fa" * 16)
    draft["lines"] = [{**draft["lines"][0], "return_location": "STOCK-Z"}]
    with pytest.raises(PermanentDeliveryFailure, match="no location 'STOCK-Z'"):
        await bc.handle(delivery("credit-memo.v1", draft))
    assert sandbox.state.all("itemLedgerEntries") == []


async def test_a_credit_without_a_draft_creates_and_posts_one(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    credit = delivery("credit-memo.v1", credit_for("ret_" + "ab" * 16))
    first = only(await bc.handle(credit), "credit-memo.v1")
    only(await bc.handle(credit), "credit-memo.v1")
    [memo] = sandbox.state.all("salesCreditMemos")
    assert memo["status"] == "Open" and memo["externalDocumentNumber"] == "RGW" + "ab" * 16
    assert creates(sandbox) == 1
    assert first.payload["credit_memo_number"] == memo["number"]


async def test_a_draft_without_a_posting_date_is_answered_with_the_date_business_central_posted(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    draft = credit_for("ret_" + "cd" * 16)
    del draft["posting_date"]
    event = only(await bc.handle(delivery("credit-memo.v1", draft)), "credit-memo.v1")
    [memo] = sandbox.state.all("salesCreditMemos")
    assert memo["status"] == "Open" and event.payload["posting_date"] == memo["postingDate"]


async def test_a_posted_credit_is_ignored(bc: Connector, sandbox: BusinessCentralSandbox) -> None:
    posted = copy.deepcopy(CONTRACTS.require("credit-memo", "v1").valid_examples[1].payload)
    assert posted["document_status"] == "posted"
    assert await bc.handle(delivery("credit-memo.v1", posted)) is None
    assert sandbox.state.requests == []
    assert sandbox.state.count("salesCreditMemos") == 0


async def test_a_draft_changed_meanwhile_is_read_again_and_posted_once(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    authorized = decided()
    await bc.handle(authorized)
    [memo] = sandbox.state.all("salesCreditMemos")
    # A user edits the draft between our read and our post: the etag we post under is stale once.
    original = sandbox._stale
    refused: list[int] = []

    def edited_once(req: Any, record: dict[str, Any], required: bool) -> Any:
        if not refused and req.url.path.endswith("/Microsoft.NAV.post"):
            sandbox.touch("salesCreditMemos", memo["id"])
            answer = original(req, record, required)
            refused.append(answer.status_code)
            return answer
        return original(req, record, required)

    sandbox._stale = edited_once  # type: ignore[method-assign]
    credit = delivery("credit-memo.v1", credit_for(authorized.correlation_id))
    event = only(await bc.handle(credit), "credit-memo.v1")

    assert refused == [412]  # the first post was refused as stale; the connector read again and posted
    assert len(sandbox.state.requests_to("POST", f"{CREDITS}({memo['id']})/Microsoft.NAV.post")) == 2
    assert memo["status"] == "Open" and sandbox.state.count("salesCreditMemos") == 1
    assert event.payload["credit_memo_number"] == memo["number"]


async def test_a_stale_etag_is_refused_with_412(sandbox: BusinessCentralSandbox) -> None:
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS) as bc:
        created = (await bc.target.post(CREDITS, json={"customerNumber": "C100234"})).json()
        sandbox.touch("salesCreditMemos", created["id"])
        with pytest.raises(PermanentDeliveryFailure, match="Request_EntityChanged") as caught:
            await bc.target.patch(
                f"{CREDITS}({created['id']})", json={"postingDate": "2024-03-20"},
                headers={"If-Match": created["@odata.etag"]},
            )  # fmt: skip
    assert caught.value.status_code == 412


async def test_a_supplier_claim_is_one_draft_purchase_credit_memo(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    claim = copy.deepcopy(CONTRACTS.require("supplier-claim", "v1").valid_examples[0].payload)
    message = delivery("supplier-claim.v1", claim)
    await bc.handle(message)
    await bc.handle(message)
    [memo] = sandbox.state.all("purchaseCreditMemos")
    assert memo["vendorNumber"] == "V20018" and memo["vendorCreditMemoNumber"] == "VRA-2024-00318"
    assert memo["status"] == "Draft"
    [line] = memo["purchaseCreditMemoLines"]
    assert line["lineObjectNumber"] == SSD and line["directUnitCost"] == 214.0


async def test_lookup_reads_invoice_order_and_shipment_as_erp_documents(bc: Connector) -> None:
    invoice = await bc.lookup("invoice", "90031877")  # type: ignore[attr-defined]
    assert invoice["kind"] == "invoice" and invoice["date"] == "2024-02-06"
    assert {line["sku"]: line["quantity"] for line in invoice["lines"]} == {
        SSD: 6, "PSU-MW-RSP-500-24": 4, "CBL-CAT6A-SFTP-5M": 50,
    }  # fmt: skip
    assert {line["sku"]: line["unit_price"] for line in invoice["lines"]}["CBL-CAT6A-SFTP-5M"] == "7.9"
    order = await bc.lookup("order", "4500118832")  # type: ignore[attr-defined]
    shipment = await bc.lookup("shipment", "80071234")  # type: ignore[attr-defined]
    assert order["kind"] == "order" and shipment["kind"] == "shipment"
    assert await bc.lookup("order", "nope") is None  # type: ignore[attr-defined]


async def test_netsuite_or_business_central_the_canonical_answer_is_the_same() -> None:
    """The swap: one decision, either ERP configured, the same return-authorization but for the
    ERP's own document number and id (and when the ERP recorded it)."""
    payload = decision(authorized={2: 0})
    message = decided(payload)
    answers = {}
    for sandbox, use, options in (
        (NetSuiteSandbox(), "connectors.erp.netsuite:NetSuiteConnector", {"return_site": "DC-HAM"}),
        (BusinessCentralSandbox(), USE, OPTIONS),
    ):
        async with connector_on(sandbox, use, name="erp", options=options) as connector:
            answers[use] = only(await connector.handle(message), "return-authorization.v1")

    netsuite, business_central = answers.values()
    assert netsuite.message_id == business_central.message_id
    system_specific = {"rma_number", "erp_documents"}
    same = {k: v for k, v in netsuite.payload.items() if k not in system_specific}
    assert same == {k: v for k, v in business_central.payload.items() if k not in system_specific}
    assert same["return_id"] == payload["return_id"] and same["decision"] == "partially_authorized"
    assert same["decided_by"] == payload["decided_by"] and same["rule"] == payload["rule"]
    assert netsuite.payload.keys() == business_central.payload.keys()
