"""EDI intake: the use case behind ``POST /v1/edi/x12`` and ``/v1/edi/edifact``, free of HTTP.

An interchange is checked offline first (``check_interchange``, ``check_edifact``); each
accepted 180 or RETANN, read into the same return notice, is then mapped and handed to
:class:`~gateway.intake.returns.ReturnIntake` like any API request, with an idempotency key derived
from sender, ISA13 and ST02 (UNB 0020 and UNH 0062), so a set is published at most once
whatever happens to the interchange around it. Sets refused on the way (mapping, contract,
a return already opened) are rejected in the 997 (the CONTRL) while the others go through.

The interchange itself is claimed in Redis by sender and ISA13 (UNB 0020): a re-sent
interchange (the same bytes) gets the acknowledgment recorded for the first one, two copies in
flight at once cannot both run, and another interchange under a control number already used is
refused (:class:`~gateway.errors.ControlNumberReused`, with a TA1 or CONTRL saying so) rather
than answered with the first one's acknowledgment.

A test interchange (ISA15 ``T``, UNB 0035 ``1``) is a certification run: checked, mapped and
acknowledged exactly like a production one, and each set is put through the intake's own
checks, but nothing is claimed, published or recorded; the acknowledgment names the external
id each set would have become. Its control numbers are a sequence apart from production's
(``interchange_id`` ends in ``.test``), so a partner's test runs never block its go-live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Awaitable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from gateway.auth import Principal
from gateway.database import database_errors
from gateway.database.tables import EDI_ACK_CONTROL_SEQUENCE, EDI_ACKNOWLEDGEMENTS, EDI_INTERCHANGES, PARTNERS
from gateway.edi._check import Checked, Transaction, check_interchange
from gateway.edi._envelope import SetCode
from gateway.edi._origin import EdiOrigin, OriginLine, record_origin
from gateway.edi._partners import Partner, PartnerDirectory
from gateway.edi._returns import ReturnNoticeMapper, locate
from gateway.edi._structure import SegmentError
from gateway.edi.edifact_retann import EdifactChecked, check_edifact
from gateway.envelope import TraceContext
from gateway.errors import (
    ContractViolation,
    ControlNumberReused,
    DuplicateReturn,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InterchangeUnusable,
    NotFound,
    SenderNotAllowed,
)
from gateway.intake.returns import ReturnIntake
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import edi_interchange

log = logging.getLogger(__name__)

#: An interchange checked, either standard: same transactions, ``ack()`` answers a 997 or a CONTRL.
AnyChecked = Checked | EdifactChecked
#: Sets submitted at once; each waits for its own broker confirm.
CONCURRENCY = 32
#: The acknowledgment each standard answers with (``edi_acknowledgements.kind``).
_ACK_KIND = {"x12": "997", "edifact": "CONTRL"}
_READ = f"""
    SELECT i.interchange_id, i.partner_id, i.received_at, a.body, a.returns, i.test, i.fingerprint,
           a.control_number
    FROM {EDI_INTERCHANGES} i JOIN {EDI_ACKNOWLEDGEMENTS} a ON a.interchange_id = i.id
    WHERE i.partner_id = %s AND i.standard = %s AND i.interchange_id = %s
