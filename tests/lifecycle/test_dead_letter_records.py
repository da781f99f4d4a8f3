"""A return's dead-letter records come out the same whatever order their events are applied in:
the runtime's delivery-failed, the desk's replay or discard, the copy's delivery."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.lifecycle._dead_letters import DeadLetterRecord, record_failure, record_replay, resolve

T0 = dt.datetime(2024, 3, 20, 10, 0, tzinfo=dt.UTC)
OPERATOR = {"type": "user", "id": "key:ops"}


def failed(message_id: str, minutes: int = 0) -> dict[str, Any]:
    return {
        "connector": "crm",
        "message_id": message_id,
        "message_type": "return-request.v1",
        "error": "PermanentDeliveryFailure",
        "detail": "POST /cases answered 400: no account",
        "status_code": 400,
        "dead_lettered_at": (T0 + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
    }


def close(records: list[DeadLetterRecord], *ids: str, minutes: int, how: str = "delivered") -> None:
    at = T0 + dt.timedelta(minutes=minutes)
    resolve(records, "crm", ids, message_type="return-request.v1", resolution=how, by=OPERATOR, at=at)


def opened(records: list[DeadLetterRecord]) -> list[str]:
    return [r.message_id for r in records if r.is_open]


def test_a_dead_letter_is_open_until_delivered_and_then_closed_by_its_deliverer() -> None:
    records: list[DeadLetterRecord] = []
    record = record_failure(records, failed("m"))
    assert record is not None and record.dead_lettered_at == T0 and record.status_code == 400
    record_replay(records, "crm", "m", "m", T0 + dt.timedelta(minutes=5))
    assert opened(records) == ["m"] and records[0].replayed_at is not None  # replayed, not delivered yet
    close(records, "m", minutes=6)
    assert opened(records) == [] and records[0].resolution == "delivered"


def test_an_outcome_that_overtook_its_failure_leaves_nothing_open() -> None:
    records: list[DeadLetterRecord] = []
    close(records, "m", minutes=5, how="discarded")  # the discard's event came first
    assert record_failure(records, failed("m")) is None  # died before it was discarded: stale
    assert opened(records) == []
    assert record_failure(records, failed("m", minutes=9)) is not None  # a new death reopens it
    assert opened(records) == ["m"]


def test_a_replay_that_dies_again_is_the_same_open_exception() -> None:
    records: list[DeadLetterRecord] = []
    record_failure(records, failed("m"))
    record_replay(records, "crm", "m", "m", T0 + dt.timedelta(minutes=5))
    again = record_failure(records, failed("m", minutes=6))
    assert again is not None and again.replayed_at is None and len(records) == 1


def test_a_corrected_copy_that_dies_again_carries_the_exception_on_under_its_own_id() -> None:
    for desk_first in (True, False):
        records: list[DeadLetterRecord] = []
        record_failure(records, failed("m"))
        if desk_first:
            record_replay(records, "crm", "m", "m.fix-1", T0 + dt.timedelta(minutes=5))
            record_failure(records, failed("m.fix-1", minutes=6))
        else:  # the copy's death came before the desk's word that it was replayed
            record_failure(records, failed("m.fix-1", minutes=6))
            record_replay(records, "crm", "m", "m.fix-1", T0 + dt.timedelta(minutes=5))
        assert opened(records) == ["m.fix-1"], desk_first
        record_replay(records, "crm", "m.fix-1", "m.fix-2", T0 + dt.timedelta(minutes=8))
        close(records, "m.fix-1", "m.fix-2", minutes=9)  # the second copy went through
        assert opened(records) == [], desk_first


def test_only_the_last_closed_records_are_kept() -> None:
    records: list[DeadLetterRecord] = []
    record_failure(records, failed("still-open"))
    for n in range(30):
        record_failure(records, failed(f"m{n}"))
        close(records, f"m{n}", minutes=1)
    assert opened(records) == ["still-open"] and len(records) == 21
