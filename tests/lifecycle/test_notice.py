"""The lifecycle's notice of a dead letter, as the platform's runtimes are given it."""

from __future__ import annotations

import datetime as dt
import uuid

from gateway.errors import PermanentDeliveryFailure
from gateway.lifecycle import delivery_failed_notice
from gateway.runtime import DeadLettered
from gateway.sdk import Delivery

AT = dt.datetime(2024, 3, 20, 10, 0, tzinfo=dt.UTC)


def dead(message_type: str = "credit-memo.v1", correlation_id: str | None = None) -> DeadLettered:
    contract, _, version = message_type.rpartition(".")
    return DeadLettered(
        connector="erp",
        delivery=Delivery(
            message_id="msg_credit",
            correlation_id=correlation_id or f"ret_{uuid.uuid4().hex}",
            contract=contract,
            version=version,
            partner="acme",
            occurred_at=AT,
            payload={},
        ),
        failure=PermanentDeliveryFailure("no invoice to credit", status_code=400),
        attempts=3,
        at=AT,
    )


def test_a_dead_letter_about_a_return_is_announced_as_delivery_failed() -> None:
    letter = dead()
    event = delivery_failed_notice(letter)
    assert event is not None
    assert event.message_type == "delivery-failed.v1"
    assert event.message_id.startswith("msg_credit.erp.dead.")
    assert event.payload == {
        "return_id": letter.delivery.correlation_id,
        "connector": "erp",
        "message_id": "msg_credit",
        "message_type": "credit-memo.v1",
        "error": "PermanentDeliveryFailure",
        "detail": "no invoice to credit",
        "attempts": 3,
        "dead_lettered_at": "2024-03-20T10:00:00Z",
        "status_code": 400,
    }


def test_no_notice_without_a_return_nor_of_a_notice() -> None:
    assert delivery_failed_notice(dead(correlation_id="order-17")) is None
    assert delivery_failed_notice(dead("delivery-failed.v1")) is None
