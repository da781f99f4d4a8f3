"""The Extensiv connector against the Extensiv sandbox, over real HTTP: expected receipts created
once, throttling, server errors, malformed replies and credentials read the way Extensiv means
them, and the warehouse's signed webhooks turned into canonical receipts and inspection results."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.wms.extensiv_sandbox import RECEIVERS, ExtensivSandbox
from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.registry import ContractRegistry
from gateway.sandbox import Fault
from gateway.sdk import Connector, Inbound, WebhookRejected
from gateway.settings import PROJECT_ROOT
from tests.support.profiles import TRIES, connector_on, delivery

USE = "connectors.wms.extensiv:ExtensivConnector"
SECRET_ENV = "TEST_EXTENSIV_WEBHOOK_SECRET"
OPTIONS = {"customer_id": 1, "webhook_secret_env": SECRET_ENV}
CONTRACTS = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")
AUTHORIZATIONS = CONTRACTS.require("return-authorization", "v1")


def authorization(example: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid authorization (0: authorized to DC-HAM, 1: partial to DC-KOELN, 2: rejected),
    with its own RMA number and return id."""
    payload = copy.deepcopy(AUTHORIZATIONS.valid_examples[example].payload)
    payload["return_id"] = f"ret_{uuid.uuid4().hex}"
    if payload["decision"] != "rejected":
        payload["rma_number"] = f"RMA-{uuid.uuid4().hex[:10].upper()}"
    payload.update(changes)
    return payload


def assert_valid(message_type: str, payload: dict[str, Any]) -> None:
    name, _, version = message_type.rpartition(".")
    assert CONTRACTS.require(name, version).violations(payload) == []


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "sandbox-webhook-secret")


@pytest.fixture
def sandbox() -> ExtensivSandbox:
    return ExtensivSandbox()


@pytest.fixture
async def extensiv(sandbox: ExtensivSandbox) -> AsyncIterator[Connector]:
    async with connector_on(sandbox, USE, name="wms", options=OPTIONS) as connector:
        yield connector


