"""Accepted returns in PostgreSQL: the row a request reserves before it is published, and what
the gateway reads back.

A return request goes through two steps here, around the broker's confirm:

1. :meth:`ReturnStore.reserve`, before the publish: the ``idempotency_keys`` row of the
   request's key (``in_flight``, with a lease) and the ``returns`` row, not yet
   ``published_at``. The database decides what Redis (the fast path) could have forgotten: the
   same key already answered (replayed from here), used with another payload (422), still in
   flight (409), or the external id held by another return (409). Both uniques, (partner, key)
   and (partner, external id), are the last line of defence.
2. :meth:`ReturnStore.confirm`, after the broker confirmed: ``published_at``, the lines, and the
   key ``done`` with the response to replay; one statement.

A crash between the two leaves the key in flight: a retry once its lease ends takes it over with
the same return and message ids, publishes again (consumers deduplicate by message id) and
confirms. A publish that failed (:meth:`ReturnStore.release`) frees the key; its return row
stays unpublished (the application role never deletes returns), invisible to the API, and the
next request for that external id adopts it, ids included, so a publish whose confirm was lost
and its retry are still one return.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from gateway.auth import Principal
from gateway.database import database_errors
from gateway.database.tables import IDEMPOTENCY_KEYS, PARTNERS, RETURN_LINES, RETURNS
from gateway.errors import (
    ContractViolation,
    DatabaseUnavailable,
    DuplicateReturn,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    NotFound,
    Violation,
)
from gateway.records._batching import StatementBatcher
from gateway.records._returns import INITIAL_STATUS, ReturnRecord
from gateway.settings import Settings

_MAX_ID_LENGTH = 64
_BATCHES_IN_FLIGHT = 3
"""Statements of each kind on their way at once: a confirm waits for its fsync, and the calls
made meanwhile need not wait for it to start theirs (PostgreSQL commits them together)."""


class Reservation(msgspec.Struct, frozen=True):
    """The request holds its key and its return row: it may publish under these ids."""

    return_id: str
    message_id: str
    accepted_at: dt.datetime


class StoredAnswer(msgspec.Struct, frozen=True):
    """The response the key was first answered with, to replay."""

    return_id: str
    status_code: int
    body: bytes
    headers: dict[str, str]


_Reserved = tuple[bool, dt.datetime | None]
"""Per request of a batch: whether its key was claimed, and when its return row was accepted."""


class _Confirmation(msgspec.Struct, frozen=True):
    request: ReturnRequest
    reservation: Reservation
    answer: StoredAnswer


class ReturnRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`ReturnStore.reserve` needs of one request."""

    partner: str
    key: str
    fingerprint: str
    external_id: str
    return_id: str
    message_id: str
    token: str
    """Tells this attempt apart from earlier ones on the same key (a fresh id per attempt)."""
    contract: str
    contract_version: str
    body: bytes
    """The request as accepted (a JSON object that met its contract)."""


# Columns of ``returns`` the intake writes, derived in SQL from the request (``%(request)s``).
_INTAKE_COLUMNS = """
    external_id = %(external_id)s, channel = %(request)s ->> 'channel',
    customer_account = %(request)s -> 'customer' ->> 'account_number',
    customer_name = %(request)s -> 'customer' ->> 'name',
    reason_code = %(request)s ->> 'reason_code',
    requested_date = (%(request)s ->> 'requested_date')::date,
    contract = %(contract)s, contract_version = %(contract_version)s, request = %(request)s,
    accepted_at = now(), updated_at = now(), status_since = now()
"""

