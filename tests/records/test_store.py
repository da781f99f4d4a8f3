"""ReturnStore on the real PostgreSQL: what the record decides when Redis cannot (lost, or
flushed mid-request), and how a request interrupted at any step converges on one return."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.auth import Principal
from gateway.database import open_pool
from gateway.errors import ContractViolation, DuplicateReturn, IdempotencyKeyInFlight, NotFound
from gateway.records import (
    Reservation,
    ReturnRecord,
    ReturnRequest,
    ReturnStore,
    StoredAnswer,
    import_from_redis,
    key_digest,
)
from gateway.settings import Settings
from tests.support.payloads import return_request
from tests.support.record_reads import lines_of, returns_of


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(settings.database, max_size=4)
    yield opened
    await opened.close()


@pytest.fixture
def partner() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(pool: AsyncConnectionPool, settings: Settings) -> ReturnStore:
    return ReturnStore(pool, settings)


def _request(partner: str, payload: dict[str, object], key: str | None = None) -> ReturnRequest:
    """An attempt: fresh ids and token, as the Redis claim hands them out."""
    return ReturnRequest(
        partner=partner,
        key=key or uuid.uuid4().hex,
        fingerprint=str(hash(json.dumps(payload, sort_keys=True))),
        external_id=str(payload["external_id"]),
        return_id=f"ret_{uuid.uuid4().hex}",
        message_id=f"msg_{uuid.uuid4().hex}",
        token=f"msg_{uuid.uuid4().hex}",
        contract="return-request",
        contract_version="v1",
        body=json.dumps(payload).encode(),
    )


def _again(request: ReturnRequest) -> ReturnRequest:
    """The same request retried: new ids from Redis (which may have forgotten), a new token."""
    return msgspec.structs.replace(
        request,
        return_id=f"ret_{uuid.uuid4().hex}",
        message_id=f"msg_{uuid.uuid4().hex}",
        token=f"msg_{uuid.uuid4().hex}",
    )


def _principal(partner: str) -> Principal:
    return Principal(partner=partner, key_id="0" * 12, scopes=frozenset(), rate_limit=1)


def _answer(reserved: Reservation) -> StoredAnswer:
    return StoredAnswer(
        reserved.return_id, 202, f'{{"id": "{reserved.return_id}"}}'.encode(), {"Location": "x"}
    )


async def test_reserved_is_not_visible_until_confirmed(store: ReturnStore, partner: str) -> None:
    request = _request(partner, return_request())
    reserved = await store.reserve(request)
    assert isinstance(reserved, Reservation) and reserved.return_id == request.return_id
    with pytest.raises(NotFound):
        await store.visible_to(_principal(partner), reserved.return_id)
    assert await store.holder(partner, request.external_id) is None

    assert await store.confirm(request, reserved, _answer(reserved))
    record = await store.visible_to(_principal(partner), reserved.return_id)
    assert record.message_id == request.message_id and record.status == "requested"
    assert await store.holder(partner, request.external_id) == reserved.return_id
    with pytest.raises(NotFound):  # another partner's is not there
        await store.visible_to(_principal("someone-else"), reserved.return_id)


async def test_while_in_flight_the_key_and_the_external_id_are_held(store: ReturnStore, partner: str) -> None:
    payload = return_request()
    request = _request(partner, payload)
    assert isinstance(await store.reserve(request), Reservation)
    with pytest.raises(IdempotencyKeyInFlight):  # Redis forgot the claim: the record remembers
        await store.reserve(_again(request))
    with pytest.raises(DuplicateReturn):  # another key, the same external id
        await store.reserve(_request(partner, payload))


async def test_a_crash_after_the_publish_converges_on_the_same_ids(
    store: ReturnStore, partner: str, pool: AsyncConnectionPool, settings: Settings
) -> None:
    """Reserved and published, then the process died before the confirm: once the lease ends, a
    retry (Redis forgot everything: fresh ids) takes over the first attempt's ids, so its publish
    is a duplicate consumers drop, and the answer is one return."""
    short = ReturnStore(pool, dataclasses.replace(settings, idempotency_lease_seconds=0))
    request = _request(partner, return_request())
    first = await short.reserve(request)
    assert isinstance(first, Reservation)
    retry = _again(request)
    taken = await short.reserve(retry)
    assert isinstance(taken, Reservation)
    assert (taken.return_id, taken.message_id) == (request.return_id, request.message_id)
    assert not await short.confirm(request, first, _answer(first))  # the dead attempt's confirm: too late
    assert await short.confirm(retry, taken, _answer(taken))
    replayed = await short.reserve(_again(request))
    assert replayed == _answer(taken)
    assert len(await returns_of(settings.database, partner, request.external_id)) == 1


async def test_a_failed_publish_frees_the_external_id_and_the_next_request_adopts_its_return(
    store: ReturnStore, partner: str, settings: Settings
) -> None:
    payload = return_request()
    failed = _request(partner, payload)
    reserved = await store.reserve(failed)
    assert isinstance(reserved, Reservation)
    await store.release(failed)

    changed = {**payload, "reason_code": "wrong_item"}
    other = _request(partner, changed)  # another key, another payload, the same external id
    adopted = await store.reserve(other)
    assert isinstance(adopted, Reservation)
    # Its ids are the failed attempt's: had that publish reached the broker after all, both are
    # one message to consumers, and one return.
    assert (adopted.return_id, adopted.message_id) == (failed.return_id, failed.message_id)
    assert await store.confirm(other, adopted, _answer(adopted))
    record = await store.get(adopted.return_id)
    assert record is not None and msgspec.json.decode(record.request)["reason_code"] == "wrong_item"
    assert len(await lines_of(settings.database, adopted.return_id)) == len(changed["lines"])

    retried = await store.reserve(_again(failed))  # the failed key, retried: the return is taken
    assert isinstance(retried, Reservation) and retried.return_id == adopted.return_id


async def test_concurrent_keys_for_one_external_id_make_one_return(store: ReturnStore, partner: str) -> None:
    payload = return_request()
    outcomes = await asyncio.gather(
        *(store.reserve(_request(partner, payload)) for _ in range(6)), return_exceptions=True
    )
    reserved = [o for o in outcomes if isinstance(o, Reservation)]
    assert len(reserved) == 1, outcomes
    assert all(isinstance(o, DuplicateReturn) for o in outcomes if o not in reserved)


async def test_a_value_the_record_cannot_keep_is_a_422(store: ReturnStore, partner: str) -> None:
    with pytest.raises(ContractViolation):
        await store.reserve(_request(partner, return_request(requested_date="2026-02-30")))
    with pytest.raises(ContractViolation):
        await store.reserve(_request(partner, return_request(notes="nul \u0000 here")))
    request = _request(partner, return_request())  # the key refused is not held
    assert isinstance(await store.reserve(request), Reservation)


async def test_import_from_redis_copies_returns_and_answers_once(
    store: ReturnStore, pool: AsyncConnectionPool, redis: aioredis.Redis, settings: Settings, partner: str
) -> None:
    payload = return_request()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    record = ReturnRecord(
        id=f"ret_{uuid.uuid4().hex}",
        partner=partner,
        external_id=str(payload["external_id"]),
        status="requested",
        contract="return-request",
        contract_version="v1",
        accepted_at=now,
        updated_at=now,
        message_id=f"msg_{uuid.uuid4().hex}",
        request=msgspec.Raw(msgspec.json.encode(payload)),
    )
    # The Redis format the record replaced (gateway.storage.keys: return, idem).
    await redis.set(settings.key("return", record.id), msgspec.json.encode(record))
    request = _request(partner, payload)
    body = b'{"id": "%s"}' % record.id.encode()
    await redis.hset(
        settings.key("idem", partner, key_digest(request.key)),
        mapping={
            "state": "done",
            "fingerprint": request.fingerprint,
            "return_id": record.id,
            "message_id": record.message_id,
            "status": 202,
            "body": body,
            "headers": json.dumps({"Location": f"/v1/returns/{record.id}"}),
        },
    )
    await redis.hset(
        settings.key("idem", partner, "0" * 64), mapping={"state": "in_flight", "fingerprint": "x"}
    )

    assert await import_from_redis(redis, settings, pool) == 2
    assert await import_from_redis(redis, settings, pool) == 0  # idempotent

    visible = await store.visible_to(_principal(partner), record.id)
    assert (visible.message_id, visible.accepted_at, visible.updated_at) == (record.message_id, now, now)
    assert msgspec.json.decode(visible.request) == payload
    assert len(await lines_of(settings.database, record.id)) == len(payload["lines"])
    replay = await store.reserve(_again(request))  # Redis flushed afterwards: the record answers
    assert replay == StoredAnswer(record.id, 202, body, {"Location": f"/v1/returns/{record.id}"})
    with pytest.raises(DuplicateReturn):
        await store.reserve(_request(partner, payload))


async def test_concurrent_requests_share_statements_and_a_bad_value_fails_only_its_own(
    store: ReturnStore, partner: str, settings: Settings
) -> None:
    requests = [_request(partner, return_request()) for _ in range(8)]
    requests[3] = _request(partner, return_request(requested_date="2026-02-30"))
    outcomes = await asyncio.gather(*(store.reserve(r) for r in requests), return_exceptions=True)
    assert isinstance(outcomes[3], ContractViolation)
    reserved = [(r, o) for r, o in zip(requests, outcomes, strict=True) if isinstance(o, Reservation)]
    assert len(reserved) == 7
    confirmed = await asyncio.gather(*(store.confirm(r, o, _answer(o)) for r, o in reserved))
    assert confirmed == [True] * 7
    for request, reservation in reserved:
        assert reservation.return_id == request.return_id
        assert await store.holder(partner, request.external_id) == request.return_id
        assert len(await lines_of(settings.database, request.return_id)) >= 1
