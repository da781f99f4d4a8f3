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
from collections.abc import Awaitable

import msgspec
import redis.asyncio as aioredis

from gateway.auth import Principal
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
from gateway.storage.keys import edi_ack_control, edi_interchange

#: An interchange checked, either standard: same transactions, ``ack()`` answers a 997 or a CONTRL.
AnyChecked = Checked | EdifactChecked
#: Sets submitted at once; each waits for its own broker confirm.
CONCURRENCY = 32
_CONTROL_MODULUS = 1_000_000_000


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


class Receipt(msgspec.Struct, frozen=True):
    """What the edge answers: the recorded acknowledgment, and whether it is a replay."""

    record: InterchangeAck
    replayed: bool


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(InterchangeAck)


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
    """Checks interchanges, submits their returns once, and records the 997s."""

    def __init__(
        self,
        settings: Settings,
        *,
        partners: PartnerDirectory,
        mapper: ReturnNoticeMapper,
        intake: ReturnIntake,
        redis: aioredis.Redis,
    ) -> None:
        self._settings = settings
        self._partners = partners
        self._mapper = mapper
        self._intake = intake
        self._redis = redis

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
        key = self._key(principal.partner, ident, standard)
        with redis_errors():
            claimed = await self._redis.set(key, b"", nx=True, ex=self._settings.idempotency_lease_seconds)
            if not claimed:
                stored = await self._redis.get(key)
        if not claimed:
            if stored:
                record = _decoder.decode(stored)
                if record.fingerprint and record.fingerprint != digest:
                    raise await self._reused(checked, record)
                return Receipt(record, replayed=True)
            raise IdempotencyKeyInFlight(
                f"interchange {ident} is being processed; send it again later",
                headers={"Retry-After": str(self._settings.retry_after_seconds)},
            )
        try:
            record = await self._process(principal, partner, checked, ident, digest, trace)
        except BaseException:
            with redis_errors():
                await self._redis.delete(key)
            raise
        with redis_errors():
            await self._redis.set(key, _encoder.encode(record), ex=self._settings.idempotency_ttl_seconds)
        return Receipt(record, replayed=False)

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
        """A fresh control number for an acknowledgment the gateway sends."""
        with redis_errors():
            control = int(await self._redis.incr(edi_ack_control(self._settings))) % _CONTROL_MODULUS
        return control or 1

    async def ack(self, principal: Principal, ident: str, *, standard: str = "x12") -> InterchangeAck:
        """The recorded acknowledgment (997 or CONTRL) of one of the partner's interchanges."""
        key = self._key(principal.partner, ident, standard)
        with redis_errors():
            stored = await self._redis.get(key) if len(ident) <= 64 else None
        if not stored:
            raise NotFound(f"no acknowledged interchange {ident!r} for this partner")
        return _decoder.decode(stored)

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
