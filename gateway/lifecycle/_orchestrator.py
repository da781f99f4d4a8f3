"""The lifecycle orchestrator: a process manager that takes each return from request to close.

It consumes the return's events from RabbitMQ (its queue is fed by the routing table like any
connector's, and the connector runtime gives it retries, dead letters and deduplication), applies
each to the return's state in one PostgreSQL transaction, and writes what comes next to the
outbox, which its relay publishes:

* ``return-request``        → the case opens (requested);
* ``return-documents``      → the ERP's facts: validated, then authorized (``return-decision`` to
                              the ERP), rejected (``return-authorization`` rejected), sent to approval,
                              or stopped for a person (validation failed);
* ``approval``              → a person's decision (two when a rule says so);
* ``return-authorization``  → the ERP issued the RMA (its number and document are recorded);
* ``tracking-event``, ``receipt`` → label issued, in transit, received, and on the first arrival
                              (receipt or carrier delivery) one ``inspection-task`` by the policy's
                              inspection rule; the return waits in its partner's inspections queue;
* ``inspection-result``     → inspected, dispositioned by rule (``disposition`` to the ERP, which
                              puts restocked goods back into stock), ``credit-memo`` (draft) to the ERP,
                              and a ``supplier-claim`` where the vendor pays for what goes back;
* ``credit-memo`` (posted)  → credited, closed;
* ``return-hold``           → a person holds the return where it stands (events that arrive meanwhile
                              wait), or releases it: back to where it was, the waiting events applied,
                              and a credit held for want of an invoice drafted with the one given;
* ``delivery-failed``       → a message about the return was dead-lettered: an open exception on
                              the return, linked to the dead letter; a posting's parks the return
                              (posting failed). One that died here before the return was opened
                              (its request, or an event that waited for it in vain) holds a
                              return of the gateway's record, until a replay of its request opens it;
* ``dead-letter-action``    → a dead letter was replayed, delivered again or discarded: on the
                              timeline; delivered or discarded closes its exception, and the last
                              posting's takes a return whose posting failed back where it was.

Every move is checked against the status model and published as ``return-status-changed``.
An event that comes early (an inspection before the receipt) waits in the state and is applied
when the return gets there; one that comes late (a scan after the receipt) is written to the
timeline and changes nothing. An event on a rejected or closed return is refused (dead letter).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from gateway.errors import ConfigurationError, GatewayError, NotReadyYet, PermanentDeliveryFailure
from gateway.lifecycle._commands import (
    LIFECYCLE,
    credit_memo,
    inspection_task,
    rejection,
    return_decision,
    stamp,
    status_changed,
    supplier_claim,
)
from gateway.lifecycle._dead_letters import record_failure, record_replay, resolve
from gateway.lifecycle._outbox import OutboxRelay
from gateway.lifecycle._policy import PolicyBook, PolicyError
from gateway.lifecycle._rules import Verdict, dispose, validate
from gateway.lifecycle._status import PARKED, IllegalTransition, allowed_from, is_behind, may_hold, rank
from gateway.lifecycle._step import WAITING, Step
from gateway.lifecycle._store import (
    Approval,
    ApprovalDecision,
    Change,
    DocumentReference,
    Hold,
    InspectionTask,
    LifecycleStore,
    Opening,
    ReturnState,
    TimelineEntry,
    inspections_of,
)
from gateway.records import ReturnRecord, ReturnStore
from gateway.sdk import Connector, Delivery, Emitted, RuntimeContext, handler

#: Messages whose dead letter means a posting failed (the return cannot go on without it).
POSTINGS = frozenset({"return-decision.v1", "credit-memo.v1", "supplier-claim.v1"})
_TRACKING_MILESTONES = {
    "pre_transit": "label_issued",
    "in_transit": "in_transit",
    "out_for_delivery": "in_transit",
    "available_for_pickup": "in_transit",
    "delivered": "received",
}
_delivery = msgspec.json.Decoder(Delivery)


class _Parked(GatewayError):
    """The event came before the return was ready for it."""

    def __init__(self, waits_for: str) -> None:
        super().__init__(waits_for)
        self.waits_for = waits_for


class Orchestrator(Connector):
    """Routing-table entry: ``use: gateway.lifecycle:Orchestrator`` (no target)."""

    def attach(self, context: RuntimeContext) -> None:
        if context.database is None:
            raise ConfigurationError(
                "the lifecycle keeps its record in PostgreSQL: it needs the database pool"
            )
        self._relay = OutboxRelay(context.database, context.settings)
        self._store = LifecycleStore(context.database, context.settings, on_outbox=self._relay.wake)
        self._records = ReturnStore(context.database, context.settings)
        self.policies = PolicyBook.load(context.settings.policies_dir, context.settings.contracts_dir)
        self._relay_started: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):  # no loop yet: started with the first delivery
            asyncio.get_running_loop()
            self._start_relay()

    def _start_relay(self) -> asyncio.Task[None]:
        """Start the relay once, as soon as there is a loop: rows an earlier process left unsent
        go out without waiting for an event."""
        if self._relay_started is None:
            self._relay_started = asyncio.ensure_future(self._relay.start())
        return self._relay_started

    async def aclose(self) -> None:
        """Stop the outbox relay (what it has not published yet stays in the outbox)."""
        relay = getattr(self, "_relay", None)
        if relay is not None:
            if self._relay_started is not None:
                with contextlib.suppress(Exception):
                    await self._relay_started
            await relay.aclose()
        await super().aclose()

    @handler(
        "return-request.v1",
        "return-documents.v1",
        "approval.v1",
        "return-authorization.v1",
        "tracking-event.v1",
        "receipt.v1",
        "inspection-result.v1",
        "credit-memo.v1",
        "delivery-failed.v1",
        "dead-letter-action.v1",
        "return-hold.v1",
    )
    async def _advance_return(self, delivery: Delivery) -> Sequence[Emitted] | None:
        """Apply the event to the return's state (see :meth:`decide`) in one transaction, what
        comes next written to the outbox, which the relay publishes: nothing for the runtime to."""
        await self._start_relay()
        basis_of: Callable[[ReturnState], Any] = _basis_of_state
        if delivery.contract == "return-documents":
            basis = _basis_of_documents(delivery.payload)
            basis_of = lambda state: basis  # noqa: E731
        record = None
        if delivery.contract == "delivery-failed" and delivery.payload.get("connector") == self.name:
            record = await self._records.get(delivery.correlation_id)  # if it was never opened
        await self._store.apply(
            delivery.correlation_id,
            delivery.message_id,
            lambda state, returned: self.decide(
                delivery, state, returned, dt.datetime.now(dt.UTC), record=record
            ),
            basis_of=basis_of,
            partner=delivery.partner,
            contract=delivery.message_type,
        )
        return None

    # -- deciding -----------------------------------------------------------------------
    def decide(
        self,
        delivery: Delivery,
        state: ReturnState | None,
        returned: dict[str, float],
        now: dt.datetime,
        *,
        record: ReturnRecord | None = None,
    ) -> Change:
        """The change ``delivery`` makes to ``state`` (pure: the store writes it atomically).

        ``record`` is the gateway's record of the return, read for a dead letter of this very
        connector (``delivery-failed``), which may concern a return it never opened."""
        if delivery.contract == "return-request":
            return self._open(delivery, state, returned, now)
        if state is None:
            if delivery.contract == "delivery-failed" and delivery.payload["connector"] == self.name:
                return self._hold_unopened(delivery, record, now)
            raise NotReadyYet(f"return {delivery.correlation_id} is not opened yet")  # overtook it
        step = Step(state, delivery, now)
        self._apply(step, returned)
        self._release_parked(step, returned)
        return step.change

    def _open(
        self, delivery: Delivery, state: ReturnState | None, returned: dict[str, float], now: dt.datetime
    ) -> Change:
        if state is not None:
            return self._open_held(delivery, state, returned, now) if not state.opened else Change(state=None)
        request = delivery.payload
        policy = self.policies.for_partner(delivery.partner)
        state = ReturnState(
            return_id=delivery.correlation_id,
            partner=delivery.partner,
            external_id=str(request["external_id"]),
            channel=str(request["channel"]),
            status="requested",
            created_at=now,
            updated_at=now,
            policy=policy.id,
            policy_version=policy.version,
            request=request,
        )
        step = Step(state, delivery, now)
        actor = {"type": "partner", "id": delivery.partner}
        step.note(
            "status_changed",
            actor,
            to_status="requested",
            detail=f"{state.channel} request {state.external_id}: {len(request['lines'])} line(s), "
            f"policy {policy.id} {policy.version}",
        )
        step.emit(
            "return-status-changed.v1",
            status_changed(state, delivery.message_id, None, "requested", now, actor),
            "status.requested",
        )
        step.change.opening = Opening.of_request(
            request,
            contract=delivery.contract,
            version=delivery.version,
            message_id=delivery.message_id,
            accepted_at=delivery.occurred_at,
        )
        return step.change

    def _open_held(
        self, delivery: Delivery, state: ReturnState, returned: dict[str, float], now: dt.datetime
    ) -> Change:
        """Open a return held for a dead letter before its request was applied: its request is
        here at last (replayed), so it goes to requested and what waited meanwhile is applied."""
        request = delivery.payload
        policy = self.policies.for_partner(state.partner)
        external_id, channel, lines = str(request["external_id"]), str(request["channel"]), request["lines"]
        state.external_id, state.channel, state.request = external_id, channel, request
        state.policy, state.policy_version, state.opened = policy.id, policy.version, True
        step = Step(state, delivery, now)
        step.move(
            "requested",
            {"type": "partner", "id": state.partner},
            detail=f"{channel} request {external_id}: {len(lines)} line(s), policy {policy.id} "
            f"{policy.version}; opened by its replay",
        )
        self._release_parked(step, returned)
        return step.change

    def _hold_unopened(self, delivery: Delivery, record: ReturnRecord | None, now: dt.datetime) -> Change:
        """A message about a return died here before the lifecycle opened the return (its request
        did, or an event waited for the request in vain): hold the gateway's record of it, so the
        return shows why it goes nowhere, until a replay of its request opens it."""
        payload = delivery.payload
        if record is None:  # the gateway records a return just after the broker took its request
            raise NotReadyYet(f"return {delivery.correlation_id} is not opened, nor recorded yet")
        try:
            policy = self.policies.for_partner(record.partner)
            governed = (policy.id, policy.version)
        except PolicyError:
            governed = ("", "")
        reason = (
            f"{payload['message_type']} dead-lettered at {payload['connector']} before the return was "
            f"opened: {payload['detail']}"
        )[:400] + "; a replay of its request from the dead-letter desk opens it"
        state = ReturnState(
            return_id=record.id,
            partner=record.partner,
            external_id=record.external_id,
            channel=_channel_of(record),
            status="on_hold",
            created_at=now,
            updated_at=now,
            policy=governed[0],
            policy_version=governed[1],
            request={},
            resume="requested",
            opened=False,
            hold=Hold(reason=reason, by=LIFECYCLE, at=stamp(now)),
        )
        step = Step(state, delivery, now)
        step.change.timeline.append(
            TimelineEntry(
                at=record.accepted_at,
                action="accepted",
                actor={"type": "partner", "id": record.partner},
                message_id=record.message_id,
                detail="accepted by the gateway",
            )
        )
        failed = record_failure(state.dead_letters, payload)
        link = failed.link() if failed else {"connector": self.name, "message_id": payload["message_id"]}
        step.enter("on_hold", LIFECYCLE, detail=reason, dead_letter=link)
        step.change.opening = Opening.of_request(
            _request_of(record),
            contract=record.contract,
            version=record.contract_version,
            message_id=record.message_id,
            accepted_at=record.accepted_at,
        )
        return step.change

    def _apply(self, step: Step, returned: dict[str, float]) -> None:
        on_event = {
            "return-documents": self._on_documents,
            "approval": self._on_approval,
            "return-authorization": self._on_authorization,
            "tracking-event": self._on_tracking,
            "receipt": self._on_receipt,
            "inspection-result": self._on_inspection,
            "return-hold": self._on_hold,
            "credit-memo": self._on_credit,
            "delivery-failed": self._on_delivery_failed,
            "dead-letter-action": self._on_dead_letter_action,
        }[step.delivery.contract]
        try:
            on_event(step, step.delivery.payload, returned)
        except _Parked as parked:
            step.state.parked.append(step.delivery)
            step.note(
                "parked",
                _system(step.delivery),
                detail=f"{step.delivery.message_type} early: waits for {parked.waits_for}",
            )
        except IllegalTransition as refused:
            raise PermanentDeliveryFailure(f"{step.delivery.message_type} refused: {refused}") from refused

    def _release_parked(self, step: Step, returned: dict[str, float]) -> None:
        """Apply events that waited, as long as the return keeps moving."""
        original = step.delivery
        progress = True
        while progress and step.state.parked:
            progress = False
            waiting, step.state.parked = step.state.parked, []
            for parked in waiting:
                before = len(step.state.parked)
                step.delivery = parked
                status = step.state.status
                self._apply(step, returned)
                if len(step.state.parked) == before and step.state.status != status:
                    progress = True
                elif len(step.state.parked) > before:
                    step.change.timeline.pop()  # still waiting: not worth a second 'parked' line
        step.delivery = original

    # -- events -------------------------------------------------------------------------
    def _on_documents(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        state = step.state
        erp = {"type": "system", "id": str(payload["system"])}
        if state.status == "on_hold":
            raise _Parked("the release")
        if state.status != "requested":
            step.note("late_event", erp, detail=f"ERP documents arrived with the return {state.status}")
            return
        policy = state.governed_by(self.policies)
        state.basis = _basis_of_documents(payload)
        verdict = validate(state.request, payload, returned if state.basis else {}, policy)
        state.verdict = verdict
        documents = [
            {
                "system": str(payload["system"]),
                "document_type": d["kind"],
                "id": d["system_id"],
                "number": d["number"],
            }
            for d in payload["documents"]
        ]
        step.note("documents_checked", erp, documents=documents, detail=f"{len(documents)} document(s) found")
        for finding in verdict.findings:
            line = f"line {finding.line_number}: " if finding.line_number else ""
            step.note("rule_applied", LIFECYCLE, rule=finding.rule, detail=line + finding.detail)
        if verdict.outcome == "validation_failed":
            step.move("validation_failed", LIFECYCLE, rule=verdict.rule, detail=_summary(verdict))
            return
        step.move("validated", LIFECYCLE, detail="checked against the ERP's documents and the policy")
        if verdict.outcome == "reject":
            self._reject(
                step, verdict.lines, verdict.rejection_reason or "policy_violation", LIFECYCLE, verdict.rule
            )
        elif verdict.outcome == "approval":
            state.approvers_needed = verdict.approvers_needed
            step.move("pending_approval", LIFECYCLE, rule=verdict.rule, detail=_summary(verdict))
        else:
            self._authorize(step, verdict.decision, verdict.lines, LIFECYCLE, verdict.rule)

    def _on_approval(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        state = step.state
        approver = dict(payload["approver"])
        if state.status == "on_hold":
            raise _Parked("the release")
        if state.status not in WAITING:
            step.note("late_event", approver, detail=f"approval ignored: the return is {state.status}")
            return
        if payload.get("approver_partner") == state.partner:
            step.note(
                "approval_refused", approver, detail="the requesting partner cannot approve its own return"
            )
            return
        if any(a.approver["id"] == approver["id"] for a in state.approvals):
            step.note("approval_refused", approver, detail="this approver has already decided")
            return
        verdict = state.verdict
        if verdict is None:  # waiting for a person means a verdict was given
            raise PermanentDeliveryFailure(f"return {state.return_id} waits for approval without a verdict")
        record = Approval(
            approver=approver, decided_at=payload["decided_at"], comment=payload.get("comment") or None
        )
        comment = payload.get("comment")
        step.change.decisions.append(
            ApprovalDecision(
                message_id=step.delivery.message_id,
                decision=payload["decision"],
                approver=approver,
                approver_partner=payload.get("approver_partner"),
                decided_at=dt.datetime.fromisoformat(payload["decided_at"]),
                rule=verdict.rule,
                comment=comment,
                rejection_reason=payload.get("rejection_reason") if payload["decision"] == "reject" else None,
            )
        )
        if payload["decision"] == "reject":
            reason = payload.get("rejection_reason") or "policy_violation"
            self._reject(
                step, verdict.lines, reason, approver, verdict.rule, comment=comment, approvals=[record]
            )
            return
        state.approvals.append(record)
        needed = state.approvals_needed
        step.note(
            "approval",
            approver,
            rule=verdict.rule,
            detail=f"approved ({len(state.approvals)} of {needed})" + (f": {comment}" if comment else ""),
        )
        if len(state.approvals) >= needed:
            decision = "partially_authorized" if verdict.decision == "partially_authorized" else "authorized"
            self._authorize(step, decision, verdict.lines, approver, verdict.rule)

    def _on_authorization(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        state = step.state
        if payload["decision"] == "rejected":
            if state.status != "rejected":
                step.note(
                    "late_event", _system(step.delivery), detail="a rejection the lifecycle did not decide"
                )
            return  # the lifecycle's own rejection, coming back through the routes
        documents = list(payload.get("erp_documents") or [])
        erp = _system(step.delivery, documents)
        state.rma_number = payload.get("rma_number") or state.rma_number
        state.return_site = payload.get("return_site") or state.return_site
        state.documents += documents
        if state.status == "posting_failed" and state.resume == "authorized":
            step.move(
                "authorized",
                erp,
                detail=f"RMA {state.rma_number} issued after the replay",
                documents=documents,
            )
            return
        step.note("document_posted", erp, documents=documents, detail=f"RMA {state.rma_number} issued")

    def _on_tracking(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        carrier = {"type": "system", "id": "carrier", "name": str(payload["carrier"])}
        milestone = _TRACKING_MILESTONES.get(payload["status"])
        detail = f"{payload['carrier']} {payload['tracking_code']}: {payload['status']}"
        if milestone is None:
            step.note("carrier_exception", carrier, detail=detail)
            return
        documents = [{"system": "carrier", "document_type": "tracking", "id": str(payload["tracking_code"])}]
        if self._advance(step, milestone, carrier, detail, documents) and milestone == "received":
            self._request_inspection(
                step, "carrier_delivery", documents[0], self._authorized_lines(step), None
            )

    def _on_receipt(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        actor = dict(payload.get("received_by") or {"type": "system", "id": "wms"})
        documents = [
            {
                "system": "wms",
                "document_type": "receipt",
                "id": payload["receipt_number"],
                "number": payload["receipt_number"],
            }
        ]
        count = sum(float(line["quantity"]) for line in payload["lines"])
        detail = f"received {count:g} unit(s) at {payload['site']}"
        if self._advance(step, "received", actor, detail, documents) or step.state.status == "received":
            self._request_inspection(step, "receipt", documents[0], payload["lines"], str(payload["site"]))

    def _on_inspection(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        state = step.state
        inspector = dict(payload["inspector"])
        self._require(step, "received", "inspected")
        if is_behind(state.status, "inspected"):
            step.note("late_event", inspector, detail=f"inspection arrived with the return {state.status}")
            return
        conditions = ", ".join(sorted({line["condition_code"] for line in payload["lines"]}))
        step.move("inspected", inspector, detail=f"{len(payload['lines'])} line(s): {conditions}")
        step.change.queues[inspections_of(state.partner)] = None
        step.change.inspected = payload
        policy = state.governed_by(self.policies)
        disposed = dispose(state.request, payload, policy)
        for finding in disposed.findings:
            step.note("rule_applied", LIFECYCLE, rule=finding.rule, detail=finding.detail)
        step.move(
            "dispositioned",
            LIFECYCLE,
            detail=", ".join(f"{d['sku']} {d['disposition_code']}" for d in disposed.dispositions),
        )
        disposition: dict[str, Any] = {
            "return_id": state.return_id,
            "decided_at": stamp(step.now),
            "decided_by": LIFECYCLE,
            "lines": disposed.dispositions,
        }
        if state.rma_number:
            disposition["rma_number"] = state.rma_number
        step.emit("disposition.v1", disposition, "disposition")  # the inventory action, in the ERP
        for claim in disposed.claims:
            payload = supplier_claim(state, claim, step.now)
            step.emit("supplier-claim.v1", payload, f"claim.{claim.rule['id']}")
            total = payload["totals"]["total"]
            step.note(
                "supplier_claim",
                LIFECYCLE,
                rule=claim.rule,
                detail=f"claim {payload['claim_number']} to vendor {claim.vendor}: "
                f"{total['amount']} {total['currency']}",
            )
        if not disposed.credit_lines:
            step.move("closed", LIFECYCLE, detail="nothing to credit")
            return
        self._credit(step, disposed.credit_lines)

    def _credit(self, step: Step, lines: list[dict[str, Any]]) -> None:
        """Draft the credit memo of ``lines``; hold the return when there is no invoice to credit."""
        credit = credit_memo(step.state, lines)
        if credit is None:
            reason = "no invoice to credit: the request named none; release it with the invoice"
            step.state.pending_credit = lines
            step.move("on_hold", LIFECYCLE, detail=reason)
            step.state.hold = Hold(reason=reason, by=LIFECYCLE, at=stamp(step.now))
            return
        step.state.pending_credit = []
        step.emit("credit-memo.v1", credit, "credit")

    def _on_hold(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        state = step.state
        actor = dict(payload["decided_by"])
        if payload.get("decided_by_partner") == state.partner:
            step.note(
                "hold_refused", actor, detail="the requesting partner cannot hold or release its own return"
            )
            return
        if payload["action"] == "hold":
            if not may_hold(state.status):
                step.note("hold_refused", actor, detail=f"a {state.status} return cannot be held")
                return
            step.move("on_hold", actor, detail=str(payload["reason"])[:500])
            state.hold = Hold(reason=payload["reason"], by=actor, at=payload["decided_at"])
            return
        if not state.opened:
            step.note(
                "release_refused",
                actor,
                detail="the lifecycle has not opened this return: a replay of its request opens it",
            )
            return
        if state.status != "on_hold" or state.resume is None:
            step.note("late_event", actor, detail=f"release ignored: the return is {state.status}")
            return
        if state.pending_credit and payload.get("invoice_reference") is None:
            step.note("release_refused", actor, detail="the credit waits for an invoice; none was given")
            return
        detail = "released" + (f": {payload['reason']}" if payload.get("reason") else "")
        step.move(state.resume, actor, detail=detail[:500])
        if state.pending_credit:
            state.credit_invoice = msgspec.convert(payload["invoice_reference"], DocumentReference)
            self._credit(step, state.pending_credit)

    def _on_credit(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        state = step.state
        if payload["document_status"] != "posted":
            return  # the lifecycle's own draft, coming back through the routes
        if state.status == "on_hold":
            raise _Parked("the release")
        documents = list(payload.get("erp_documents") or [])
        erp = _system(step.delivery, documents)
        number = payload.get("credit_memo_number", "")
        if state.status in ("credited", "closed"):
            step.note("late_event", erp, documents=documents, detail=f"credit memo {number} reported again")
            return
        if state.status == "posting_failed" and state.resume != "dispositioned":
            raise _Parked("dispositioned")
        state.documents += documents
        total = payload["totals"]["total"]
        step.move(
            "credited",
            erp,
            documents=documents,
            detail=f"credit memo {number} posted: {total['amount']} {total['currency']}",
        )
        step.move("closed", LIFECYCLE, detail="credited")

    def _on_delivery_failed(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        state = step.state
        detail = f"{payload['message_type']} dead-lettered at {payload['connector']}: {payload['detail']}"
        actor = {"type": "system", "id": str(payload["connector"])}
        failed = record_failure(state.dead_letters, payload)
        if failed is None:  # delivered again or discarded before this notice got here
            link = {"connector": payload["connector"], "message_id": payload["message_id"]}
            step.note("delivery_failed", actor, detail=f"{detail} (resolved since)"[:500], dead_letter=link)
            return
        if (
            failed.message_type in POSTINGS
            and state.status != "on_hold"
            and "posting_failed" in allowed_from(state.status, state.resume)
        ):
            step.move("posting_failed", actor, detail=detail[:500], dead_letter=failed.link())
        else:
            step.note("delivery_failed", actor, detail=detail[:500], dead_letter=failed.link())

    def _on_dead_letter_action(self, step: Step, payload: dict[str, Any], returned: dict[str, float]) -> None:
        """A dead letter replayed (noted; its exception stays open until the copy is delivered),
        delivered again or discarded (its exception closed, by whom)."""
        state = step.state
        connector, message_id = str(payload["connector"]), str(payload["message_id"])
        action = payload["action"]
        actor = dict(payload["actor"])
        at = dt.datetime.fromisoformat(str(payload["at"]).replace("Z", "+00:00"))
        what = str(payload.get("message_type") or "the message")
        link = {"connector": connector, "message_id": message_id}
        if action == "replayed":
            replayed_as = str(payload["replayed_as"])
            record_replay(state.dead_letters, connector, message_id, replayed_as, at)
            detail = f"{what} replayed to {connector}" + (
                f" with a corrected payload, as {replayed_as}" if replayed_as != message_id else ""
            )
            if payload.get("note"):
                detail += f": {payload['note']}"
            step.note("dead_letter_replayed", actor, detail=detail[:500], dead_letter=link)
            return
        ids = [message_id] + ([str(payload["replayed_as"])] if payload.get("replayed_as") else [])
        closed = resolve(
            state.dead_letters, connector, ids, message_type=what, resolution=action, by=actor, at=at
        )
        if action == "delivered":
            detail = f"{what} delivered to {connector} after its replay"
        else:
            detail = f"{what} discarded by {actor['id']}: {payload['reason']}"
        step.note("dead_letter_resolved", actor, detail=detail[:500], dead_letter=link)
        if closed:
            self._resume_posting(step, actor, detail, link)
        if not state.opened and state.hold is not None and not state.open_dead_letters:
            # Nothing left to replay: the hold says so, for the person who finds it in the queue.
            state.hold = msgspec.structs.replace(
                state.hold, reason=f"{detail[:400]}; the return was never opened"
            )

    def _resume_posting(self, step: Step, actor: dict[str, str], detail: str, link: dict[str, str]) -> None:
        """Back where a return whose posting failed was, once no failed posting is open any more."""
        state = step.state
        if state.status != "posting_failed" or state.resume is None:
            return
        if any(record.message_type in POSTINGS for record in state.open_dead_letters):
            return
        step.move(state.resume, actor, detail=detail[:500], dead_letter=link)

    # -- decisions ----------------------------------------------------------------------
    def _authorize(
        self,
        step: Step,
        decision: str,
        lines: list[dict[str, Any]],
        actor: dict[str, str],
        rule: dict[str, str],
    ) -> None:
        state = step.state
        payload = return_decision(state, decision, lines, step.now, actor, rule)
        step.emit("return-decision.v1", payload, "decision")
        taken: dict[str, float] = {}
        for line in lines:
            taken[line["sku"]] = taken.get(line["sku"], 0.0) + float(line["authorized_quantity"])
        step.change.returned = taken
        state.authorized = [ln for ln in lines if float(ln["authorized_quantity"]) > 0]
        step.move("authorized", actor, rule=rule, detail=f"{decision}: RMA requested from the ERP")

    def _reject(
        self,
        step: Step,
        lines: list[dict[str, Any]],
        reason: str,
        actor: dict[str, str],
        rule: dict[str, str],
        *,
        comment: str | None = None,
        approvals: list[Approval] | None = None,
    ) -> None:
        state = step.state
        payload = rejection(state, lines, reason, step.now, actor, rule, comment)
        step.emit("return-authorization.v1", payload, "rejection")
        state.approvals += approvals or []
        step.move("rejected", actor, rule=rule, detail=reason + (f": {comment}" if comment else ""))

    # -- moving along the road ------------------------------------------------------------
    def _require(self, step: Step, needed: str, milestone: str) -> None:
        """Park the event when the return has not reached ``needed``; refuse it on a dead end."""
        status = step.state.status
        if status in ("rejected", "closed"):
            raise IllegalTransition(status, milestone, f"{step.delivery.message_type} on a {status} return")
        here, wanted = rank(status), rank(needed)
        if status in PARKED or here is None or (wanted is not None and here < wanted):
            raise _Parked(needed)

    def _advance(
        self, step: Step, milestone: str, actor: dict[str, str], detail: str, documents: list[dict[str, str]]
    ) -> bool:
        """Move the return to ``milestone``; ``False`` when it was already past it (a late event)."""
        state = step.state
        self._require(step, "authorized", milestone)
        if is_behind(state.status, milestone):
            step.note(
                "late_event",
                actor,
                detail=f"{detail} (the return is already {state.status})",
                documents=documents,
            )
            return False
        if milestone not in allowed_from(state.status, state.resume):
            raise _Parked(milestone)
        step.move(milestone, actor, detail=detail, documents=documents)
        return True

    def _request_inspection(
        self,
        step: Step,
        event: str,
        document: dict[str, str],
        lines: Sequence[dict[str, Any]],
        site: str | None,
    ) -> None:
        """The goods are here: one inspection task, by the policy's rule for the return's reason.

        A task raised by the carrier's delivery scan knows only what was authorized; the WMS
        receipt that follows says where the goods wait, bin by bin, and refines the same task
        (same number, same due time)."""
        state = step.state
        issued = state.inspection
        refines = issued is not None and issued.event == "carrier_delivery" and event == "receipt"
        if not lines or (issued is not None and not refines):
            return  # one task per return; a delivery of nothing authorized has nothing to inspect
        policy = state.governed_by(self.policies)
        rule = policy.inspection_for(str(state.request["reason_code"]))
        reference = policy.rule(rule.id)
        task = inspection_task(
            state, (rule, reference), {"event": event, "document": document}, lines, site, step.now
        )
        if issued is not None:
            task["requested_at"], task["due_by"] = issued.requested_at, issued.due_by
        state.inspection = InspectionTask(
            task_number=task["task_number"],
            site=task["site"],
            due_by=task["due_by"],
            priority=task["priority"],
            rule=task["rule"],
            requested_at=task["requested_at"],
            event=event,
        )
        step.emit("inspection-task.v1", task, "inspection-task")
        due = dt.datetime.fromisoformat(task["due_by"])
        step.change.queues[inspections_of(state.partner)] = due.timestamp()
        step.note(
            "inspection_refined" if refines else "inspection_requested",
            LIFECYCLE,
            rule=reference,
            documents=[
                {"system": "lifecycle", "document_type": "inspection_task", "id": task["task_number"]}
            ],
            detail=f"task {task['task_number']} at {task['site']}, {task['priority']} priority, "
            f"due by {task['due_by']}",
        )

    @staticmethod
    def _authorized_lines(step: Step) -> list[dict[str, Any]]:
        """What a carrier delivery brings: the authorized lines, with the serials and lots requested."""
        requested = {line["line_number"]: line for line in step.state.request["lines"]}
        lines = []
        for line in step.state.authorized:
            asked = requested.get(line["line_number"], {})
            lines.append(
                {
                    "line_number": line["line_number"],
                    "sku": line["sku"],
                    "quantity": line["authorized_quantity"],
                    "unit_of_measure": line["unit_of_measure"],
                    "serial_numbers": asked.get("serial_numbers"),
                    "lot_numbers": asked.get("lot_numbers"),
                }
            )
        return lines


def _request_of(record: ReturnRecord) -> dict[str, Any]:
    """The request as accepted (``{}`` if it cannot be read)."""
    try:
        request = msgspec.json.decode(record.request)
    except msgspec.DecodeError:
        return {}
    return request if isinstance(request, dict) else {}


def _channel_of(record: ReturnRecord) -> str:
    """The channel the accepted request names (``""`` if it cannot be read)."""
    return str(_request_of(record).get("channel", ""))


def _system(delivery: Delivery, documents: Sequence[dict[str, str]] = ()) -> dict[str, str]:
    """The system an event speaks for: the one whose documents it carries, else its kind."""
    return {"type": "system", "id": documents[0]["system"] if documents else delivery.contract}


def _summary(verdict: Verdict) -> str:
    return "; ".join(f.detail for f in verdict.findings)[:500] or verdict.outcome


def _basis_of_state(state: ReturnState) -> dict[str, str] | None:
    """The document quantities are counted on: the return's, else that of ERP documents waiting
    in it (a hold's release, or the opening of a held return, applies them in this event)."""
    if state.basis is not None:
        return state.basis
    for parked in state.parked:
        if parked.contract == "return-documents":
            return _basis_of_documents(parked.payload)
    return None


def _basis_of_documents(payload: dict[str, Any]) -> dict[str, str] | None:
    by_kind = {d["kind"]: d for d in payload.get("documents") or []}
    for kind in ("shipment", "invoice", "order"):
        if kind in by_kind:
            return {"kind": kind, "number": str(by_kind[kind]["number"])}
    return None
