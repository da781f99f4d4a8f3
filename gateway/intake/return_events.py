"""What people and devices tell the gateway about a return after it was accepted: receipts and
inspections from portals and handhelds, approvals from the people a rule asked, and holds and
releases from the people who govern returns.

Each is a canonical contract, validated, and published (confirmed) for the lifecycle, which alone
changes a return's state. Receipts and inspections are idempotent like return requests (the
``Idempotency-Key`` header, replayed answers); an approval is idempotent by nature: one approver
decides a return once, and its message id says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import msgspec

from gateway.auth import Principal
from gateway.broker import BrokerPublisher
from gateway.envelope import Envelope, TraceContext
from gateway.errors import (
    LISTED_VIOLATIONS,
    ContractViolation,
    NotFound,
    PermissionDenied,
    StatusConflict,
    Violation,
)
from gateway.intake.idempotency import IdempotencyStore, StoredResponse, fingerprint
from gateway.intake.payloads import ContractChecks, decode_json, violation_of
from gateway.intake.returns import Accepted
from gateway.lifecycle import WAITING, LifecycleStore, PolicyBook, ReturnState, may_hold
from gateway.records import ReturnStore
from gateway.registry import ContractRegistry, Refusal, excerpt, to_pointer
from gateway.settings import Settings
from gateway.storage.keys import return_event

_json = msgspec.json.Encoder()


def _person(principal: Principal) -> dict[str, str]:
    """The actor a person's decision records: the key that made it, labelled with its tenant."""
    return {"type": "user", "id": principal.key_id, "name": f"{principal.partner} key"}


