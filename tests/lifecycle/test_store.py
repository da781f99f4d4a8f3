"""The lifecycle's store on the real PostgreSQL: one transaction per event, events about one
return one after the other, other returns never waiting for them, a redelivery changing nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from gateway.errors import DatabaseUnavailable, RetryableDeliveryFailure
from gateway.lifecycle import LifecycleStore, ReturnState, TimelineEntry
from gateway.lifecycle._store import Change, Opening
from gateway.settings import Settings
from tests.support.payloads import return_request

ACTOR = {"type": "system", "id": "test"}


@pytest.fixture
def store(database: AsyncConnectionPool, settings: Settings) -> LifecycleStore:
    return LifecycleStore(database, settings)


def _open(return_id: str, partner: str) -> Any:
    """A decide that opens the return (requested), as the orchestrator's ``_open`` does."""

    def decide(state: ReturnState | None, returned: dict[str, float]) -> Change:
        assert state is None
        now = dt.datetime.now(dt.UTC)
        request = return_request()
        opened = ReturnState(
            return_id=return_id,
            partner=partner,
            external_id=request["external_id"],
            channel=request["channel"],
            status="requested",
            created_at=now,
            updated_at=now,
            policy="p",
            policy_version="1",
            request=request,
        )
        return Change(
            state=opened,
            timeline=[
                TimelineEntry(
                    at=now, action="status_changed", actor=ACTOR, message_id="m0", to_status="requested"
                )
            ],
            opening=Opening.of_request(
                request,
                contract="return-request",
                version="v1",
                message_id=f"msg_{uuid.uuid4().hex}",
                accepted_at=now,
            ),
        )

    return decide


def _count(message_id: str, emit: bool = True) -> Any:
    """A decide that counts the events applied (in ``approvers_needed``) and notes which it was."""

    def decide(state: ReturnState | None, returned: dict[str, float]) -> Change:
        assert state is not None
        seen = state.approvers_needed
        state.approvers_needed = seen + 1
        entry = TimelineEntry(
            at=dt.datetime.now(dt.UTC), action="counted", actor=ACTOR, message_id=message_id, detail=str(seen)
        )
        emitted = [
            {
                "contract": "note",
                "version": "v1",
                "payload": {"n": seen},
                "message_id": f"{state.return_id}.{message_id}.out",
            }
        ]
        return Change(state=state, timeline=[entry], emitted=emitted if emit else [])

    return decide


async def opened(store: LifecycleStore) -> tuple[str, str]:
    return_id, partner = f"ret_{uuid.uuid4().hex}", f"p-{uuid.uuid4().hex[:8]}"
    assert await store.apply(
        return_id, "m0", _open(return_id, partner), basis_of=lambda s: None, partner=partner
    )
    return return_id, partner


def _none(state: ReturnState) -> None:
    return None


async def test_events_about_one_return_apply_one_after_the_other(store: LifecycleStore) -> None:
    return_id, partner = await opened(store)
    await asyncio.gather(
        *(
            store.apply(return_id, f"m{i}", _count(f"m{i}"), basis_of=_none, partner=partner)
            for i in range(1, 13)
        )
    )
    state = await store.get(return_id)
    assert state is not None and state.approvers_needed == 12  # no update lost
    counted = [e.detail for e in await store.timeline(return_id) if e.action == "counted"]
    assert counted == [str(i) for i in range(12)]  # each saw the one before it


async def test_an_event_on_a_locked_return_does_not_hold_up_another_return(
    store: LifecycleStore, database: AsyncConnectionPool
) -> None:
    busy, partner = await opened(store)
    free, other = await opened(store)
    async with database.connection() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM returns WHERE id = %s FOR UPDATE", (busy,))  # as a long event
        waiting = asyncio.create_task(store.apply(busy, "m1", _count("m1"), basis_of=_none, partner=partner))
        applied = await asyncio.wait_for(
            store.apply(free, "m1", _count("m1"), basis_of=_none, partner=other), timeout=5
        )
        assert applied
        done, _ = await asyncio.wait({waiting}, timeout=0.5)  # a deadline, not a pause: it must not finish
        assert not done, "the event on the locked return went through the lock"
    assert await asyncio.wait_for(waiting, timeout=5)  # the lock released: it applies


async def test_a_redelivered_event_finds_its_id_applied_and_changes_nothing(
    store: LifecycleStore, database: AsyncConnectionPool
) -> None:
    return_id, partner = await opened(store)
    assert await store.apply(return_id, "m1", _count("m1"), basis_of=_none, partner=partner)
    timeline = await store.timeline(return_id)
    assert not await store.apply(return_id, "m1", _count("m1"), basis_of=_none, partner=partner)
    assert await store.timeline(return_id) == timeline
    state = await store.get(return_id)
    assert state is not None and state.approvers_needed == 1
    async with database.connection() as conn:
        rows = await (
            await conn.execute("SELECT message_id FROM outbox WHERE return_id = %s", (return_id,))
        ).fetchall()
    assert [r[0] for r in rows] == [f"{return_id}.m1.out"]


