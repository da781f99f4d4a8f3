"""The EasyPost connector against the EasyPost sandbox, over real HTTP: one label per return
however often it is asked, throttling, server errors, malformed replies, credentials, and
signed tracker webhooks read as canonical tracking events."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.carrier.easypost_sandbox import EasyPostSandbox
from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.registry import ContractRegistry
from gateway.sandbox import Credentials, Fault
from gateway.sdk import Connector, Inbound, WebhookRejected
from gateway.settings import PROJECT_ROOT
from tests.support.payloads import RETURN_REQUEST
from tests.support.profiles import TRIES, connector_on, delivery

USE = "connectors.carrier.easypost:EasyPostConnector"
SHIPMENTS = "/v2/shipments"
SECRET_ENV = "TEST_EASYPOST_WEBHOOK_SECRET"
_CONTRACTS = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")
AUTHORIZATION = _CONTRACTS.require("return-authorization", "v1")
TRACKING_EVENT = _CONTRACTS.require("tracking-event", "v1")
OPTIONS: dict[str, Any] = {
    "return_sites": {
        "DC-HAM": {
            "name": "Returns desk",
            "company": "Acme Distribution GmbH",
            "street1": "Am Sandtorkai 50",
            "city": "Hamburg",
            "zip": "20457",
            "country": "DE",
        }
    },
    "parcel": {"length": 12, "width": 9, "height": 4, "weight": 64},
    "carrier": "UPS",
    "webhook_secret_env": SECRET_ENV,
}


def authorization(**changes: Any) -> dict[str, Any]:
    """An authorized return (DC-HAM) with the customer's address and contact from the request."""
    payload = copy.deepcopy(AUTHORIZATION.valid_examples[0].payload)
    request = RETURN_REQUEST.valid_examples[0].payload
    payload.update(
        customer={
            "account_number": request["customer"]["account_number"],
            "name": request["customer"]["name"],
        },
        ship_from=copy.deepcopy(request["ship_from"]),
        contact=copy.deepcopy(request["contact"]),
    )
    payload.update(changes)
    return payload


@pytest.fixture
def sandbox() -> EasyPostSandbox:
    return EasyPostSandbox()


@pytest.fixture
async def easypost(sandbox: EasyPostSandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Connector]:
    monkeypatch.setenv(SECRET_ENV, sandbox.webhook_secret)
    async with connector_on(sandbox, USE, name="carrier", options=OPTIONS) as connector:
        yield connector