_RESERVE_MANY = f"""
WITH input AS (
    SELECT partner, key, fingerprint, external_id, return_id, message_id, token, request::jsonb AS request,
        contract, contract_version, n
    FROM unnest(%(partner)s::text[], %(key)s::text[], %(fingerprint)s::text[], %(external_id)s::text[],
        %(return_id)s::text[], %(message_id)s::text[], %(token)s::text[], %(request)s::text[],
        %(contract)s::text[], %(contract_version)s::text[])
        WITH ORDINALITY AS i(partner, key, fingerprint, external_id, return_id, message_id, token, request,
            contract, contract_version, n)
), partner AS (
    INSERT INTO {PARTNERS} (id) SELECT DISTINCT partner FROM input ON CONFLICT DO NOTHING
), claim AS (
    INSERT INTO {IDEMPOTENCY_KEYS}
        (partner_id, key, fingerprint, state, return_id, message_id, token, lease_until, expires_at)
    SELECT partner, key, fingerprint, 'in_flight', return_id, message_id, token,
        now() + make_interval(secs => %(lease)s), now() + make_interval(secs => %(ttl)s)
    FROM input ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING token
), reserved AS (
    INSERT INTO {RETURNS} (id, partner_id, external_id, channel, customer_account, customer_name,
        reason_code, requested_date, contract, contract_version, message_id, request, accepted_at,
        updated_at, status_since)
    SELECT return_id, partner, external_id, request ->> 'channel',
        request -> 'customer' ->> 'account_number', request -> 'customer' ->> 'name',
        request ->> 'reason_code', (request ->> 'requested_date')::date, contract,
        contract_version, message_id, request, now(), now(), now()
    FROM input JOIN claim USING (token) ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING id, accepted_at
)
SELECT claim.token IS NOT NULL, reserved.accepted_at
FROM input LEFT JOIN claim USING (token) LEFT JOIN reserved ON reserved.id = input.return_id
ORDER BY n
"""
"""The fast path of :meth:`ReturnStore.reserve` for a batch of requests: per request, in order,
whether its key was claimed and, if its return row went in too, when it was accepted."""

LINES_FROM = f"""INSERT INTO {RETURN_LINES} (return_id, line_number, sku, description, quantity,
        unit_of_measure, unit_price, currency, reason_code, order_line_number, serial_numbers, lot_numbers)
    SELECT {{source}}.id, (l ->> 'line_number')::numeric::integer, l ->> 'sku', l ->> 'description',
        (l ->> 'quantity')::numeric, l ->> 'unit_of_measure', (l -> 'unit_price' ->> 'amount')::numeric,
        l -> 'unit_price' ->> 'currency', l ->> 'reason_code', (l ->> 'order_line_number')::numeric::integer,
        ARRAY(SELECT jsonb_array_elements_text(coalesce(l -> 'serial_numbers', '[]'))),
        ARRAY(SELECT jsonb_array_elements_text(coalesce(l -> 'lot_numbers', '[]')))
    FROM {{source}}, jsonb_array_elements({{source}}.request -> 'lines') AS l
    ON CONFLICT DO NOTHING"""
"""The lines of the returns in ``{source}`` (a CTE or table with ``id`` and ``request``),
written from the request as accepted."""

_CONFIRM_MANY = f"""
WITH input AS (
    SELECT * FROM unnest(%(return_id)s::text[], %(partner)s::text[], %(key)s::text[], %(token)s::text[],
        %(status)s::integer[], %(headers)s::text[], %(body)s::bytea[])
        WITH ORDINALITY AS i(return_id, partner, key, token, status, headers, body, n)
), published AS (
    UPDATE {RETURNS} SET published_at = coalesce(published_at, now())
    FROM (SELECT DISTINCT return_id FROM input) AS confirmed
    WHERE id = confirmed.return_id
    RETURNING id, request
), lines AS (
    {LINES_FROM.format(source="published")}
), done AS (
    UPDATE {IDEMPOTENCY_KEYS} AS k
    SET state = 'done', token = NULL, lease_until = NULL, response_status = input.status,
        response_headers = input.headers::jsonb, response_body = input.body, updated_at = now()
    FROM input
    WHERE k.partner_id = input.partner AND k.key = input.key AND k.token = input.token
    RETURNING input.n
)
SELECT done.n IS NOT NULL FROM input LEFT JOIN done USING (n) ORDER BY n
"""
"""The returns of a batch published (with their lines), their keys done with the answer: per
request, in order, whether its key was still its own."""

_PUT = f"""
WITH partner AS (
    INSERT INTO {PARTNERS} (id) VALUES (%(partner)s) ON CONFLICT DO NOTHING
)
INSERT INTO {RETURNS} (id, partner_id, external_id, channel, customer_account, customer_name,
    reason_code, requested_date, contract, contract_version, message_id, request, accepted_at,
    published_at, updated_at, status_since)
SELECT %(id)s, %(partner)s, %(external_id)s, %(request)s ->> 'channel',
    %(request)s -> 'customer' ->> 'account_number', %(request)s -> 'customer' ->> 'name',
    %(request)s ->> 'reason_code', (%(request)s ->> 'requested_date')::date, %(contract)s,
    %(contract_version)s, %(message_id)s, %(request)s, %(accepted_at)s, %(accepted_at)s,
    %(updated_at)s, %(accepted_at)s
ON CONFLICT DO NOTHING
"""