async def test_the_timeline_is_append_only_for_the_application_role(
    store: LifecycleStore, database: AsyncConnectionPool
) -> None:
    await opened(store)
    async with database.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE returns_gateway_app")
        denied = await (
            await conn.execute(
                "SELECT has_table_privilege('timeline_entries', 'UPDATE'), "
                "has_table_privilege('timeline_entries', 'DELETE'), has_table_privilege('outbox', 'UPDATE')"
            )
        ).fetchone()
    assert denied == (False, False, True)


async def test_a_return_the_intake_recorded_is_opened_in_its_own_row(
    store: LifecycleStore, database: AsyncConnectionPool
) -> None:
    return_id, partner = f"ret_{uuid.uuid4().hex}", f"p-{uuid.uuid4().hex[:8]}"
    async with database.connection() as conn, conn.transaction():  # as the intake records it
        await conn.execute("INSERT INTO partners (id) VALUES (%s)", (partner,))
        await conn.execute(
            "INSERT INTO returns (id, partner_id, external_id, channel, customer_account, reason_code, "
            "requested_date, contract, contract_version, message_id, request, accepted_at, updated_at, "
            "status_since) VALUES (%s, %s, 'X-1', 'portal', 'C1', 'defective', '2024-02-20', "
            "'return-request', 'v1', %s, '{}', now(), now(), now())",
            (return_id, partner, f"msg_{uuid.uuid4().hex}"),
        )
    assert await store.get(return_id) is None  # recorded, not opened by the lifecycle yet
    assert await store.apply(return_id, "m0", _open(return_id, partner), basis_of=_none, partner=partner)
    state = await store.get(return_id)
    assert state is not None and state.status == "requested" and state.policy == "p"
    async with database.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT external_id, channel, request FROM returns WHERE id = %s", (return_id,)
            )
        ).fetchone()
    assert row == ("X-1", "portal", {})  # the intake's columns stay the intake's


async def test_a_database_away_is_unavailable_to_readers_and_retryable_to_the_lifecycle(
    settings: Settings,
) -> None:
    away = dataclasses.replace(settings, database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    pool: AsyncConnectionPool = AsyncConnectionPool(
        away.database, min_size=0, max_size=1, timeout=0.5, open=False, kwargs={"connect_timeout": 1}
    )
    await pool.open(wait=False)
    try:
        store = LifecycleStore(pool, away)
        with pytest.raises(DatabaseUnavailable):
            await store.get(f"ret_{uuid.uuid4().hex}")
        with pytest.raises(RetryableDeliveryFailure):
            await store.apply(f"ret_{uuid.uuid4().hex}", "m1", _count("m1"), basis_of=_none, partner="p")
    finally:
        await pool.close()


async def test_returns_against_one_document_count_its_quantities_one_after_the_other(
    store: LifecycleStore, database: AsyncConnectionPool
) -> None:
    partner = f"p-{uuid.uuid4().hex[:8]}"
    basis = {"kind": "invoice", "number": uuid.uuid4().hex[:10]}
    return_ids = []
    for _ in range(8):
        return_id = f"ret_{uuid.uuid4().hex}"
        await store.apply(return_id, "m0", _open(return_id, partner), basis_of=_none, partner=partner)
        return_ids.append(return_id)

    def take_one(state: ReturnState | None, returned: dict[str, float]) -> Change:
        assert state is not None
        state.basis = basis
        entry = TimelineEntry(
            at=dt.datetime.now(dt.UTC),
            action="counted",
            actor=ACTOR,
            message_id="take",
            detail=str(returned.get("SKU-1", 0.0)),
        )
        return Change(state=state, timeline=[entry], returned={"SKU-1": 1.0})

    await asyncio.gather(
        *(store.apply(r, "take", take_one, basis_of=lambda s: basis, partner=partner) for r in return_ids)
    )
    seen = []
    for r in return_ids:
        seen += [float(e.detail or "") for e in await store.timeline(r) if e.action == "counted"]
    seen.sort()
    assert seen == [float(n) for n in range(8)]  # each saw what those before it took
    async with database.connection() as conn:
        [(total,)] = await (
            await conn.execute(
                "SELECT quantity FROM returned_quantities WHERE partner_id = %s AND document_number = %s",
                (partner, basis["number"]),
            )
        ).fetchall()
    assert float(total) == 8
