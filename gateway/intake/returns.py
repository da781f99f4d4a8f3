"""Return intake: the use case behind ``POST /v1/returns``, free of HTTP details.

Order matters: a payload is validated before its key is claimed (a refused payload
stores nothing, as with Stripe), and the return is recorded only after the broker
confirmed its message; any failure in between releases the key for a retry.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from gateway.auth import Principal
from gateway.broker import BrokerPublisher
from gateway.envelope import Envelope, TraceContext
from gateway.errors import ContractViolation, DuplicateReturn, Violation
from gateway.intake.idempotency import Claim, IdempotencyStore, StoredResponse, fingerprint
from gateway.intake.payloads import ContractChecks, decode_json
from gateway.intake.ratelimit import Admission
from gateway.records import INITIAL_STATUS, ReturnRecord, ReturnStore, render_receipt
from gateway.registry import Contract

RETURN_REQUEST = ("return-request", "v1")


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
        outcome = await self._idempotency.claim(
            partner=principal.partner,
            key=idempotency_key,
            payload_fingerprint=fingerprint(payload),
            external_id=str(payload["external_id"]),
            new_ids=new_ids(),
            admission=admission,
        )
        if isinstance(outcome, StoredResponse):
            return Accepted(outcome, replayed=True)
        now = dt.datetime.now(dt.UTC)
        request = msgspec.Raw(body)
        try:
            await self._publish(principal, outcome, payload, request, trace, now)
        except BaseException:
            await self._idempotency.release(outcome)
            raise
        # Published: from here on the key is never released. If recording fails the claim
        # stays in flight until its lease ends; a retry then takes it over with the same
        # message id, which consumers deduplicate.
        return Accepted(await self._record(principal, outcome, payload, request, now), replayed=False)

    async def rehearse(self, principal: Principal, body: bytes) -> None:
        """Check a request as :meth:`submit` would (contract, an ``external_id`` already held),
        claiming, publishing and recording nothing: the dry run of a test EDI interchange."""
        payload = await self._valid(body)
        external_id = str(payload["external_id"])
        holder = await self._idempotency.holder(principal.partner, external_id)
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
        return payload

    async def _publish(
        self,
        principal: Principal,
        claim: Claim,
        payload: dict[str, object],
        request: msgspec.Raw,
        trace: TraceContext,
        now: dt.datetime,
    ) -> None:
        envelope = Envelope(
            message_id=claim.message_id,
            correlation_id=claim.return_id,
            contract=self._contract.name,
            version=self._contract.version,
            partner=principal.partner,
            occurred_at=now,
            trace=trace,
            payload=request,
        )
        await self._publisher.publish(envelope, payload)

    async def _record(
        self,
        principal: Principal,
        claim: Claim,
        payload: dict[str, object],
        request: msgspec.Raw,
        now: dt.datetime,
    ) -> StoredResponse:
        record = ReturnRecord(
            id=claim.return_id,
            partner=principal.partner,
            external_id=str(payload["external_id"]),
            status=INITIAL_STATUS,
            contract=self._contract.name,
            contract_version=self._contract.version,
            accepted_at=now,
            updated_at=now,
            message_id=claim.message_id,
            request=request,
        )
        response = StoredResponse(
            status_code=202,
            body=render_receipt(record),
            headers={"Location": f"/v1/returns/{claim.return_id}"},
        )
        await self._idempotency.complete(claim, response, resource=self._returns.entry(record))
        return response