"""
_SAVE_INTERCHANGE = f"""
    INSERT INTO {EDI_INTERCHANGES}
        (partner_id, standard, interchange_id, sender, control_number, fingerprint, test, received_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (partner_id, standard, interchange_id) DO NOTHING
    RETURNING id
"""
_SAVE_ACK = f"""
    INSERT INTO {EDI_ACKNOWLEDGEMENTS} (interchange_id, kind, control_number, body, returns, created_at)
    VALUES (%s, %s, %s, %s, %s, %s)
"""


class InterchangeAck(msgspec.Struct, frozen=True, kw_only=True):
    """The 997 or CONTRL answered for an interchange, kept to answer a re-send and ``GET .../ack``."""

    interchange_id: str
    partner: str
    received_at: dt.datetime
    ack: str
    returns: dict[str, str]
    """ST02 (UNH 0062) → return id, for the sets (messages) that became returns."""
    test: bool = False
    """A test interchange (ISA15 ``T``, UNB 0035 ``1``): acknowledged, nothing submitted."""
    test_returns: dict[str, str] = {}
    """For a test interchange: ST02 (UNH 0062) → the external id (BGN02, BGM 1004) of each set
    that would have become a return."""
    fingerprint: str = ""
    """SHA-256 of the interchange received (a BOM and surrounding blanks aside); empty in
    records written before it was kept, which replay whatever is sent."""
    control: int | None = None
    """The acknowledgment's own control number (ISA13 / UNB 0020 of the 997 or CONTRL);
    ``None`` in records kept before it was."""


class Receipt(msgspec.Struct, frozen=True):
    """What the edge answers: the recorded acknowledgment, and whether it is a replay."""

    record: InterchangeAck
    replayed: bool


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(InterchangeAck)
"""The Redis format of the records before PostgreSQL (read by :func:`import_from_redis`)."""


def _from_row(row: tuple[Any, ...]) -> InterchangeAck:
    ident, partner, received_at, body, returns, test, digest, control = row
    return InterchangeAck(
        control=control,
        interchange_id=ident,
        partner=partner,
        received_at=received_at,
        ack=body,
        returns={} if test else dict(returns),
        test=test,
        test_returns=dict(returns) if test else {},
        fingerprint=digest or "",
    )


_UNSAFE_IN_PATH = str.maketrans({c: "_" for c in " /?#%\\"})


def interchange_id(sender: str, control: str, *, test: bool = False) -> str:
    """``<ISA06>.<ISA13>`` (``<UNB 0004>.<UNB 0020>``): unique per sender, readable, and safe in
    a URL path (an EDIFACT control reference is alphanumeric, not only digits); ``.test`` added
    for a test interchange, whose control numbers are counted apart from production's."""
    ident = f"{sender.translate(_UNSAFE_IN_PATH)}.{control.translate(_UNSAFE_IN_PATH)}"
    return f"{ident}.test" if test else ident


def fingerprint(body: bytes) -> str:
    """What tells a re-sent interchange from another under the same control number: its bytes,
    a UTF-8 BOM and blanks around it aside."""
    return hashlib.sha256(body.removeprefix(b"\xef\xbb\xbf").strip()).hexdigest()


class EdiIntake:
    """Checks interchanges, submits their returns once, and records the 997s.

    The record (interchanges, their acknowledgments, the acknowledgments' control numbers) is
    PostgreSQL's; Redis holds only the claim on an interchange being processed, a lease: lost,
    the unique key on the record still takes the interchange once (and each set's submission is
    idempotent on its own key, so processing it twice submits nothing twice)."""

    def __init__(
        self,
        settings: Settings,
        *,
        partners: PartnerDirectory,
        mapper: ReturnNoticeMapper,
        intake: ReturnIntake,
        redis: aioredis.Redis,
        database: AsyncConnectionPool,
    ) -> None:
        self._settings = settings
        self._partners = partners
        self._mapper = mapper
        self._intake = intake
        self._redis = redis
        self._database = database

    def _key(self, partner: str, ident: str, standard: str = "x12") -> str:
        return edi_interchange(self._settings, partner, ident, standard)

    def _partner(self, principal: Principal) -> Partner:
        partner = self._partners.get(principal.partner)
        if partner is None:
            raise SenderNotAllowed(f"partner {principal.partner!r} has no EDI trading-partner profile")
        return partner

    async def receive(self, principal: Principal, body: bytes, trace: TraceContext) -> Receipt:
        """Acknowledge one X12 interchange, submitting each good 180 exactly once."""
        partner = self._partner(principal)
        checked = check_interchange(body, codes=partner.code_lists(), max_bytes=self._settings.max_body_bytes)
        interchange = checked.interchange
        if not partner.sends_as(interchange.sender_qualifier, interchange.sender):
            raise SenderNotAllowed(
                f"ISA06 {interchange.sender_qualifier}:{interchange.sender} is not a sender id of "
                f"partner {principal.partner!r}"
            )
        for group in checked.groups:
            if partner.group_ids and group.sender not in partner.group_ids:
                raise SenderNotAllowed(
                    f"GS02 {group.sender!r} is not a sender id of partner {principal.partner!r}"
                )
        if not partner.addresses(interchange.receiver_qualifier, interchange.receiver):
            raise InterchangeUnusable(
                f"ISA08 {interchange.receiver_qualifier}:{interchange.receiver} is not this gateway's id"
            )
        return await self._once(principal, partner, checked, fingerprint(body), trace)

    async def receive_edifact(self, principal: Principal, body: bytes, trace: TraceContext) -> Receipt:
        """Acknowledge one EDIFACT interchange with a CONTRL, submitting each good RETANN exactly once."""
        partner = self._partner(principal)
        checked = check_edifact(
            body,
            reasons=partner.reasons or None,
            units=partner.units or None,
            max_bytes=self._settings.max_body_bytes,
        )
        interchange = checked.interchange
        if not partner.sends_edifact_as(interchange.sender, interchange.sender_qualifier):
            raise SenderNotAllowed(
                f"UNB sender {interchange.sender}:{interchange.sender_qualifier} is not a sender id of "
                f"partner {principal.partner!r}"
            )
        if interchange.error is None and not partner.addresses_edifact(
            interchange.receiver, interchange.receiver_qualifier
        ):
            interchange.error = ("7", "UNB")  # interchange recipient not actual recipient
            checked.transactions.clear()
        return await self._once(principal, partner, checked, fingerprint(body), trace)

    async def _once(
        self, principal: Principal, partner: Partner, checked: AnyChecked, digest: str, trace: TraceContext
    ) -> Receipt:
        """Claim the interchange by sender and control number: a re-send gets the first answer,
        another interchange under the same number is refused."""
        standard, interchange = checked.standard, checked.interchange
        ident = interchange_id(interchange.sender, interchange.control, test=interchange.test)
        stored = await self._stored(principal.partner, ident, standard)
        if stored is not None:
            return await self._replay(checked, stored, digest)
        key = self._key(principal.partner, ident, standard)
        with redis_errors():
            claimed = await self._redis.set(key, b"", nx=True, ex=self._settings.idempotency_lease_seconds)
        if not claimed:
            stored = await self._stored(principal.partner, ident, standard)  # finished meanwhile?
            if stored is not None:
                return await self._replay(checked, stored, digest)
            raise IdempotencyKeyInFlight(
                f"interchange {ident} is being processed; send it again later",
                headers={"Retry-After": str(self._settings.retry_after_seconds)},
            )
        try:
            record = await self._process(principal, partner, checked, ident, digest, trace)
            first = await self._save(checked, record)
        except BaseException:
            with redis_errors():
                await self._redis.delete(key)
            raise
        try:  # the record is kept: the lease has done its work (and expires anyway)
            await self._redis.delete(key)
        except Exception as exc:
            log.warning("the claim on interchange %s was not released (it expires): %s", ident, exc)
        return Receipt(first, replayed=first is not record)

    async def _replay(self, checked: AnyChecked, stored: InterchangeAck, digest: str) -> Receipt:
        if stored.fingerprint and stored.fingerprint != digest:
            raise await self._reused(checked, stored)
        return Receipt(stored, replayed=True)

    async def _stored(self, partner: str, ident: str, standard: str) -> InterchangeAck | None:
        """The interchange's record, if it was acknowledged."""
        if len(ident) > 64:  # never stored: longer than the column allows
            return None
        with database_errors(self._settings.database):
            async with self._database.connection() as conn:
                cursor = await conn.execute(_READ, (partner, standard, ident))
                row = await cursor.fetchone()
        return None if row is None else _from_row(row)

    async def _save(self, checked: AnyChecked, record: InterchangeAck) -> InterchangeAck:
        """Record the interchange with its acknowledgment in one transaction; the record kept
        first if another worker recorded the same interchange meanwhile (its claim lost with
        Redis): that one is what the partner was, or will be, answered."""
        interchange = checked.interchange
        returns = record.test_returns if record.test else record.returns
        with database_errors(self._settings.database):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    _SAVE_INTERCHANGE,
                    (
                        record.partner,
                        checked.standard,
                        record.interchange_id,
                        interchange.sender,
                        interchange.control,
                        record.fingerprint or None,
                        record.test,
                        record.received_at,
                    ),
                )
                row = await cursor.fetchone()
                if row is not None:
                    await conn.execute(
                        _SAVE_ACK,
                        (
                            row[0],
                            _ACK_KIND[checked.standard],
                            record.control,
                            record.ack,
                            Jsonb(returns),
                            record.received_at,
                        ),
                    )
                    return record
        first = await self._stored(record.partner, record.interchange_id, checked.standard)
        return first if first is not None else record

    async def _reused(self, checked: AnyChecked, first: InterchangeAck) -> ControlNumberReused:
        """The refusal of an interchange whose control number ``first`` used, with the TA1
        (TA105 025) or CONTRL (UCI 4, 0085 26) that says so in the partner's standard."""
        interchange = checked.interchange
        if checked.standard == "x12":
            sender, number, ack = f"{interchange.sender_qualifier}:{interchange.sender}", "ISA13", "ta1"
        else:
            sender, number, ack = f"{interchange.sender}:{interchange.sender_qualifier}", "UNB 0020", "contrl"
        return ControlNumberReused(
            f"{number} {interchange.control} from {sender} was already used for another interchange, "
            f"acknowledged at {first.received_at.isoformat(timespec='seconds')}; nothing in this one "
            f"was submitted: send it again under a new control number",
            extensions={
                "interchange_id": first.interchange_id,
                "received_at": first.received_at.isoformat(),
                ack: checked.duplicate_ack(control=await self._control(), now=dt.datetime.now(dt.UTC)),
            },
        )

    async def _control(self) -> int:
        """A fresh control number for an acknowledgment the gateway sends (1 to 999999999, cycling)."""
        with database_errors(self._settings.database):
            async with self._database.connection() as conn:
                cursor = await conn.execute("SELECT nextval(%s)", (EDI_ACK_CONTROL_SEQUENCE,))
                row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def ack(self, principal: Principal, ident: str, *, standard: str = "x12") -> InterchangeAck:
        """The recorded acknowledgment (997 or CONTRL) of one of the partner's interchanges."""
        stored = await self._stored(principal.partner, ident, standard)
        if stored is None:
            raise NotFound(f"no acknowledged interchange {ident!r} for this partner")
        return stored

    async def _process(
        self,
        principal: Principal,
        partner: Partner,
        checked: AnyChecked,
        ident: str,
        digest: str,
        trace: TraceContext,
    ) -> InterchangeAck:
        returns: dict[str, str] = {}
        gate = asyncio.Semaphore(CONCURRENCY)
        test = checked.interchange.test
        rehearsed: set[str] = set()

        async def one(transaction: Transaction) -> None:
            async with gate:
                outcome = await self._submit(principal, partner, checked, transaction, trace, rehearsed)
            if outcome is not None:
                returns[transaction.result.control] = outcome

        await _all([one(t) for t in checked.transactions])
        control = await self._control()
        now = dt.datetime.now(dt.UTC)
        ack = checked.ack(control=control, group_control=control, now=now)
        return InterchangeAck(
            control=control,
            interchange_id=ident,
            partner=principal.partner,
            received_at=now,
            ack=ack,
            returns={} if test else returns,
            test=test,
            test_returns=returns if test else {},
            fingerprint=digest,
        )

    async def _submit(
        self,
        principal: Principal,
        partner: Partner,
        checked: AnyChecked,
        transaction: Transaction,
        trace: TraceContext,
        rehearsed: set[str],
    ) -> str | None:
        """The return id the set became; for a test interchange, which goes no further than the
        intake's checks, the external id it would have had (``rehearsed`` holds those of the
        interchange's sets so far). ``None`` when rejected."""
        request = self._mapper.apply(transaction, principal.partner, partner)
        if request is None:
            return None
        interchange, notice = checked.interchange, transaction.notice
        sender = f"{interchange.sender_qualifier}:{interchange.sender}"
        key = f"{checked.standard}:{sender}:{interchange.control}:{notice['transaction']}"
        bgn = int(notice["sources"].get("reference", 2))
        body = _encoder.encode(request)
        try:
            if interchange.test:
                external_id = str(request["external_id"])
                if external_id in rehearsed:  # what the live intake would say of the second one
                    raise DuplicateReturn(f"external_id '{external_id}' is an earlier set's too")
                rehearsed.add(external_id)  # before any await: the first set in the interchange wins
                await self._intake.rehearse(principal, body)
                return external_id
            accepted = await self._intake.submit(principal, key.replace(" ", "_"), body, trace)
        except ContractViolation as exc:  # the mapper checked already; kept for a contract changed meanwhile
            for error in locate(transaction, exc.violations):
                transaction.result.reject(error)
            return None
        except DuplicateReturn as exc:
            transaction.result.reject(SegmentError("BGN", bgn, None, "8", detail=exc.detail))
            return None
        except IdempotencyKeyReused:  # same sender, ISA13 and ST02 (UNB 0020, UNH 0062) with another content
            transaction.result.errors.append(SetCode.CONTROL_NUMBER_NOT_UNIQUE)
            return None
        return_id = str(msgspec.json.decode(accepted.response.body)["id"])
        group = transaction.group
        await record_origin(
            self._redis,
            self._settings,
            return_id,
            EdiOrigin(
                partner=principal.partner,
                sender_qualifier=interchange.sender_qualifier,
                sender=interchange.sender,
                receiver_qualifier=interchange.receiver_qualifier,
                receiver=interchange.receiver,
                group_sender=group.sender,
                group_receiver=group.receiver,
                version=group.version,
                interchange=interchange.control,
                transaction=notice["transaction"],
                reference=notice["reference"],
                standard=str(notice.get("standard", "x12")),
                lines=[
                    OriginLine(
                        line_number=line["line_number"],
                        item_ids=line["item_ids"],
                        sku=line["sku"],
                        quantity=line["quantity"],
                        unit=line["unit"],
                    )
                    for line in notice["lines"]
                ],
            ),
        )
        return return_id


