"""The Business Central connector against the Business Central sandbox, over real HTTP: success,
repeats (Business Central keeps no unique key, so the connector's look-before-create is the
guard), throttling, server errors, malformed replies, timeouts, credentials and ETag conflicts.
And the swap: NetSuite or Business Central, the canonical answer to a return is the same."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors import Connector
from connectors.erp.business_central import document_key
from connectors.sandboxes import Fault
from connectors.sandboxes.business_central import API, COMPANY_ID, ENVIRONMENT, TENANT, BusinessCentralSandbox
from connectors.sandboxes.netsuite import NetSuiteSandbox
from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.registry import ContractRegistry
from gateway.settings import PROJECT_ROOT
from tests.support.payloads import RETURN_REQUEST
from tests.support.profiles import connector_on, delivery

USE = "connectors.erp.business_central:BusinessCentralConnector"
OPTIONS = {"tenant": TENANT, "environment": ENVIRONMENT, "company_id": COMPANY_ID, "return_site": "DC-HAM"}
COMPANY = f"{API}/companies({COMPANY_ID})"
CREDITS = f"{COMPANY}/salesCreditMemos"
CONTRACTS = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")


def request(**changes: object) -> dict[str, Any]:
    payload = copy.deepcopy(RETURN_REQUEST.valid_examples[0].payload)  # invoice 90031877, 3 SSDs
    payload.update(changes)
    return payload


def credit_for(return_id: str, *, quantity: int = 3) -> dict[str, Any]:
    payload = copy.deepcopy(CONTRACTS.require("credit-memo", "v1").valid_examples[1].payload)
    payload["return_id"] = return_id
    payload["invoice_reference"] = {"number": "90031877"}
    payload["lines"] = [{**payload["lines"][0], "quantity": quantity}]
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


async def test_a_request_becomes_one_draft_credit_memo_and_a_canonical_answer(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    message = delivery("return-request.v1", request())
    emitted = await bc.handle(message)

    [memo] = sandbox.state.all("salesCreditMemos")
    assert memo["externalDocumentNumber"] == document_key(message.correlation_id)
    assert len(memo["externalDocumentNumber"]) == 35
    assert memo["customerNumber"] == "C100234" and memo["invoiceNumber"] == "90031877"
    assert memo["status"] == "Draft"
    assert [line["quantity"] for line in memo["salesCreditMemoLines"]] == [2, 1]
    assert emitted is not None
    [event] = emitted
    assert event.message_type == "return-authorization.v1"
    assert event.message_id == f"{message.message_id}.erp.rma"
    assert event.payload["rma_number"] == memo["number"]
    assert event.payload["return_id"] == message.correlation_id
    assert event.payload["return_site"] == "DC-HAM"
    assert event.payload["erp_documents"] == [
        {
            "system": "business_central",
            "document_type": "salesCreditMemo",
            "id": memo["id"],
            "number": memo["number"],
        }
    ]


async def test_a_repeat_finds_the_first_document_and_creates_none(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    message = delivery("return-request.v1", request())
    first = await bc.handle(message)
    again = await bc.handle(message)

    assert sandbox.state.count("salesCreditMemos") == 1
    assert creates(sandbox) == 1  # the repeat looked it up by externalDocumentNumber and stopped
    assert first is not None and again is not None
    assert first[0].payload == again[0].payload
    assert first[0].message_id == again[0].message_id


async def test_business_central_itself_would_take_a_duplicate(sandbox: BusinessCentralSandbox) -> None:
    """Why the connector looks first: Business Central keeps no externalDocumentNumber unique."""
    body = {"customerNumber": "C100234", "externalDocumentNumber": "RGW-same", "salesCreditMemoLines": []}
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS) as bc:
        await bc.target.post(CREDITS, json=body)
        await bc.target.post(CREDITS, json=body)
    assert sandbox.state.count("salesCreditMemos") == 2


async def test_more_than_was_invoiced_is_refused_before_anything_is_posted(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    payload = request()
    payload["lines"][0]["quantity"] = 40
    with pytest.raises(PermanentDeliveryFailure, match="41 returned, 6 on invoice 90031877") as caught:
        await bc.handle(delivery("return-request.v1", payload))
    assert caught.value.code == "QUANTITY_ABOVE_DOCUMENT"
    assert sandbox.state.count("salesCreditMemos") == 0


async def test_an_unknown_invoice_is_a_permanent_failure(bc: Connector) -> None:
    payload = request(references={"invoice": {"number": "99999999"}})
    with pytest.raises(PermanentDeliveryFailure, match="Business Central has no invoice 99999999"):
        await bc.handle(delivery("return-request.v1", payload))


async def test_throttling_is_retryable_after_the_wait_business_central_names(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=429, retry_after="12", method="POST", path=CREDITS))
    with pytest.raises(RetryableDeliveryFailure, match="Application_TooManyRequests") as caught:
        await bc.handle(delivery("return-request.v1", request()))
    assert caught.value.status_code == 429 and caught.value.retry_after == 12


async def test_a_server_error_is_retryable_and_the_retry_creates_once(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    message = delivery("return-request.v1", request())
    sandbox.state.faults.append(Fault(status=503, method="POST", path=CREDITS))
    with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
        await bc.handle(message)
    await bc.handle(message)
    assert sandbox.state.count("salesCreditMemos") == 1


async def test_a_malformed_reply_is_retryable_and_the_retry_finds_the_document(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="POST", path=CREDITS))
    message = delivery("return-request.v1", request())
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await bc.handle(message)
    emitted = await bc.handle(message)  # the first POST did create it: the lookup finds it
    assert emitted is not None and sandbox.state.count("salesCreditMemos") == 1
    assert emitted[0].payload["rma_number"] == sandbox.state.all("salesCreditMemos")[0]["number"]


async def test_a_timeout_is_retryable(sandbox: BusinessCentralSandbox) -> None:
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS, timeout_seconds=0.3) as bc:
        sandbox.state.faults.append(Fault(status=None, delay=1.0, path=f"{COMPANY}/salesInvoices"))
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await bc.handle(delivery("return-request.v1", request()))


async def test_a_revoked_token_is_renewed_once(bc: Connector, sandbox: BusinessCentralSandbox) -> None:
    await bc.handle(delivery("return-request.v1", request()))
    sandbox.revoke_tokens()
    await bc.handle(delivery("return-request.v1", request()))
    assert sandbox.state.count("salesCreditMemos") == 2
    assert len(sandbox.state.requests_to("POST", BusinessCentralSandbox.token_path or "")) == 2


async def test_wrong_credentials_are_a_permanent_failure(sandbox: BusinessCentralSandbox) -> None:
    sandbox.credentials = type(sandbox.credentials)(client_secret="rotated")
    async with connector_on(sandbox, USE, name="erp", options=OPTIONS) as bc:
        with pytest.raises(PermanentDeliveryFailure, match="answered 401"):
            await bc.handle(delivery("return-request.v1", request()))
    assert sandbox.state.count("salesCreditMemos") == 0


async def test_the_credit_posts_the_returns_draft_once(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    authorized = delivery("return-request.v1", request())
    await bc.handle(authorized)
    credit = delivery("credit-memo.v1", credit_for(authorized.correlation_id, quantity=2))
    await bc.handle(credit)
    await bc.handle(credit)

    [memo] = sandbox.state.all("salesCreditMemos")  # the RMA's draft became the credit: no second memo
    assert memo["status"] == "Open" and memo["postingDate"] == "2024-03-20"
    assert [(line["lineObjectNumber"], line["quantity"]) for line in memo["salesCreditMemoLines"]] == [
        ("SSD-SAM-PM893-1T92", 2)
    ]
    posts = sandbox.state.requests_to("POST", f"{CREDITS}({memo['id']})/Microsoft.NAV.post")
    assert len(posts) == 1


async def test_a_credit_without_a_draft_creates_and_posts_one(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    credit = delivery("credit-memo.v1", credit_for("ret_" + "ab" * 16))
    await bc.handle(credit)
    await bc.handle(credit)
    [memo] = sandbox.state.all("salesCreditMemos")
    assert memo["status"] == "Open" and memo["externalDocumentNumber"] == "RGW" + "ab" * 16
    assert creates(sandbox) == 1


async def test_a_draft_changed_meanwhile_is_read_again_and_posted_once(
    bc: Connector, sandbox: BusinessCentralSandbox
) -> None:
    authorized = delivery("return-request.v1", request())
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
    await bc.handle(delivery("credit-memo.v1", credit_for(authorized.correlation_id)))

    assert refused == [412]  # the first post was refused as stale; the connector read again and posted
    assert len(sandbox.state.requests_to("POST", f"{CREDITS}({memo['id']})/Microsoft.NAV.post")) == 2
    assert memo["status"] == "Open" and sandbox.state.count("salesCreditMemos") == 1


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
    assert line["lineObjectNumber"] == "SSD-SAM-PM893-1T92" and line["directUnitCost"] == 214.0


async def test_lookup_reads_invoice_order_and_shipment_as_erp_documents(bc: Connector) -> None:
    invoice = await bc.lookup("invoice", "90031877")  # type: ignore[attr-defined]
    assert invoice["kind"] == "invoice" and invoice["date"] == "2024-02-06"
    assert {line["sku"]: line["quantity"] for line in invoice["lines"]} == {
        "SSD-SAM-PM893-1T92": 6, "PSU-MW-RSP-500-24": 4, "CBL-CAT6A-SFTP-5M": 50,
    }  # fmt: skip
    assert {line["sku"]: line["unit_price"] for line in invoice["lines"]}["CBL-CAT6A-SFTP-5M"] == "7.9"
    order = await bc.lookup("order", "4500118832")  # type: ignore[attr-defined]
    shipment = await bc.lookup("shipment", "80071234")  # type: ignore[attr-defined]
    assert order["kind"] == "order" and shipment["kind"] == "shipment"
    assert await bc.lookup("order", "nope") is None  # type: ignore[attr-defined]


async def test_netsuite_or_business_central_the_canonical_answer_is_the_same() -> None:
    """The swap: one return request, either ERP configured, the same return-authorization but
    for the ERP's own document number and id."""
    message = delivery("return-request.v1", request())
    answers = {}
    for sandbox, use, options in (
        (NetSuiteSandbox(), "connectors.erp.netsuite:NetSuiteConnector", {"return_site": "DC-HAM"}),
        (BusinessCentralSandbox(), USE, OPTIONS),
    ):
        async with connector_on(sandbox, use, name="erp", options=options) as connector:
            emitted = await connector.handle(message)
        assert emitted is not None
        [event] = emitted
        contract = CONTRACTS.require(event.contract, event.version)
        assert contract.violations(event.payload) == []
        answers[use] = event

    netsuite, business_central = answers.values()
    assert netsuite.message_type == business_central.message_type == "return-authorization.v1"
    assert netsuite.message_id == business_central.message_id
    system_specific = {"rma_number", "erp_documents", "decided_at", "decided_by"}
    same = {k: v for k, v in netsuite.payload.items() if k not in system_specific}
    assert same == {k: v for k, v in business_central.payload.items() if k not in system_specific}
    assert same["return_id"] == message.correlation_id and same["lines"] == netsuite.payload["lines"]
    assert netsuite.payload.keys() == business_central.payload.keys()
    assert netsuite.payload["decided_by"]["id"] == business_central.payload["decided_by"]["id"] == "erp"