def _adding(refusal: Refusal | None, *violations: Violation, uncounted: int = 0) -> Refusal | None:
    """``refusal`` with more violations (and ``uncounted`` more not even listed)."""
    if not violations and not uncounted:
        return refusal
    return Refusal(
        violations=(*(refusal.violations if refusal else ()), *violations),
        total=(refusal.total if refusal else 0) + len(violations) + uncounted,
        exact=refusal.exact if refusal else True,
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


class ReturnEvents:
    """Receipts, inspections and approvals into the pipeline."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: ContractRegistry,
        idempotency: IdempotencyStore,
        returns: ReturnStore,
        lifecycle: LifecycleStore,
        policies: PolicyBook,
        publisher: BrokerPublisher,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._idempotency = idempotency
        self._returns = returns
        self._lifecycle = lifecycle
        self.policies = policies
        self._publisher = publisher
        self._checks = ContractChecks()

    def may_decide(self, principal: Principal, state: ReturnState) -> bool:
        """Whether the caller's tenant approves returns under the return's policy."""
        policy = self.policies.policies.get(state.policy)
        return principal.is_admin or (policy is not None and principal.partner in policy.approvers)

    # -- receipts and inspections -----------------------------------------------------------
    async def report(
        self,
        principal: Principal,
        return_id: str,
        contract_name: str,
        key: str,
        body: bytes,
        trace: TraceContext,
    ) -> Accepted:
        """Publish a ``receipt`` or ``inspection-result`` for one return, once per idempotency key."""
        record = await self._returns.visible_to(principal, return_id)
        async with self._checks.admitted(len(body)):
            payload = decode_json(body)
            if isinstance(payload, dict):
                payload.setdefault("return_id", return_id)
                if payload["return_id"] != return_id:
                    raise ContractViolation(
                        "the body names another return than the path",
                        [Violation("/return_id", f"expected '{return_id}' (the return in the path)")],
                    )
            await self._checks.require(self._registry.require(contract_name, "v1"), payload, size=len(body))
        assert isinstance(payload, dict)
        outcome = await self._idempotency.claim(
            partner=principal.partner,
            key=key,
            payload_fingerprint=fingerprint({"contract": contract_name, "payload": payload}),
            external_id=f"event:{contract_name}:{return_id}:{key}",
            new_ids=(return_id, f"msg_{uuid.uuid4().hex}"),
        )
        if isinstance(outcome, StoredResponse):
            return Accepted(outcome, replayed=True)
        encoded = _json.encode(payload)
        raw = msgspec.Raw(encoded)
        try:
            await self._publish(record.partner, record.id, contract_name, outcome.message_id, raw, trace)
        except BaseException:
            await self._idempotency.release(outcome)
            raise
        answer = {
            "object": "return_event",
            "id": outcome.message_id,
            "return_id": return_id,
            "type": f"{contract_name}.v1",
        }
        response = StoredResponse(
            202, _json.encode(answer), {"Location": f"/v1/returns/{return_id}/timeline"}
        )
        await self._idempotency.complete(
            outcome, response, resource=(return_event(self._settings, outcome.message_id), encoded)
        )
        return Accepted(response, replayed=False)

    # -- approvals ------------------------------------------------------------------------
    async def approve(self, principal: Principal, return_id: str, body: bytes, trace: TraceContext) -> bytes:
        """Record one approver's decision on a return waiting for people; answer what it means."""
        state = await self._governed(principal, return_id, "approves")
        if state.status not in WAITING:
            raise StatusConflict(f"return {return_id} is {state.status}: nothing waits for approval")
        if any(a.approver["id"] == principal.key_id for a in state.approvals):
            raise StatusConflict(f"this approver already approved return {return_id}; another must")
        submitted = decode_json(body)
        fields = submitted if isinstance(submitted, dict) else {}
        approval: dict[str, Any] = {
            "return_id": return_id,
            "decision": fields.get("decision"),
            "approver": _person(principal),
            "approver_partner": principal.partner,
            "decided_at": _now(),
        }
        for optional in ("comment", "rejection_reason"):
            if optional in fields:
                approval[optional] = fields[optional]
        refusal = await self._refusal(
            "approval", approval, fields, {"decision", "comment", "rejection_reason"}, size=len(body)
        )
        if not isinstance(submitted, dict):
            refusal = _adding(None, Violation("", "expected an object with 'decision' (approve or reject)"))
        if refusal:
            raise violation_of(refusal, "the approval")
        digest = hashlib.sha256(f"{principal.key_id}:{return_id}".encode()).hexdigest()[:32]
        # one decision per approver and return, however often sent
        envelope = await self._decided(state, "approval", f"apr_{digest}", approval, trace)
        needed = state.approvals_needed
        given = len(state.approvals) + (1 if approval["decision"] == "approve" else 0)
        return _json.encode(
            {
                "object": "approval",
                "id": envelope.message_id,
                "return_id": return_id,
                "decision": approval["decision"],
                "approvals_needed": needed,
                "approvals_given": given,
                "complete": approval["decision"] == "reject" or given >= needed,
            }
        )

    # -- holds --------------------------------------------------------------------------------
    async def hold(
        self, principal: Principal, return_id: str, action: str, body: bytes, trace: TraceContext
    ) -> bytes:
        """Hold a return where it stands, or release a held one; answer what was recorded."""
        state = await self._governed(principal, return_id, "holds or releases")
        submitted = decode_json(body)
        if not isinstance(submitted, dict):
            raise ContractViolation("the body must be a JSON object", [Violation("", "expected an object")])
        accepted = {"reason"} | ({"invoice_reference"} if action == "release" else set())
        event: dict[str, Any] = {
            "return_id": return_id,
            "action": action,
            "decided_by": _person(principal),
            "decided_by_partner": principal.partner,
            "decided_at": _now(),
            **{name: submitted[name] for name in accepted if name in submitted},
        }
        refusal = await self._refusal("return-hold", event, submitted, accepted, size=len(body))
        if action == "release" and state.status == "on_hold":
            waits = bool(state.pending_credit)
            if waits and "invoice_reference" not in submitted:
                refusal = _adding(
                    refusal, Violation("/invoice_reference", "the credit waits for the invoice to credit")
                )
            if not waits and "invoice_reference" in submitted:
                refusal = _adding(refusal, Violation("/invoice_reference", "no credit waits for an invoice"))
        if refusal:
            raise violation_of(refusal, f"the {action}")
        if action == "hold" and not may_hold(state.status):
            raise StatusConflict(f"return {return_id} is {state.status}: it cannot be held")
        if action == "release" and state.status != "on_hold":
            raise StatusConflict(f"return {return_id} is {state.status}: nothing to release")
        if action == "release" and not state.opened:
            raise StatusConflict(
                f"return {return_id} is held because a dead letter kept the lifecycle from opening it: "
                "replay its request from the dead-letter desk"
            )
        # The same person's retry of the same hold (or of its release) is the same event.
        number = state.holds + (1 if action == "hold" else 0)
        digest = hashlib.sha256(f"{principal.key_id}:{return_id}:{action}:{number}".encode()).hexdigest()[:32]
        envelope = await self._decided(state, "return-hold", f"hld_{digest}", event, trace)
        return _json.encode(
            {"object": "return_hold", "id": envelope.message_id, "return_id": return_id, "action": action}
        )

    # -- shared ---------------------------------------------------------------------------
    async def _refusal(
        self,
        contract: str,
        event: dict[str, Any],
        submitted: dict[str, Any],
        accepted: set[str],
        *,
        size: int,
    ) -> Refusal | None:
        """What is wrong with a person's decision: the contract's violations, and every field of the
        body the endpoint does not take."""
        refusal = await self._checks.check(self._registry.require(contract, "v1"), event, size=size)
        stray = sorted(set(submitted) - accepted)
        takes = ", ".join(sorted(accepted))
        return _adding(
            refusal,
            *(
                Violation(to_pointer([excerpt(name)]), f"is not a field this endpoint takes ({takes})")
                for name in stray[:LISTED_VIOLATIONS]
            ),
            uncounted=len(stray) - min(len(stray), LISTED_VIOLATIONS),
        )

    async def _governed(self, principal: Principal, return_id: str, verb: str) -> ReturnState:
        """The return, if the caller's tenant governs it and did not request it (segregation of duties)."""
        state = await self._lifecycle.get(return_id) if len(return_id) <= 64 else None
        if state is not None and state.partner == principal.partner:
            raise PermissionDenied(f"segregation of duties: a partner never {verb} its own return")
        if state is None or not self.may_decide(principal, state):
            raise NotFound(f"no return '{return_id}' for this tenant to decide")
        return state

    async def _decided(
        self, state: ReturnState, contract: str, message_id: str, payload: dict[str, Any], trace: TraceContext
    ) -> Envelope:
        """Publish a person's decision about a return for the lifecycle."""
        raw = msgspec.Raw(_json.encode(payload))
        return await self._publish(state.partner, state.return_id, contract, message_id, raw, trace)

    async def _publish(
        self,
        partner: str,
        return_id: str,
        contract: str,
        message_id: str,
        payload: msgspec.Raw,
        trace: TraceContext,
    ) -> Envelope:
        """One event about a return, confirmed by the broker, in the return's partner's name."""
        envelope = Envelope(
            message_id=message_id,
            correlation_id=return_id,
            contract=contract,
            version="v1",
            partner=partner,
            occurred_at=dt.datetime.now(dt.UTC),
            trace=trace,
            payload=payload,
        )
        await self._publisher.publish(envelope)
        return envelope