_PUT_LINES = LINES_FROM.format(source=RETURNS).replace("AS l\n", f"AS l\n    WHERE {RETURNS}.id = %(id)s\n")

_RECORD_COLUMNS = f"""
    SELECT id, partner_id, external_id, status, contract, contract_version, accepted_at, updated_at,
        message_id, request::text AS request
    FROM {RETURNS}
"""


class ReturnStore:
    """Reads and writes accepted returns in PostgreSQL (``returns``, ``return_lines``, and the
    ``idempotency_keys`` of return requests)."""

    def __init__(self, database: AsyncConnectionPool | None, settings: Settings) -> None:
        self._pool = database
        self._settings = settings
        # Concurrent requests share statements, round trips and commits.
        self._reserving: StatementBatcher[ReturnRequest, _Reserved] = StatementBatcher(
            self._reserve_many, in_flight=_BATCHES_IN_FLIGHT
        )
        self._confirming: StatementBatcher[_Confirmation, bool] = StatementBatcher(
            self._confirm_many, in_flight=_BATCHES_IN_FLIGHT
        )

    @property
    def _database(self) -> AsyncConnectionPool:
        if self._pool is None:  # a connector run without one (some tests): say so, retryably
            raise DatabaseUnavailable("no PostgreSQL pool was lent to this process: returns cannot be read")
        return self._pool

    async def put(self, record: ReturnRecord) -> bool:
        """Write an accepted, published return and its lines as they are, unless its id or its
        external id is there already (``False`` then): for imports and tests."""
        params = {
            "id": record.id,
            "partner": record.partner,
            "external_id": record.external_id,
            "request": _json_text(bytes(record.request)),
            "contract": record.contract,
            "contract_version": record.contract_version,
            "message_id": record.message_id,
            "accepted_at": record.accepted_at,
            "updated_at": record.updated_at,
        }
        with database_errors(self._settings.database):
            async with self._database.connection() as connection, connection.transaction():
                cursor = await connection.execute(_PUT, params)
                if not cursor.rowcount:
                    return False
                await connection.execute(_PUT_LINES, {"id": record.id})
        return True

    async def reserve(self, request: ReturnRequest) -> Reservation | StoredAnswer:
        """Hold the request's key and its return row before it is published (see the module's
        notes); a :class:`StoredAnswer` when the key was already answered. Raises 409 (in flight,
        duplicate external id) or 422 (the key used with another payload, a value PostgreSQL
        cannot hold); the ids of the :class:`Reservation` may be an earlier attempt's."""
        try:
            claimed, accepted_at = await self._reserving.submit(request)
            if claimed and accepted_at is not None:  # the common case: one shared statement
                return Reservation(request.return_id, request.message_id, accepted_at)
            # The claim, if the statement made it, is kept: refused below, it is undone.
            with database_errors(self._settings.database):
                async with _autocommit(self._database) as connection:
                    return await self._reserve_slowly(
                        connection, request, self._params(request), fresh=claimed
                    )
        except psycopg.DataError as exc:  # a date that does not exist, a NUL PostgreSQL cannot store
            raise ContractViolation(
                f"the request holds a value the record cannot keep: {exc.diag.message_primary or exc}",
                [Violation("", str(exc.diag.message_primary or exc))],
            ) from exc

    async def _reserve_many(self, requests: Sequence[ReturnRequest]) -> list[_Reserved | BaseException]:
        """:data:`_RESERVE_MANY`, committed without waiting for its WAL to reach the disk, in one
        round trip (pipelined ``BEGIN``, ``SET LOCAL``, the statement, ``COMMIT``).

        Safe because a reservation is only worth keeping once its confirm commits, and that commit
        waits for every WAL record before it, this one included. What a crash of PostgreSQL in
        between loses is a reservation whose confirm then fails (503): the key is still claimed in
        Redis, and its retry reserves again under the same ids. Half the fsyncs of a return.

        A value PostgreSQL refuses fails the statement: each request of the batch is then tried on
        its own, so only the one that holds it hears of it.
        """
        columns = {
            "partner": [r.partner for r in requests],
            "key": [key_digest(r.key) for r in requests],
            "fingerprint": [r.fingerprint for r in requests],
            "external_id": [r.external_id for r in requests],
            "return_id": [r.return_id for r in requests],
            "message_id": [r.message_id for r in requests],
            "token": [r.token for r in requests],
            "request": [r.body.decode() for r in requests],
            "contract": [r.contract for r in requests],
            "contract_version": [r.contract_version for r in requests],
            "lease": self._settings.idempotency_lease_seconds,
            "ttl": self._settings.idempotency_ttl_seconds,
        }
        try:
            with database_errors(self._settings.database):
                async with _autocommit(self._database) as connection:
                    async with connection.pipeline(), connection.transaction():
                        await connection.execute("SET LOCAL synchronous_commit TO OFF")
                        cursor = await connection.execute(_RESERVE_MANY, columns)
                    rows = await cursor.fetchall()
        except psycopg.DataError as exc:
            if len(requests) == 1:
                return [exc]
            return [(await self._reserve_many([request]))[0] for request in requests]
        return [(bool(claimed), None if at is None else _utc(at)) for claimed, at in rows]

    async def _reserve_slowly(
        self,
        connection: psycopg.AsyncConnection[Any],
        request: ReturnRequest,
        params: dict[str, object],
        *,
        fresh: bool,
    ) -> Reservation | StoredAnswer:
        """The key or the external id was there before: decide under row locks."""
        try:
            async with connection.transaction():
                outcome = await self._decide(connection, request, params)
        except BaseException:
            if fresh:  # our own claim of a key nobody had: refused, it goes
                await connection.execute(
                    f"DELETE FROM {IDEMPOTENCY_KEYS} WHERE partner_id = %s AND key = %s AND token = %s",
                    [request.partner, key_digest(request.key), request.token],
                )
            raise
        return outcome

    async def _decide(
        self, connection: psycopg.AsyncConnection[Any], request: ReturnRequest, params: dict[str, object]
    ) -> Reservation | StoredAnswer:
        cursor = connection.cursor(row_factory=dict_row)
        key = await (
            await cursor.execute(
                f"""SELECT *, lease_until > now() AS leased FROM {IDEMPOTENCY_KEYS}
                    WHERE partner_id = %s AND key = %s FOR UPDATE""",
                [request.partner, key_digest(request.key)],
            )
        ).fetchone()
        assert key is not None, "the fast path claimed the key or found it"
        return_id, message_id = request.return_id, request.message_id
        if key["token"] != request.token:
            if key["fingerprint"] != request.fingerprint:
                raise IdempotencyKeyReused(
                    f"idempotency key '{request.key}' was already used with a different payload; "
                    "use a new key"
                )
            if key["state"] == "done":
                return StoredAnswer(
                    key["return_id"],
                    int(key["response_status"]),
                    bytes(key["response_body"]),
                    dict(key["response_headers"]),
                )
            if key["state"] == "in_flight" and key["leased"]:
                raise IdempotencyKeyInFlight(
                    f"a request with idempotency key '{request.key}' is still in progress; retry shortly",
                    headers={"Retry-After": "1"},
                )
            return_id, message_id = key["return_id"], key["message_id"]  # take over, keeping the ids
        held = await (
            await cursor.execute(
                f"""SELECT id, message_id, published_at FROM {RETURNS}
                    WHERE partner_id = %s AND external_id = %s FOR UPDATE""",
                [request.partner, request.external_id],
            )
        ).fetchone()
        if held is not None and held["id"] != return_id:
            if held["published_at"] is not None or await self._owned(cursor, request, held["id"]):
                raise DuplicateReturn(
                    f"external_id '{request.external_id}' was already submitted as return {held['id']}",
                    extensions={"return_id": held["id"]},
                )
            return_id, message_id = held["id"], held["message_id"]  # never published: adopt it
        if held is None:
            exists = await (
                await cursor.execute(
                    f"SELECT published_at FROM {RETURNS} WHERE id = %s FOR UPDATE", [return_id]
                )
            ).fetchone()
            if exists is not None:  # our ids' row, left under another external id by a failed attempt
                held = {"id": return_id, "published_at": exists["published_at"]}
        ids = {**params, "return_id": return_id, "message_id": message_id}
        if held is None:
            await cursor.execute(
                f"""INSERT INTO {RETURNS} (id, partner_id, message_id, external_id, channel,
                        customer_account, customer_name, reason_code, requested_date, contract,
                        contract_version, request, accepted_at, updated_at, status_since)
                    SELECT %(return_id)s, %(partner)s, %(message_id)s, %(external_id)s,
                        %(request)s ->> 'channel', %(request)s -> 'customer' ->> 'account_number',
                        %(request)s -> 'customer' ->> 'name', %(request)s ->> 'reason_code',
                        (%(request)s ->> 'requested_date')::date, %(contract)s, %(contract_version)s,
                        %(request)s, now(), now(), now()""",
                ids,
            )
        elif held["published_at"] is None:  # not published yet: this request's payload is the one
            await cursor.execute(f"UPDATE {RETURNS} SET {_INTAKE_COLUMNS} WHERE id = %(return_id)s", ids)
        await cursor.execute(
            f"""UPDATE {IDEMPOTENCY_KEYS}
                SET state = 'in_flight', token = %(token)s, return_id = %(return_id)s,
                    message_id = %(message_id)s, lease_until = now() + make_interval(secs => %(lease)s),
                    expires_at = now() + make_interval(secs => %(ttl)s), updated_at = now()
                WHERE partner_id = %(partner)s AND key = %(key)s""",
            ids,
        )
        row = await (
            await cursor.execute(f"SELECT accepted_at FROM {RETURNS} WHERE id = %s", [return_id])
        ).fetchone()
        assert row is not None
        return Reservation(return_id, message_id, _utc(row["accepted_at"]))

    async def _owned(self, cursor: psycopg.AsyncCursor[Any], request: ReturnRequest, return_id: str) -> bool:
        """Whether another key's request is still publishing ``return_id`` (its lease runs)."""
        row = await (
            await cursor.execute(
                f"""SELECT FROM {IDEMPOTENCY_KEYS}
                    WHERE partner_id = %s AND return_id = %s AND key <> %s
                      AND (state = 'done' OR (state = 'in_flight' AND lease_until > now()))
                    LIMIT 1""",
                [request.partner, return_id, key_digest(request.key)],
            )
        ).fetchone()
        return row is not None

    async def confirm(self, request: ReturnRequest, reservation: Reservation, answer: StoredAnswer) -> bool:
        """The broker confirmed: the return is published, its lines written, the key ``done`` with
        ``answer``; one statement (shared with concurrent confirms), committed to disk before it
        returns. ``False`` when the key was taken over meanwhile."""
        return await self._confirming.submit(_Confirmation(request, reservation, answer))

    async def _confirm_many(self, confirmations: Sequence[_Confirmation]) -> list[bool]:
        columns = {
            "return_id": [c.reservation.return_id for c in confirmations],
            "partner": [c.request.partner for c in confirmations],
            "key": [key_digest(c.request.key) for c in confirmations],
            "token": [c.request.token for c in confirmations],
            "status": [c.answer.status_code for c in confirmations],
            "headers": [msgspec.json.encode(c.answer.headers).decode() for c in confirmations],
            "body": [c.answer.body for c in confirmations],
        }
        with database_errors(self._settings.database):
            async with _autocommit(self._database) as connection:
                cursor = await connection.execute(_CONFIRM_MANY, columns)
                return [bool(done) for (done,) in await cursor.fetchall()]

    async def release(self, request: ReturnRequest) -> None:
        """The publish failed: the key may be retried (with the same ids); the return row stays
        unpublished."""
        with database_errors(self._settings.database):
            async with _autocommit(self._database) as connection:
                await connection.execute(
                    f"""UPDATE {IDEMPOTENCY_KEYS} SET state = 'failed', token = NULL, lease_until = NULL,
                            updated_at = now()
                        WHERE partner_id = %s AND key = %s AND token = %s""",
                    [request.partner, key_digest(request.key), request.token],
                )

    async def holder(self, partner: str, external_id: str) -> str | None:
        """The published return holding the partner's ``external_id``, if any."""
        with database_errors(self._settings.database):
            async with _autocommit(self._database) as connection:
                row = await (
                    await connection.execute(
                        f"SELECT id FROM {RETURNS} WHERE partner_id = %s AND external_id = %s "
                        "AND published_at IS NOT NULL",
                        [partner, external_id],
                    )
                ).fetchone()
        return None if row is None else str(row[0])

    async def get(self, return_id: str) -> ReturnRecord | None:
        """The record, or ``None`` if no return has this id. A return whose publish is not
        confirmed yet is read too: a consumer that got its message knows it was published."""
        if len(return_id) > _MAX_ID_LENGTH:
            return None
        with database_errors(self._settings.database):
            async with _autocommit(self._database) as connection:
                row = await (
                    await connection.execute(f"{_RECORD_COLUMNS} WHERE id = %s", [return_id])
                ).fetchone()
        return None if row is None else _record(row)

    async def visible_to(self, principal: Principal, return_id: str) -> ReturnRecord:
        """The caller's return (any return for an operator), once the broker confirmed it; another
        partner's is 404, exactly as one that does not exist, so ids reveal nothing."""
        row = None
        if len(return_id) <= _MAX_ID_LENGTH:
            with database_errors(self._settings.database):
                async with _autocommit(self._database) as connection:
                    row = await (
                        await connection.execute(
                            f"{_RECORD_COLUMNS} WHERE id = %s AND published_at IS NOT NULL", [return_id]
                        )
                    ).fetchone()
        if row is None or (row[1] != principal.partner and not principal.is_admin):
            raise NotFound(f"no return '{return_id}' for this partner")
        return _record(row)

    def _params(self, request: ReturnRequest) -> dict[str, object]:
        return {
            "partner": request.partner,
            "key": key_digest(request.key),
            "fingerprint": request.fingerprint,
            "external_id": request.external_id,
            "return_id": request.return_id,
            "message_id": request.message_id,
            "token": request.token,
            "contract": request.contract,
            "contract_version": request.contract_version,
            "request": _json_text(request.body),
            "lease": self._settings.idempotency_lease_seconds,
            "ttl": self._settings.idempotency_ttl_seconds,
        }


