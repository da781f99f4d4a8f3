"""The lifecycle's notices of a dead letter and of its replay, as the platform's runtimes are
given them, and the action events the dead-letter desk publishes."""

from __future__ import annotations

import datetime as dt
import uuid

from gateway.errors import PermanentDeliveryFailure
from gateway.lifecycle import dead_letter_action, delivery_failed_notice, replay_delivered_notice
from gateway.registry import ContractRegistry
from gateway.runtime import DeadLettered, ReplayDelivered
from gateway.sdk import Delivery
from gateway.settings import PROJECT_ROOT

AT = dt.datetime(2024, 3, 20, 10, 0, tzinfo=dt.UTC)
_REGISTRY = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")


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
    assert delivery_failed_notice(dead("dead-letter-action.v1")) is None


def replayed(message_type: str = "return-request.v1", correlation_id: str | None = None) -> ReplayDelivered:
    contract, _, version = message_type.rpartition(".")
    return ReplayDelivered(
        connector="crm",
        delivery=Delivery(
            message_id="msg_case.fix-0c5e1a9b7d3f2e4a6b8c",
            correlation_id=correlation_id or f"ret_{uuid.uuid4().hex}",
            contract=contract,
            version=version,
            partner="acme",
            occurred_at=AT,
            payload={},
        ),
        replay_of="msg_case",
        at=AT,
    )


def test_a_replayed_dead_letter_that_went_through_is_announced_as_delivered() -> None:
    copy = replayed()
    event = replay_delivered_notice(copy)
    assert event is not None and event.message_type == "dead-letter-action.v1"
    assert event.message_id == "msg_case.fix-0c5e1a9b7d3f2e4a6b8c.crm.delivered"  # once per copy
    assert event.return_id == copy.delivery.correlation_id
    assert event.payload == {
        "return_id": copy.delivery.correlation_id,
        "connector": "crm",
        "message_id": "msg_case",
        "message_type": "return-request.v1",
        "action": "delivered",
        "replayed_as": "msg_case.fix-0c5e1a9b7d3f2e4a6b8c",
        "actor": {"type": "system", "id": "crm"},
        "at": "2024-03-20T10:00:00Z",
    }
    assert _REGISTRY.require("dead-letter-action", "v1").violations(event.payload) == []


def test_no_action_without_a_return_nor_about_an_announcement() -> None:
    assert replay_delivered_notice(replayed(correlation_id="order-17")) is None
    for announcement in ("delivery-failed.v1", "dead-letter-action.v1"):
        assert replay_delivered_notice(replayed(announcement)) is None


def test_what_an_operator_did_meets_the_contract() -> None:
    return_id = f"ret_{uuid.uuid4().hex}"
    operator = {"type": "user", "id": "key:4be0c2a91f7d"}
    done = {
        "replayed": {"replayed_as": "msg_1", "payload_corrected": False, "note": "fixed"},
        "discarded": {"reason": "posted by hand"},
    }
    ids = set()
    for action, extra in done.items():
        event = dead_letter_action(
            return_id=return_id,
            connector="erp",
            message_id="msg_1",
            message_type="credit-memo.v1",
            action=action,  # type: ignore[arg-type]
            actor=operator,
            at=AT,
            **extra,  # type: ignore[arg-type]
        )
        assert event is not None and event.return_id == return_id
        assert _REGISTRY.require("dead-letter-action", "v1").violations(event.payload) == []
        ids.add(event.message_id)
    assert len(ids) == 2