# -- expected receipts ---------------------------------------------------------------------
async def test_an_authorization_becomes_one_return_receiver(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    payload = authorization()
    assert await extensiv.handle(delivery("return-authorization.v1", payload)) is None

    [receiver] = sandbox.state.all("receivers")
    assert receiver["referenceNum"] == payload["rma_number"]
    assert receiver["poNum"] == payload["return_id"]
    assert receiver["isReturn"] is True
    assert receiver["readOnly"]["customerIdentifier"]["id"] == 1
    assert receiver["readOnly"]["facilityIdentifier"] == {"id": 1, "name": "DC-HAM"}
    assert [(i["itemIdentifier"]["sku"], i["qty"]) for i in receiver["receiveItems"]] == [
        ("SSD-SAM-PM893-1T92", 2),
        ("SSD-SAM-PM893-1T92", 1),
    ]


async def test_a_repeat_is_refused_by_extensiv_and_found_by_reference(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    await extensiv.handle(message)
    await extensiv.handle(message)

    assert sandbox.state.count("receivers") == 1
    assert len(sandbox.state.requests_to("POST", RECEIVERS)) == 2  # the second refused as a duplicate
    [lookup] = [s for s in sandbox.state.requests_to("GET", RECEIVERS) if s.path == RECEIVERS]
    assert lookup.status == 0  # answered normally


async def test_a_partial_authorization_expects_only_the_authorized_lines(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    await extensiv.handle(delivery("return-authorization.v1", authorization(1)))
    [receiver] = sandbox.state.all("receivers")
    assert receiver["readOnly"]["facilityIdentifier"]["name"] == "DC-KOELN"
    assert [i["itemIdentifier"]["sku"] for i in receiver["receiveItems"]] == [
        "PLC-SIE-6ES7214-1AG40-0XB0",
        "PSU-MW-SDR-480-24",
    ]


async def test_a_rejected_authorization_is_acknowledged_without_a_call(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    assert await extensiv.handle(delivery("return-authorization.v1", authorization(2))) is None
    assert sandbox.state.requests == []


async def test_a_reference_number_held_by_another_return_is_a_permanent_failure(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    first = authorization()
    await extensiv.handle(delivery("return-authorization.v1", first))
    other = authorization(rma_number=first["rma_number"])
    with pytest.raises(PermanentDeliveryFailure, match="for another return") as caught:
        await extensiv.handle(delivery("return-authorization.v1", other))
    assert caught.value.code == "REFERENCE_TAKEN"


async def test_an_unknown_site_is_a_permanent_mapping_failure(extensiv: Connector) -> None:
    with pytest.raises(PermanentDeliveryFailure, match="no entry for 'DC-NOWHERE'"):
        await extensiv.handle(delivery("return-authorization.v1", authorization(return_site="DC-NOWHERE")))


async def test_throttling_is_retryable_after_the_wait_extensiv_names(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=429, retry_after="7", method="POST", path=RECEIVERS))
    with pytest.raises(RetryableDeliveryFailure, match="TooManyRequests") as caught:
        await extensiv.handle(delivery("return-authorization.v1", authorization()))
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7


async def test_a_server_error_is_retryable_and_the_retry_creates_once(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    sandbox.state.faults.append(Fault(status=503, method="POST", path=RECEIVERS, times=TRIES))
    with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
        await extensiv.handle(message)
    await extensiv.handle(message)
    assert sandbox.state.count("receivers") == 1


async def test_a_malformed_reply_is_retryable_and_the_retry_finds_the_receiver(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="POST", path=RECEIVERS))
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await extensiv.handle(message)
    await extensiv.handle(message)  # refused as a duplicate, then read back
    assert sandbox.state.count("receivers") == 1


async def test_a_timeout_is_retryable(sandbox: ExtensivSandbox) -> None:
    async with connector_on(sandbox, USE, name="wms", options=OPTIONS, timeout_seconds=0.3) as extensiv:
        sandbox.state.faults.append(Fault(status=None, delay=1.0, method="POST", path=RECEIVERS))
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await extensiv.handle(delivery("return-authorization.v1", authorization()))


async def test_a_revoked_token_is_renewed_once(extensiv: Connector, sandbox: ExtensivSandbox) -> None:
    await extensiv.handle(delivery("return-authorization.v1", authorization()))
    sandbox.revoke_tokens()
    await extensiv.handle(delivery("return-authorization.v1", authorization()))
    assert sandbox.state.count("receivers") == 2
    assert len(sandbox.state.requests_to("POST", ExtensivSandbox.token_path or "")) == 2


async def test_wrong_credentials_are_a_permanent_failure(sandbox: ExtensivSandbox) -> None:
    sandbox.credentials = type(sandbox.credentials)(client_secret="rotated")
    async with connector_on(sandbox, USE, name="wms", options=OPTIONS) as extensiv:
        with pytest.raises(PermanentDeliveryFailure, match="answered 401"):
            await extensiv.handle(delivery("return-authorization.v1", authorization()))
    assert sandbox.state.count("receivers") == 0


# -- webhooks ------------------------------------------------------------------------------
async def received(extensiv: Connector, sandbox: ExtensivSandbox, **confirm: Any) -> dict[str, Any]:
    """An authorization sent to Extensiv, and the warehouse's receipt webhook for it."""
    payload = authorization()
    await extensiv.handle(delivery("return-authorization.v1", payload))
    body, headers = sandbox.confirm_receipt(payload["rma_number"], **confirm)
    return {"authorization": payload, "inbound": Inbound(headers=headers, body=body)}


async def test_a_signed_receipt_webhook_becomes_a_canonical_receipt(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    case = await received(
        extensiv, sandbox, extra_items=[("RLY-FIN-40.52.8.230", 1)], tracking_number="1Z999"
    )
    [event] = await extensiv.receive(case["inbound"])

    assert event.message_type == "receipt.v1"
    assert_valid("receipt.v1", event.payload)
    receipt, payload = event.payload, case["authorization"]
    [receiver] = sandbox.state.all("receivers")
    assert receipt["return_id"] == payload["return_id"]
    assert receipt["rma_number"] == payload["rma_number"]
    assert receipt["receipt_number"] == str(receiver["readOnly"]["receiverId"])
    assert receipt["site"] == "DC-HAM" and receipt["carrier_tracking_number"] == "1Z999"
    assert [(line.get("rma_line_number"), line["sku"], line["quantity"]) for line in receipt["lines"]] == [
        (1, "SSD-SAM-PM893-1T92", 2),
        (2, "SSD-SAM-PM893-1T92", 1),
        (None, "RLY-FIN-40.52.8.230", 1),  # not on the RMA
    ]
    assert {line["location"] for line in receipt["lines"]} == {"QRN-01-A"}


async def test_a_signed_inspection_webhook_becomes_a_canonical_inspection_result(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    case = await received(extensiv, sandbox)
    body, headers = sandbox.inspect_return(case["authorization"]["rma_number"], grades={1: "DEF", 2: "NFF"})
    [event] = await extensiv.receive(Inbound(headers=headers, body=body))

    assert event.message_type == "inspection-result.v1"
    assert_valid("inspection-result.v1", event.payload)
    assert event.payload["return_id"] == case["authorization"]["return_id"]
    assert [line["condition_code"] for line in event.payload["lines"]] == ["defective", "no_fault_found"]
    assert event.payload["inspector"] == {"type": "user", "id": "t.nowak", "name": "Tomasz Nowak"}


async def test_the_same_webhook_twice_gives_the_same_message_id(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    case = await received(extensiv, sandbox)
    [first] = await extensiv.receive(case["inbound"])
    [again] = await extensiv.receive(case["inbound"])
    # Extensiv re-sending the confirmation as a new event is still the same receipt.
    body, headers = sandbox.confirm_receipt(case["authorization"]["rma_number"])
    [resent] = await extensiv.receive(Inbound(headers=headers, body=body))
    assert first.message_id == again.message_id == resent.message_id
    assert first.payload == again.payload


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Webhook-Signature": "sha256=" + "0" * 64}, {"X-Webhook-Signature": "not-a-signature"}],
    ids=["missing", "wrong", "garbled"],
)
async def test_a_webhook_without_a_valid_signature_is_refused_with_401(
    extensiv: Connector, sandbox: ExtensivSandbox, headers: dict[str, str]
) -> None:
    case = await received(extensiv, sandbox)
    with pytest.raises(WebhookRejected) as caught:
        await extensiv.receive(Inbound(headers=headers, body=case["inbound"].body))
    assert caught.value.status == 401


async def test_a_body_signed_with_another_secret_is_refused(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    case = await received(extensiv, sandbox)
    body = case["inbound"].body
    with pytest.raises(WebhookRejected, match="does not match") as caught:
        await extensiv.receive(Inbound(headers=sandbox.sign(body, "someone-else"), body=body))
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<xml>not json</xml>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"eventType": "OrderShip", "eventId": "1"}', "eventType 'OrderShip'"),
        (b'{"eventType": "ReceiptConfirm", "eventId": "1", "resource": {}}', "no receiver with receiveItems"),
        (b'{"eventType": {}}', "no eventType"),
        (
            b'{"eventType": "ReceiptConfirm", "customerId": 1, "transactionId": 2,'
            b' "resource": {"receiveItems": [{"savedElements": 1}]}}',
            "savedElements is not a list",
        ),
    ],
    ids=["garbage", "array", "unknown-event", "no-resource", "event-type-object", "saved-elements-number"],
)
async def test_an_unreadable_webhook_body_is_refused_with_422(
    extensiv: Connector, sandbox: ExtensivSandbox, body: bytes, reason: str
) -> None:
    with pytest.raises(WebhookRejected, match=reason) as caught:
        await extensiv.receive(Inbound(headers=sandbox.sign(body), body=body))
    assert caught.value.status == 422


async def test_a_receipt_the_mapping_cannot_place_is_refused_with_422_naming_why(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    import msgspec

    case = await received(extensiv, sandbox)
    event = msgspec.json.decode(case["inbound"].body)
    event["resource"]["readOnly"]["facilityIdentifier"]["id"] = 99  # a facility the site table lacks
    del event["resource"]["poNum"]
    body = msgspec.json.encode(event)
    with pytest.raises(WebhookRejected, match="no entry for 99 in mapping table 'site'") as caught:
        await extensiv.receive(Inbound(headers=sandbox.sign(body), body=body))
    assert caught.value.status == 422
    event["resource"]["readOnly"]["facilityIdentifier"]["id"] = 1
    body = msgspec.json.encode(event)
    with pytest.raises(WebhookRejected, match="return_id") as caught:
        await extensiv.receive(Inbound(headers=sandbox.sign(body), body=body))
    assert caught.value.status == 422


async def test_other_receipt_events_are_acknowledged_without_events(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    body = b'{"eventType": "ReceiptCreate", "eventId": "7", "customerId": 1, "transactionId": 5}'
    assert await extensiv.receive(Inbound(headers=sandbox.sign(body), body=body)) == []


async def test_the_sandbox_answers_webhooks_over_http_for_a_demo_in_another_process(
    extensiv: Connector, sandbox: ExtensivSandbox
) -> None:
    payload = authorization()
    await extensiv.handle(delivery("return-authorization.v1", payload))
    async with httpx.AsyncClient(base_url=str(extensiv.target.client.base_url)) as client:
        reply = await client.post("/_sandbox/confirm-receipt", json={"reference_num": payload["rma_number"]})
    assert reply.status_code == 200
    signed = reply.json()
    [event] = await extensiv.receive(Inbound(headers=signed["headers"], body=signed["body"].encode()))
    assert event.payload["return_id"] == payload["return_id"]