async def _all(calls: list[Awaitable[None]]) -> None:
    """Run every call; the first failure (broker, Redis) is raised once all have settled."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def import_from_redis(redis: aioredis.Redis, settings: Settings, pool: AsyncConnectionPool) -> int:
    """Copy the acknowledged interchanges an older deployment kept in Redis
    (``<ns>:edi:interchange:<partner>:<ident>``, ``<ns>:edi:edifact:interchange:...``: JSON
    :class:`InterchangeAck`, kept a day) into ``edi_interchanges`` and ``edi_acknowledgements``;
    returns how many were added. Claims still in flight (empty values) are left: a lease.
    Idempotent: an interchange already recorded is skipped."""
    found: list[tuple[str, InterchangeAck]] = []
    with redis_errors():
        for standard in ("x12", "edifact"):
            async for name in redis.scan_iter(match=edi_interchange(settings, "*", "*", standard), count=500):
                raw = await redis.get(name)
                if raw:
                    found.append((standard, _decoder.decode(raw)))
    copied = 0
    with database_errors(settings.database):
        async with pool.connection() as conn:
            for standard, record in sorted(found, key=lambda f: f[1].received_at):
                sender, _, control = record.interchange_id.removesuffix(".test").rpartition(".")
                await conn.execute(
                    f"INSERT INTO {PARTNERS} (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", (record.partner,)
                )
                cursor = await conn.execute(
                    _SAVE_INTERCHANGE,
                    (
                        record.partner,
                        standard,
                        record.interchange_id,
                        sender,
                        control,
                        record.fingerprint or None,
                        record.test,
                        record.received_at,
                    ),
                )
                row = await cursor.fetchone()
                if row is None:
                    continue
                returns = record.test_returns if record.test else record.returns
                await conn.execute(
                    _SAVE_ACK,
                    (
                        row[0],
                        _ACK_KIND[standard],
                        record.control,
                        record.ack,
                        Jsonb(returns),
                        record.received_at,
                    ),
                )
                copied += 1
    return copied
