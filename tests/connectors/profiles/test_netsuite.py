"""The NetSuite connector against the NetSuite sandbox, over real HTTP: success, duplicates,
throttling, server errors, malformed replies and credentials, each read the way NetSuite means it."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import pytest

from connectors import Connector
from connectors.sandboxes import Fault
from connectors.sandboxes.netsuite import NetSuiteSandbox
from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from tests.support.payloads import RETURN_REQUEST
from tests.support.profiles import connector_on, delivery

USE = "connectors.erp.netsuite:NetSuiteConnector"
RA = "/services/rest/record/v1/returnAuthorization"


def request(**changes: object) -> dict[str, object]:
    payload = copy.deepcopy(RETURN_REQUEST.valid_examples[0].payload)  # invoice 90031877, 3 SSDs
    payload.update(changes)
    return payload


@pytest.fixture
def sandbox() -> NetSuiteSandbox:
    return NetSuiteSandbox()


@pytest.fixture
async def netsuite(sandbox: NetSuiteSandbox) -> AsyncIterator[Connector]:
    async with connector_on(sandbox, USE, name="erp", options={"return_site": "DC-HAM"}) as connector:
        yield connector


async def test_a_request_becomes_one_return_authorization_and_a_canonical_answer(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    message = delivery("return-request.v1", request())
    emitted = await netsuite.handle(message)

    [record] = sandbox.state.all("returnAuthorization")
    assert record["externalId"] == message.message_id
    assert record["entity"] == {"externalId": "C100234"}
    assert [line["quantity"] for line in record["item"]["items"]] == [2, 1]
    assert emitted is not None
    [event] = emitted
    assert event.message_type == "return-authorization.v1"
    assert event.payload["rma_number"] == record["tranId"]
    assert event.payload["return_id"] == message.correlation_id
    assert event.payload["return_site"] == "DC-HAM"
    assert event.payload["erp_documents"][0]["id"] == record["id"]


async def test_a_repeat_is_refused_by_netsuite_and_answered_with_the_first_record(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    message = delivery("return-request.v1", request())
    first = await netsuite.handle(message)
    again = await netsuite.handle(message)

    assert sandbox.state.count("returnAuthorization") == 1
    assert len(sandbox.state.requests_to("POST", RA)) == 2  # the second refused with DUP_RCRD
    assert first is not None and again is not None
    assert first[0].payload["rma_number"] == again[0].payload["rma_number"]
    assert first[0].message_id == again[0].message_id


async def test_more_than_was_invoiced_is_refused_before_anything_is_posted(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    payload = request()
    payload["lines"][0]["quantity"] = 40  # type: ignore[index]
    with pytest.raises(PermanentDeliveryFailure, match="41 returned, 6 on invoice 90031877") as caught:
        await netsuite.handle(delivery("return-request.v1", payload))
    assert caught.value.code == "QUANTITY_ABOVE_DOCUMENT"
    assert sandbox.state.count("returnAuthorization") == 0


async def test_an_unknown_invoice_is_a_permanent_failure(netsuite: Connector) -> None:
    payload = request(references={"invoice": {"number": "99999999"}})
    with pytest.raises(PermanentDeliveryFailure, match="NetSuite has no invoice 99999999"):
        await netsuite.handle(delivery("return-request.v1", payload))


async def test_concurrency_throttling_is_retryable(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    sandbox.state.faults.append(Fault(status=429, method="POST", path=RA))
    with pytest.raises(RetryableDeliveryFailure, match="CONCURRENCY_LIMIT_EXCEEDED") as caught:
        await netsuite.handle(delivery("return-request.v1", request()))
    assert caught.value.status_code == 429


async def test_retry_after_is_kept_for_the_runtime(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    sandbox.state.faults.append(Fault(status=503, retry_after="7", path=RA))
    with pytest.raises(RetryableDeliveryFailure) as caught:
        await netsuite.handle(delivery("return-request.v1", request()))
    assert caught.value.retry_after == 7


async def test_a_server_error_is_retryable_and_the_retry_posts_once(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    message = delivery("return-request.v1", request())
    sandbox.state.faults.append(Fault(status=500, method="POST", path=RA))
    with pytest.raises(RetryableDeliveryFailure, match="answered 500"):
        await netsuite.handle(message)
    await netsuite.handle(message)
    assert sandbox.state.count("returnAuthorization") == 1


async def test_a_malformed_reply_is_retryable(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="GET", path=f"{RA}/eid:"))
    message = delivery("return-request.v1", request())
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await netsuite.handle(message)
    emitted = await netsuite.handle(message)  # the record exists: NetSuite says DUP_RCRD, we read it
    assert emitted is not None and sandbox.state.count("returnAuthorization") == 1


async def test_a_timeout_is_retryable(sandbox: NetSuiteSandbox) -> None:
    async with connector_on(sandbox, USE, name="erp", timeout_seconds=0.3) as netsuite:
        sandbox.state.faults.append(Fault(status=None, delay=1.0, path="/services/rest/record/v1/invoice"))
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await netsuite.handle(delivery("return-request.v1", request()))


async def test_a_revoked_token_is_renewed_once(netsuite: Connector, sandbox: NetSuiteSandbox) -> None:
    await netsuite.handle(delivery("return-request.v1", request()))
    sandbox.revoke_tokens()
    await netsuite.handle(delivery("return-request.v1", request()))
    assert sandbox.state.count("returnAuthorization") == 2
    assert len(sandbox.state.requests_to("POST", NetSuiteSandbox.token_path or "")) == 2


async def test_wrong_credentials_are_a_permanent_failure_with_netsuites_message(
    sandbox: NetSuiteSandbox,
) -> None:
    sandbox.credentials = type(sandbox.credentials)(client_secret="rotated")
    async with connector_on(sandbox, USE, name="erp") as netsuite:
        with pytest.raises(PermanentDeliveryFailure, match="answered 401"):
            await netsuite.handle(delivery("return-request.v1", request()))


async def test_a_credit_memo_is_transformed_from_its_invoice_once(
    netsuite: Connector, sandbox: NetSuiteSandbox
) -> None:
    from gateway.registry import ContractRegistry
    from gateway.settings import PROJECT_ROOT

    credit = ContractRegistry.from_folder(PROJECT_ROOT / "contracts").require("credit-memo", "v1")
    payload = copy.deepcopy(credit.valid_examples[0].payload)
    payload["invoice_reference"] = {"number": "90031877"}
    message = delivery("credit-memo.v1", payload)
    await netsuite.handle(message)
    await netsuite.handle(message)
    [memo] = sandbox.state.all("creditMemo")
    assert memo["createdFrom"] == {"id": "9003"} and memo["externalId"] == message.message_id


async def test_lookup_reads_an_invoice_as_an_erp_document(netsuite: Connector) -> None:
    document = await netsuite.lookup("invoice", "90031877")  # type: ignore[attr-defined]
    assert document["kind"] == "invoice" and document["system_id"] == "9003"
    assert {line["sku"]: line["quantity"] for line in document["lines"]}["SSD-SAM-PM893-1T92"] == 6
    assert await netsuite.lookup("order", "nope") is None  # type: ignore[attr-defined]