async def test_an_authorization_buys_one_return_label_and_answers_a_tracking_event(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    emitted = await easypost.handle(message)

    [shipment] = sandbox.state.all("shipments")
    assert shipment["is_return"] is True
    assert shipment["reference"] == message.payload["return_id"]
    assert shipment["to_address"]["city"] == "Hamburg" and shipment["to_address"]["name"] == "Jana Krüger"
    assert shipment["from_address"]["street1"] == "Am Sandtorkai 50"
    assert shipment["selected_rate"]["carrier"] == "UPS"
    assert sandbox.state.count("purchases") == 1
    assert emitted is not None
    [event] = emitted
    assert event.message_type == "tracking-event.v1"
    assert TRACKING_EVENT.violations(event.payload) == []
    assert event.payload["status"] == "pre_transit"
    assert event.payload["tracking_code"] == shipment["tracking_code"]
    assert event.payload["event_id"] == f"{shipment['id']}.label"
    assert event.payload["return_id"] == message.payload["return_id"]


async def test_a_repeat_finds_the_shipment_by_reference_and_buys_nothing_more(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    first = await easypost.handle(message)
    again = await easypost.handle(message)

    assert sandbox.state.count("shipments") == 1 and sandbox.state.count("purchases") == 1
    assert len(sandbox.state.requests_to("POST", SHIPMENTS)) == 2  # one create, one buy
    assert first is not None and again is not None
    assert first[0].message_id == again[0].message_id and first[0].payload == again[0].payload


async def test_a_lost_buy_reply_is_retried_without_a_second_label(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="POST", path=f"{SHIPMENTS}/shp_"))
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await easypost.handle(message)
    # The fault answered before the sandbox bought: the retry finds the shipment unbought and buys it.
    emitted = await easypost.handle(message)
    assert emitted is not None
    assert sandbox.state.count("shipments") == 1 and sandbox.state.count("purchases") == 1


async def test_a_buy_that_took_effect_but_lost_its_reply_is_not_repeated(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    sandbox.state.faults.append(Fault(status=None, malformed=True, method="POST", path=f"{SHIPMENTS}/shp_"))
    with pytest.raises(RetryableDeliveryFailure, match="not JSON"):
        await easypost.handle(message)
    [shipment] = sandbox.state.all("shipments")
    stale = copy.deepcopy(shipment)  # the shipment as the connector last read it: unbought
    sandbox._buy(shipment["id"], {"rate": {"id": shipment["rates"][0]["id"]}})  # the purchase that did land

    emitted = await easypost.handle(message)  # finds it bought by its reference
    assert emitted is not None and emitted[0].payload["tracking_code"] == shipment["tracking_code"]
    bought = await easypost._buy(stale)  # type: ignore[attr-defined]  # EasyPost refuses: read, not rebought
    assert bought["tracking_code"] == shipment["tracking_code"]
    assert sandbox.state.count("shipments") == 1 and sandbox.state.count("purchases") == 1


async def test_a_rejected_authorization_is_acknowledged_without_a_call(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    rejected = copy.deepcopy(AUTHORIZATION.valid_examples[2].payload)
    assert rejected["decision"] == "rejected"
    assert await easypost.handle(delivery("return-authorization.v1", rejected)) is None
    assert sandbox.state.requests == []


async def test_throttling_is_retryable_with_easyposts_retry_after(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    sandbox.state.faults.append(Fault(status=429, retry_after="7", method="POST", path=SHIPMENTS))
    with pytest.raises(RetryableDeliveryFailure, match="RATE_LIMITED") as caught:
        await easypost.handle(delivery("return-authorization.v1", authorization()))
    assert caught.value.status_code == 429 and caught.value.retry_after == 7
    assert sandbox.state.count("shipments") == 0


async def test_a_server_error_is_retryable_and_the_retry_buys_once(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    message = delivery("return-authorization.v1", authorization())
    sandbox.state.faults.append(Fault(status=503, method="POST", path=f"{SHIPMENTS}/shp_", times=TRIES))
    with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
        await easypost.handle(message)
    await easypost.handle(message)
    assert sandbox.state.count("shipments") == 1 and sandbox.state.count("purchases") == 1


async def test_only_the_buy_is_tried_again_in_process(easypost: Connector, sandbox: EasyPostSandbox) -> None:
    # EasyPost makes a new shipment for every create, but refuses a second buy: only the buy
    # is safe to repeat at once; a failed create goes back to the runtime, which reads first.
    sandbox.state.faults.append(Fault(status=503, method="POST", path=f"{SHIPMENTS}/shp_"))
    message = delivery("return-authorization.v1", authorization())
    await easypost.handle(message)
    assert [s.status for s in sandbox.state.requests_to("POST", f"{SHIPMENTS}/shp_")] == [503, 0]
    assert sandbox.state.count("purchases") == 1

    sandbox.state.faults.append(Fault(status=503, method="POST", path=SHIPMENTS))
    with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
        await easypost.handle(delivery("return-authorization.v1", authorization(return_id="ret_another")))
    creates = [s for s in sandbox.state.requests_to("POST", SHIPMENTS) if not s.path.endswith("/buy")]
    assert [s.status for s in creates] == [0, 503]  # the first return's, then the refused one, once


async def test_a_timeout_is_retryable(sandbox: EasyPostSandbox) -> None:
    async with connector_on(sandbox, USE, name="carrier", options=OPTIONS, timeout_seconds=0.3) as easypost:
        sandbox.state.faults.append(Fault(status=None, delay=1.0, method="POST", path=SHIPMENTS))
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await easypost.handle(delivery("return-authorization.v1", authorization()))


async def test_a_wrong_api_key_is_a_permanent_failure_with_easyposts_message(
    sandbox: EasyPostSandbox,
) -> None:
    sandbox.credentials = Credentials(client_id="EZTK-rotated-key")
    async with connector_on(sandbox, USE, name="carrier", options=OPTIONS) as easypost:
        with pytest.raises(PermanentDeliveryFailure, match="inactive or does not exist") as caught:
            await easypost.handle(delivery("return-authorization.v1", authorization()))
    assert caught.value.status_code == 401 and caught.value.code == "APIKEY.INACTIVE"


async def test_a_return_site_without_an_address_is_refused_before_any_call(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    with pytest.raises(PermanentDeliveryFailure, match="DC-NOWHERE") as caught:
        await easypost.handle(delivery("return-authorization.v1", authorization(return_site="DC-NOWHERE")))
    assert caught.value.code == "UNKNOWN_RETURN_SITE" and sandbox.state.requests == []


async def test_easyposts_field_errors_are_kept(sandbox: EasyPostSandbox) -> None:
    options = copy.deepcopy(OPTIONS)
    del options["return_sites"]["DC-HAM"]["street1"]  # a site configured without its street
    async with connector_on(sandbox, USE, name="carrier", options=options) as easypost:
        with pytest.raises(
            PermanentDeliveryFailure, match=r"from_address\.street1: cannot be blank"
        ) as caught:
            await easypost.handle(delivery("return-authorization.v1", authorization()))
    assert caught.value.code == "SHIPMENT.INVALID_PARAMS" and caught.value.status_code == 422


# -- tracker webhooks -------------------------------------------------------------------
async def _bought(easypost: Connector, sandbox: EasyPostSandbox) -> dict[str, Any]:
    message = delivery("return-authorization.v1", authorization())
    await easypost.handle(message)
    [shipment] = sandbox.state.all("shipments")
    return shipment


@pytest.mark.parametrize("with_reference", [True, False], ids=["reference-in-event", "looked-up"])
async def test_a_signed_tracker_webhook_becomes_a_canonical_tracking_event(
    easypost: Connector, sandbox: EasyPostSandbox, with_reference: bool
) -> None:
    shipment = await _bought(easypost, sandbox)
    body, headers = sandbox.tracker_event(
        shipment["id"],
        "delivered",
        message="Delivered to receiving dock",
        location={"city": "Hamburg", "zip": "20457", "country": "DE"},
        with_reference=with_reference,
    )
    [event] = await easypost.receive(Inbound(headers=headers, body=body))

    assert event.message_type == "tracking-event.v1"
    assert TRACKING_EVENT.violations(event.payload) == []
    assert event.payload["status"] == "delivered"
    assert event.payload["return_id"] == shipment["reference"]
    assert event.payload["tracking_code"] == shipment["tracking_code"]
    assert event.payload["event_id"] == json.loads(body)["id"]
    assert event.payload["location"] == {"city": "Hamburg", "postal_code": "20457", "country": "DE"}


async def test_the_same_webhook_twice_is_the_same_message(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    shipment = await _bought(easypost, sandbox)
    body, headers = sandbox.tracker_event(shipment["id"], "in_transit")
    [first] = await easypost.receive(Inbound(headers=headers, body=body))
    [again] = await easypost.receive(Inbound(headers=headers, body=body))
    assert first.message_id == again.message_id and first.payload == again.payload


async def test_a_bad_or_missing_signature_is_refused_with_401(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    shipment = await _bought(easypost, sandbox)
    body, headers = sandbox.tracker_event(shipment["id"], "delivered")
    tampered = body.replace(b'"delivered"', b'"cancelled"')
    with pytest.raises(WebhookRejected) as caught:
        await easypost.receive(Inbound(headers=headers, body=tampered))
    assert caught.value.status == 401
    with pytest.raises(WebhookRejected) as caught:
        await easypost.receive(Inbound(headers={"Content-Type": "application/json"}, body=body))
    assert caught.value.status == 401


def _signed(sandbox: EasyPostSandbox, body: bytes) -> Inbound:
    import hashlib
    import hmac

    digest = hmac.new(sandbox.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    return Inbound(headers={"X-Hmac-Signature": f"hmac-sha256-hex={digest}"}, body=body)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b'{"object": "Tracker"}',
        b'{"object": "Event", "id": "evt_1", "description": "tracker.updated", "created_at": "x",'
        b' "result": {"object": "Tracker", "tracking_code": "EZ1", "status": "teleported", "carrier": "UPS",'
        b' "shipment_id": "shp_1", "reference": "ret_0b5e7c1d2a3f4e5d6c7b8a9f0e1d2c3b"}}',
        b'{"object": "Event", "id": "evt_2", "description": "tracker.updated", "created_at": "x",'
        b' "result": {"object": "Tracker", "tracking_code": "EZ1", "status": "delivered", "carrier": "UPS"}}',
        b'{"object": "Event", "id": "evt_3", "description": "tracker.updated", "created_at": "x",'
        b' "result": {"object": "Tracker", "tracking_code": "EZ1", "status": "delivered", "carrier": "UPS",'
        b' "shipment_id": "shp_1", "reference": "ret_0b5e7c1d2a3f4e5d6c7b8a9f0e1d2c3b",'
        b' "tracking_details": 1}}',
    ],
    ids=["not-json", "not-an-event", "unknown-status", "no-shipment", "tracking-details-number"],
)
async def test_a_signed_but_unreadable_or_unmappable_webhook_is_refused_with_422(
    easypost: Connector, sandbox: EasyPostSandbox, body: bytes
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        await easypost.receive(_signed(sandbox, body))
    assert caught.value.status == 422


async def test_a_tracker_of_a_shipment_easypost_does_not_know_is_refused_with_422(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    shipment = await _bought(easypost, sandbox)
    body, _ = sandbox.tracker_event(shipment["id"], "in_transit", with_reference=False)
    body = body.replace(shipment["id"].encode(), b"shp_00000000000000000000000000000000")
    with pytest.raises(WebhookRejected) as caught:
        await easypost.receive(_signed(sandbox, body))
    assert caught.value.status == 422


async def test_other_kinds_of_events_are_acknowledged_without_events(
    easypost: Connector, sandbox: EasyPostSandbox
) -> None:
    body = (
        b'{"object": "Event", "id": "evt_3", "description": "batch.updated", "result": {"object": "Batch"}}'
    )
    assert await easypost.receive(_signed(sandbox, body)) == []
