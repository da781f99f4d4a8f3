"""Return intake: the use case behind ``POST /v1/returns``, free of HTTP details.

Order matters:

1. the payload is validated before its key is claimed (a refused payload stores nothing, as
   with Stripe);
2. the key is claimed in Redis, the fast path that also counts the rate limit and answers most
   replays and conflicts in one round trip;
3. the key and the return row are reserved in PostgreSQL, the record, whose uniques on
   (partner, key) and (partner, external id) decide what Redis may have forgotten
   (:meth:`ReturnStore.reserve <gateway.records.ReturnStore.reserve>`);
4. the message is published and confirmed by the broker;
5. PostgreSQL marks the return published and the key answered, in one statement; then Redis
   keeps the answer for fast replays.

A failure before the confirm releases the key (in both) for a retry with the same ids; after
it, the key is never released: a crash leaves it in flight until its lease ends, and a retry
then publishes again under the same message id, which consumers deduplicate.
"""

from __future__ import annotations

import logging
import uuid

import msgspec

from gateway.auth import Principal
from gateway.broker import BrokerPublisher
from gateway.envelope import Envelope, TraceContext
from gateway.errors import ContractViolation, DuplicateReturn, StoreUnavailable, Violation
from gateway.intake.idempotency import Claim, IdempotencyStore, StoredResponse, fingerprint
from gateway.intake.payloads import ContractChecks, decode_json
from gateway.intake.ratelimit import Admission
from gateway.records import (
    INITIAL_STATUS,
    Reservation,
    ReturnRecord,
    ReturnRequest,
    ReturnStore,
    StoredAnswer,
    render_receipt,
    unstorable,
)
from gateway.registry import Contract

RETURN_REQUEST = ("return-request", "v1")
log = logging.getLogger(__name__)


def new_ids() -> tuple[str, str]:
    """A fresh return id and message id."""
    return f"ret_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"


class Accepted(msgspec.Struct, frozen=True):
    """What the edge answers: the stored response, and whether it is a replay."""

    response: StoredResponse
    replayed: bool


class ReturnIntake:
    """Validates, deduplicates and durably publishes return requests."""

    def __init__(
        self,
        *,
        contract: Contract,
        idempotency: IdempotencyStore,
        returns: ReturnStore,
        publisher: BrokerPublisher,
    ) -> None:
        self._contract = contract
        self._idempotency = idempotency
        self._returns = returns
        self._publisher = publisher
        self._checks = ContractChecks()

    async def submit(
        self,
        principal: Principal,
        idempotency_key: str,
        body: bytes,
        trace: TraceContext,
        *,
        admission: Admission | None = None,
    ) -> Accepted:
        """Accept one return request exactly once per idempotency key.

        ``admission``, when given, is counted against the partner's rate limit by the claim
        itself (one Redis round trip for both); a throttled request claims nothing.
        """
        payload = await self._valid(body)
        payload_fingerprint = fingerprint(payload)
        external_id = str(payload["external_id"])
        outcome = await self._idempotency.claim(
            partner=principal.partner,
            key=idempotency_key,
            payload_fingerprint=payload_fingerprint,
            external_id=external_id,
            new_ids=new_ids(),
            admission=admission,
        )
        if isinstance(outcome, StoredResponse):
            return Accepted(outcome, replayed=True)
        request = ReturnRequest(
            partner=principal.partner,
            key=idempotency_key,
            fingerprint=payload_fingerprint,
            external_id=external_id,
            return_id=outcome.return_id,
            message_id=outcome.message_id,
            token=outcome.token,
            contract=self._contract.name,
            contract_version=self._contract.version,
            body=body,
        )
        try:
            reserved = await self._returns.reserve(request)
        except BaseException:
            await self._idempotency.release(outcome)
            raise
        if isinstance(reserved, StoredAnswer):  # answered before, and Redis forgot it
            response = StoredResponse(reserved.status_code, reserved.body, reserved.headers)
            await self._remember(outcome, response, reserved.return_id)
            return Accepted(response, replayed=True)
        try:
            await self._publish(principal, reserved, payload, msgspec.Raw(body), trace)
        except BaseException:
            await self._returns.release(request)
            await self._idempotency.release(outcome)
            raise
        # Published: from here on the key is never released (see the module's notes).
        record = ReturnRecord(
            id=reserved.return_id,
            partner=principal.partner,
            external_id=external_id,
            status=INITIAL_STATUS,
            contract=self._contract.name,
            contract_version=self._contract.version,
            accepted_at=reserved.accepted_at,
            updated_at=reserved.accepted_at,
            message_id=reserved.message_id,
            request=msgspec.Raw(body),
        )
        response = StoredResponse(
            status_code=202,
            body=render_receipt(record),
            headers={"Location": f"/v1/returns/{reserved.return_id}"},
        )
        await self._returns.confirm(
            request,
            reserved,
            StoredAnswer(reserved.return_id, response.status_code, response.body, response.headers),
        )
        await self._remember(outcome, response, reserved.return_id)
        return Accepted(response, replayed=False)

    async def _remember(self, claim: Claim, response: StoredResponse, return_id: str) -> None:
        """Keep the answer in Redis for fast replays. PostgreSQL already holds it: if Redis fails
        here the request still succeeded, and a retry is answered from the record."""
        try:
            await self._idempotency.complete(
                claim, response, resource=(claim.external_key, return_id.encode())
            )
        except StoreUnavailable as exc:
            log.warning("return %s recorded; its answer was not cached in Redis: %s", return_id, exc)

    async def rehearse(self, principal: Principal, body: bytes) -> None:
        """Check a request as :meth:`submit` would (contract, an ``external_id`` already held),
        claiming, publishing and recording nothing: the dry run of a test EDI interchange."""
        payload = await self._valid(body)
        external_id = str(payload["external_id"])
        holder = await self._idempotency.holder(principal.partner, external_id)
        if holder is None:
            holder = await self._returns.holder(principal.partner, external_id)
        if holder is not None:
            raise DuplicateReturn(
                f"external_id '{external_id}' was already submitted as return {holder}",
                extensions={"return_id": holder},
            )

    async def _valid(self, body: bytes) -> dict[str, object]:
        """The request as a JSON object that meets the contract, else a 400 or 422; a large body
        is decoded and checked in the lane of large bodies (:class:`ContractChecks`)."""
        async with self._checks.admitted(len(body)):
            payload = decode_json(body)
            await self._checks.require(self._contract, payload, size=len(body))
            if not isinstance(payload, dict):  # only a contract whose root is not an object lets this by
                raise ContractViolation(
                    "the body must be a JSON object", [Violation("", "expected an object")]
                )
            violations = unstorable(payload)
            if violations:
                raise ContractViolation("the payload holds values the record cannot keep", violations)
        return payload

    async def _publish(
        self,
        principal: Principal,
        reserved: Reservation,
        payload: dict[str, object],
        request: msgspec.Raw,
        trace: TraceContext,
    ) -> None:
        envelope = Envelope(
            message_id=reserved.message_id,
            correlation_id=reserved.return_id,
            contract=self._contract.name,
            version=self._contract.version,
            partner=principal.partner,
            occurred_at=reserved.accepted_at,
            trace=trace,
            payload=request,
        )
        await self._publisher.publish(envelope, payload)