_QUANTUM = Decimal("0.000001")


def unstorable(payload: dict[str, object]) -> list[Violation]:
    """What of a request that met its contract the record cannot keep as sent: quantities are
    kept to 6 decimals (``numeric(18, 6)``), so one that rounds to 0 would be a line the
    database refuses once the return is published. Checked before anything is claimed."""
    lines = payload.get("lines")
    found = []
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        quantity = line.get("quantity") if isinstance(line, dict) else None
        number = isinstance(quantity, int | float) and not isinstance(quantity, bool)
        if number and Decimal(repr(quantity)).quantize(_QUANTUM, ROUND_HALF_UP) <= 0:
            found.append(
                Violation(
                    f"/lines/{index}/quantity", "below 0.000001, the smallest quantity the record keeps"
                )
            )
    return found


def key_digest(key: str) -> str:
    """How an ``Idempotency-Key`` is kept: its SHA-256 (hex), as Redis keeps it, so what an older
    deployment stored there can be imported."""
    return hashlib.sha256(key.encode()).hexdigest()


def _json_text(body: bytes) -> Jsonb:
    """Request bytes passed to PostgreSQL as ``jsonb`` without decoding them in Python."""
    return Jsonb(None, dumps=lambda _: body.decode())


@asynccontextmanager
async def _autocommit(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection on which each statement commits by itself (one round trip, no BEGIN),
    given back as the pool lent it."""
    async with pool.connection() as connection:
        await connection.set_autocommit(True)
        try:
            yield connection
        finally:
            await connection.set_autocommit(False)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def _record(row: Any) -> ReturnRecord:
    (
        return_id,
        partner,
        external_id,
        status,
        contract,
        version,
        accepted_at,
        updated_at,
        message_id,
        request,
    ) = row
    return ReturnRecord(
        id=return_id,
        partner=partner,
        external_id=external_id,
        status=status or INITIAL_STATUS,
        contract=contract,
        contract_version=version,
        accepted_at=_utc(accepted_at),
        updated_at=_utc(updated_at),
        message_id=message_id,
        request=msgspec.Raw(request.encode()),
    )
