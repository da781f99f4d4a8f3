"""Lifecycle state per return, kept in PostgreSQL and changed only in transactions.

Applying an event is one transaction. It locks the return's row (``SELECT … FOR UPDATE``, or,
before the row exists, an advisory lock on its id), so events about one return apply one after
the other while other returns go on in parallel. In that transaction it reads the event's id in
``applied_events`` (there: a redelivery, nothing changes), decides, and writes together, or not
at all: the return's lifecycle columns (inserting the row if the intake has not), its
timeline entries (append-only), the holds and inspection tasks it enters or leaves (the work
queues are queries over ``returns``, ``holds`` and ``inspections``), the quantities taken back
against its ERP document, the event's id, and the commands it produced in the ``outbox``, which
the relay (:mod:`gateway.lifecycle._outbox`) publishes.

Where the state is: what is searched or counted has a column of ``returns``; the rest of the
working state (documents as posted, approvals, the open hold and inspection task, authorized
lines, dead-letter exceptions, whether it was opened) is the ``lifecycle`` jsonb beside them,
written in the same statement. Nothing of it is in Redis.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gateway.broker.names import condition_headers, events_exchange_name
from gateway.database import database_errors
from gateway.database.tables import (
    APPLIED_EVENTS,
    DOCUMENTS,
    INSPECTIONS,
    OUTBOX,
    PARTNERS,
    RETURNED_QUANTITIES,
    RETURNS,
    TIMELINE_ENTRIES,
)
from gateway.database.tables import APPROVALS as APPROVALS_TABLE
from gateway.database.tables import HOLDS as HOLDS_TABLE
from gateway.errors import DatabaseUnavailable, PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.lifecycle._dead_letters import DeadLetterRecord
from gateway.lifecycle._policy import Policy, PolicyBook
from gateway.lifecycle._rules import Verdict
from gateway.lifecycle._status import ReturnStatus
from gateway.sdk import Delivery, Emitted
from gateway.settings import Settings

#: The queue of returns waiting for a person's decision.
APPROVALS = ("approvals",)
#: The queue of returns on hold, waiting for a person to release them.
HOLDS = ("holds",)
#: Statuses in which a return waits for a person (the approvals queue).
_WAITING = ("pending_approval", "validation_failed")


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of a return's audit trail; written once, never changed."""

    at: dt.datetime
    action: str
    """requested, validated, status_changed, approval, document_posted, late_event, parked..."""
    actor: dict[str, str]
    message_id: str
    from_status: str | None = None
    to_status: str | None = None
    rule: dict[str, str] | None = None
    documents: list[dict[str, str]] = []
    detail: str | None = None
    dead_letter: dict[str, str] | None = None


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """Why a return is on hold, who held it and when (while it is)."""

    reason: str
    by: dict[str, str]
    at: str
    """RFC 3339, as the contracts' DateTime."""


class InspectionTask(msgspec.Struct, frozen=True, kw_only=True):
    """The inspection task issued when a return's goods arrived (the ``inspection-task`` sent)."""

    task_number: str
    site: str
    due_by: str
    """RFC 3339: the rank in the partner's inspections queue."""
    priority: str
    rule: dict[str, str]
    requested_at: str
    event: str
    """What raised it: ``receipt`` or ``carrier_delivery`` (a receipt refines the latter's task)."""


class DocumentReference(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The contracts' DocumentReference: here, the invoice a person named to credit against."""

    number: str
    date: str | None = None
    line_number: int | None = None


class Approval(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An approval a return was given (or the decision that rejected it), as the lifecycle
    counts them and the ``return-decision`` lists them."""

    approver: dict[str, str]
    decided_at: str
    comment: str | None = None


class ReturnState(msgspec.Struct, kw_only=True):
    """Where one return stands, and what the lifecycle needs to take it further."""

    return_id: str
    partner: str
    external_id: str
    channel: str
    status: ReturnStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    policy: str
    policy_version: str
    request: dict[str, Any]
    resume: ReturnStatus | None = None
    """The status a parked return (posting failed, on hold) left, and goes back to."""
    approvers_needed: int = 0
    approvals: list[Approval] = []
    verdict: Verdict | None = None
    rma_number: str | None = None
    documents: list[dict[str, str]] = []
    basis: dict[str, str] | None = None
    """The ERP document quantities were counted on ({kind, number}), for the returned tally."""
    authorized: list[dict[str, Any]] = []
    """The authorization lines (requested and authorized quantity) the return was authorized with."""
    return_site: str | None = None
    """Where the goods are to be sent, as the authorization named it."""
    inspection: InspectionTask | None = None
    """The inspection task issued when the goods arrived: number, site, due by, priority, rule."""
    hold: Hold | None = None
    """Why the return is on hold, who held it and when (while it is)."""
    holds: int = 0
    """How many times it was put on hold (numbers each hold, so a retried release is one event)."""
    pending_credit: list[dict[str, Any]] = []
    """Credit lines held back for want of an invoice to credit against (released with one)."""
    credit_invoice: DocumentReference | None = None
    """The invoice the person who released the return named, for the credit memo."""
    dead_letters: list[DeadLetterRecord] = []
    """Dead letters announced about the return: open ones until delivered or discarded, and
    the last closed ones."""
    opened: bool = True
    """False while the lifecycle holds the return only because its request (or an event about
    it) died here before it could open it: no request applied yet; a replay of it opens it."""
    parked: list[Delivery] = []
    """Events that arrived before the return was ready for them (as deliveries), applied later."""

    @property
    def approvals_needed(self) -> int:
        """Approvals that decide it now: one overrides a failed validation, else what the rule asks."""
        return 1 if self.status == "validation_failed" else max(1, self.approvers_needed)

    @property
    def open_dead_letters(self) -> list[DeadLetterRecord]:
        """The return's open exceptions: dead letters neither delivered again nor discarded."""
        return [record for record in self.dead_letters if record.is_open]

    def governed_by(self, book: PolicyBook) -> Policy:
        """The policy the return was opened under (its partner's current one if that was removed)."""
        return book.policies.get(self.policy) or book.for_partner(self.partner)


class ApprovalDecision(msgspec.Struct, frozen=True, kw_only=True):
    """One person's decision on a return, as the ``approvals`` table keeps it."""

    message_id: str
    decision: str
    """approve or reject"""
    approver: dict[str, str]
    approver_partner: str | None = None
    decided_at: dt.datetime
    rule: dict[str, str] | None = None
    comment: str | None = None
    rejection_reason: str | None = None


class Change(msgspec.Struct, kw_only=True):
    """What applying one event does, written in one transaction."""

    state: ReturnState | None
    timeline: list[TimelineEntry] = []
    emitted: list[dict[str, Any]] = []
    """Commands and events to publish, as ``Emitted`` fields (contract, version, payload, message_id)."""
    queues: dict[tuple[str, ...], float | None] = {}
    """Work queues (key parts, e.g. ``("approvals",)``) the return enters, with its rank there (a
    timestamp: oldest or soonest due first), or leaves (``None``)."""
    returned: dict[str, float] = {}
    """Quantities (per SKU) now taken back against the state's basis document."""
    opening: Opening | None = None
    """The return as the gateway accepted it, when this change opens (or first holds) it: the
    ``returns`` row is inserted with it if the intake has not inserted it already."""
    decisions: list[ApprovalDecision] = []
    """People's approval decisions taken into account (the ``approvals`` table, append-only)."""
    inspected: dict[str, Any] | None = None
    """The inspection result (the ``inspection-result`` payload) that closes the inspection task."""


#: Decides the change one event makes, given the current state and the quantities already returned.
Decide = Callable[[ReturnState | None, dict[str, float]], Change]


class Opening(msgspec.Struct, frozen=True, kw_only=True):
    """The return as accepted (the intake's columns of ``returns``), to insert its row with."""

    customer_account: str
    customer_name: str | None
    reason_code: str
    requested_date: dt.date
    contract: str
    contract_version: str
    message_id: str
    request: dict[str, Any]
    accepted_at: dt.datetime

    @classmethod
    def of_request(
        cls,
        request: dict[str, Any],
        *,
        contract: str,
        version: str,
        message_id: str,
        accepted_at: dt.datetime,
    ) -> Opening:
        """From a ``return-request`` payload (valid against its contract)."""
        customer = request.get("customer") or {}
        return cls(
            customer_account=str(customer.get("account_number", "")),
            customer_name=customer.get("name"),
            reason_code=str(request.get("reason_code", "")),
            requested_date=dt.date.fromisoformat(str(request.get("requested_date") or accepted_at.date())),
            contract=contract,
            contract_version=version,
            message_id=message_id,
            request=request,
            accepted_at=accepted_at,
        )


def inspections_of(partner: str) -> tuple[str, ...]:
    """The queue of a partner's returns received and not yet inspected, soonest due first."""
    return ("inspections", partner)


#: ReturnState fields that are columns of ``returns`` (the rest is its ``lifecycle`` jsonb).
_COLUMNS = frozenset(
    {
        "return_id", "partner", "external_id", "channel", "request", "status", "updated_at",
        "resume", "policy", "policy_version", "approvers_needed", "verdict", "rma_number",
        "return_site", "basis", "holds", "pending_credit", "credit_invoice", "parked",
    }
)  # fmt: skip
# A row the intake inserted that the lifecycle has not opened yet has an empty ``lifecycle``.
_STATE_SQL = f"""
SELECT CASE WHEN lifecycle = '{{}}' THEN NULL ELSE (lifecycle || jsonb_build_object(
    'return_id', id, 'partner', partner_id, 'external_id', external_id, 'channel', channel,
    'request', CASE WHEN lifecycle -> 'opened' = 'false' THEN '{{}}'::jsonb ELSE request END,
    'status', status, 'updated_at', updated_at, 'resume', resume_status,
    'policy', coalesce(policy, ''), 'policy_version', coalesce(policy_version, ''),
    'approvers_needed', approvers_needed, 'verdict', verdict, 'rma_number', rma_number,
    'return_site', return_site,
    'basis', CASE WHEN basis_kind IS NULL THEN NULL
                  ELSE jsonb_build_object('kind', basis_kind, 'number', basis_number) END,
    'holds', holds_count, 'pending_credit', pending_credit, 'credit_invoice', credit_invoice,
    'parked', parked_events))::text END
FROM {RETURNS} WHERE id = %s
"""
_TIMELINE_SQL = f"""
SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
    'at', at, 'action', action, 'actor', actor, 'message_id', message_id,
    'from_status', from_status, 'to_status', to_status, 'rule', rule, 'documents', documents,
    'detail', detail, 'dead_letter', dead_letter)) ORDER BY id), '[]')::text
FROM {TIMELINE_ENTRIES} WHERE return_id = %s
"""
_DECISIONS_SQL = f"""
SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
    'message_id', message_id, 'decision', decision, 'approver', approver,
    'approver_partner', approver_partner, 'decided_at', decided_at, 'rule', rule,
    'comment', comment, 'rejection_reason', rejection_reason)) ORDER BY id), '[]')::text
FROM {APPROVALS_TABLE} WHERE return_id = %s
"""
_decisions = msgspec.json.Decoder(list[ApprovalDecision])
_state = msgspec.json.Decoder(ReturnState)
_timeline = msgspec.json.Decoder(list[TimelineEntry])
_json = msgspec.json.Encoder()


def _jsonb(value: Any) -> str | None:
    """A value as JSON text for a ``%s::jsonb`` parameter (``None`` stays SQL NULL)."""
    return None if value is None else _json.encode(value).decode()


def _moment(value: str | dt.datetime) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


class LifecycleStore:
    """The lifecycle's record of every return, on the process's PostgreSQL pool."""

    def __init__(
        self, pool: AsyncConnectionPool, settings: Settings, *, on_outbox: Callable[[], None] | None = None
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._url = settings.database
        self._exchange = events_exchange_name(settings)
        self.on_outbox = on_outbox
        """Called after a transaction that wrote outbox rows committed (wakes the relay)."""

    # -- reading ------------------------------------------------------------------------
    async def get(self, return_id: str) -> ReturnState | None:
        with database_errors(self._url):
            async with self._pool.connection() as conn:
                row = await (await conn.execute(_STATE_SQL, (return_id,))).fetchone()
        return None if row is None or row[0] is None else _state.decode(row[0])

    async def timeline(self, return_id: str) -> list[TimelineEntry]:
        with database_errors(self._url):
            async with self._pool.connection() as conn:
                row = await (await conn.execute(_TIMELINE_SQL, (return_id,))).fetchone()
        return [] if row is None else _timeline.decode(row[0])

    async def decisions(self, return_id: str) -> list[ApprovalDecision]:
        """People's approval decisions on the return, in the order they were taken."""
        with database_errors(self._url):
            async with self._pool.connection() as conn:
                row = await (await conn.execute(_DECISIONS_SQL, (return_id,))).fetchone()
        return [] if row is None else _decisions.decode(row[0])

    async def documents(self, return_id: str) -> list[tuple[str, str, str | None, str | None]]:
        """Documents the systems posted for the return: (system, kind, system id, number)."""
        with database_errors(self._url):
            async with self._pool.connection() as conn:
                rows = await (
                    await conn.execute(
                        f"SELECT system, kind, system_id, number FROM {DOCUMENTS} "
                        "WHERE return_id = %s ORDER BY id",
                        (return_id,),
                    )
                ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def queued(
        self, queue: tuple[str, ...], limit: int = 500, *, offset: int = 0
    ) -> list[tuple[str, float]]:
        """The returns in one work queue, lowest rank first, with their rank (a timestamp: when
        they entered it, or when their inspection is due)."""
        kind, *args = queue
        if kind == "approvals":
            sql = (
                f"SELECT id, status_since FROM {RETURNS} WHERE status = ANY(%s) "
                "ORDER BY status_since, id LIMIT %s OFFSET %s"
            )
            params: tuple[Any, ...] = (list(_WAITING), limit, offset)
        elif kind == "holds":
            sql = (
                f"SELECT return_id, held_at FROM {HOLDS_TABLE} WHERE released_at IS NULL "
                "ORDER BY held_at, return_id LIMIT %s OFFSET %s"
            )
            params = (limit, offset)
        elif kind == "inspections":
            sql = (
                f"SELECT i.return_id, i.due_by FROM {INSPECTIONS} i JOIN {RETURNS} r ON r.id = i.return_id "
                "WHERE i.inspected_at IS NULL AND r.partner_id = %s "
                "ORDER BY i.due_by, i.return_id LIMIT %s OFFSET %s"
            )
            params = (args[0], limit, offset)
        else:
            raise ValueError(f"no such queue: {queue}")
        with database_errors(self._url):
            async with self._pool.connection() as conn:
                rows = await (await conn.execute(sql, params)).fetchall()
        return [(return_id, since.timestamp()) for return_id, since in rows]

    # -- applying -----------------------------------------------------------------------
    async def apply(
        self,
        return_id: str,
        message_id: str,
        decide: Decide,
        *,
        basis_of: Callable[[ReturnState], Any],
        partner: str,
        contract: str = "",
    ) -> bool:
        """Apply one event to one return exactly once, its commands written to the outbox;
        False when the event was applied before (a redelivery: nothing changes).

        ``partner`` is the partner of the event's envelope (the commands' envelopes carry it);
        :class:`~gateway.errors.RetryableDeliveryFailure` when PostgreSQL is unavailable."""
        try:
            with database_errors(self._url):
                async with self._pool.connection() as conn, conn.transaction():
                    applied, relay = await self._apply(
                        conn, return_id, message_id, decide, basis_of, partner, contract
                    )
        except DatabaseUnavailable as exc:
            raise RetryableDeliveryFailure(str(exc)) from exc
        if relay and self.on_outbox is not None:
            self.on_outbox()
        return applied

    async def _apply(
        self,
        conn: AsyncConnection[Any],
        return_id: str,
        message_id: str,
        decide: Decide,
        basis_of: Callable[[ReturnState], Any],
        partner: str,
        contract: str,
    ) -> tuple[bool, bool]:
        """(whether the event was applied now, whether it wrote outbox rows)."""
        row = await (await conn.execute(_STATE_SQL + " FOR UPDATE", (return_id,))).fetchone()
        if row is None:  # not opened yet: serialize on its id until the row exists
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (return_id,))
            row = await (await conn.execute(_STATE_SQL + " FOR UPDATE", (return_id,))).fetchone()
        state = None if row is None or row[0] is None else _state.decode(row[0])
        if state is not None:
            applied = await (
                await conn.execute(
                    f"SELECT 1 FROM {APPLIED_EVENTS} WHERE return_id = %s AND message_id = %s",
                    (return_id, message_id),
                )
            ).fetchone()
            if applied is not None:
                return False, False
        returned: dict[str, float] = {}
        basis = None if state is None else basis_of(state)
        if state is not None and basis is not None:
            returned = await self._returned(conn, state.partner, basis)
        before = None if state is None else state.status
        posted_before = [] if state is None else list(state.documents)  # decide changes the state in place
        change = decide(state, returned)
        after = change.state
        if after is None:
            if state is not None:
                await self._applied(conn, return_id, message_id, contract)
            return state is not None, False
        if state is None:
            await self._insert(conn, after, change.opening)
        await self._update(conn, after, status_changed=before != after.status)
        await self._write_timeline(conn, after.return_id, change.timeline)
        await self._write_queues(conn, after, change)
        if change.returned and after.basis is not None:
            await self._add_returned(conn, after.partner, after.basis, change.returned)
        await self._write_documents(conn, after, posted_before, message_id)
        await self._write_decisions(conn, after.return_id, change.decisions)
        await self._applied(conn, after.return_id, message_id, contract)
        return True, await self._write_outbox(conn, after.return_id, message_id, partner, change.emitted)

    async def restore(
        self,
        state: ReturnState,
        timeline: list[TimelineEntry],
        applied: list[str],
        opening: Opening,
    ) -> bool:
        """Write a return's lifecycle as another store held it (the Redis import): its columns,
        timeline, open hold or inspection task and applied events, in one transaction; False,
        writing nothing, when the lifecycle already holds the return here."""
        with database_errors(self._url):
            async with self._pool.connection() as conn, conn.transaction():
                row = await (await conn.execute(_STATE_SQL + " FOR UPDATE", (state.return_id,))).fetchone()
                if row is not None and row[0] is not None:
                    return False
                await self._insert(conn, state, opening)
                await self._update(conn, state, status_changed=True)
                await self._write_timeline(conn, state.return_id, timeline)
                queues: dict[tuple[str, ...], float | None] = {}
                if state.status == "on_hold":
                    held = _moment(state.hold.at) if state.hold else state.updated_at
                    queues[HOLDS] = held.timestamp()
                if state.inspection is not None and state.status == "received":
                    queues[inspections_of(state.partner)] = _moment(state.inspection.due_by).timestamp()
                await self._write_queues(conn, state, Change(state=state, queues=queues))
                await self._write_documents(conn, state, [], "imported")
                for message_id in applied:
                    await self._applied(conn, state.return_id, message_id, "")
        return True

    async def restore_returned(self, partner: str, basis: dict[str, str], returned: dict[str, float]) -> None:
        """Quantities taken back against a document as another store counted them: kept where
        this one counts more already, so a second import adds nothing."""
        with database_errors(self._url):
            async with self._pool.connection() as conn, conn.transaction():
                await self._partner(conn, partner)
                for sku, quantity in returned.items():
                    await conn.execute(
                        f"INSERT INTO {RETURNED_QUANTITIES} AS q "
                        "(partner_id, document_kind, document_number, sku, quantity) "
                        "VALUES (%s, %s, %s, %s, %s) "
                        "ON CONFLICT (partner_id, document_kind, document_number, sku) "
                        "DO UPDATE SET quantity = greatest(q.quantity, excluded.quantity)",
                        (partner, basis["kind"], basis["number"], sku, quantity),
                    )

    async def _returned(
        self, conn: AsyncConnection[Any], partner: str, basis: dict[str, str]
    ) -> dict[str, float]:
        # Returns against one document serialize here (the rows may not exist yet to lock).
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))",
            (f"{partner}\x1f{basis['kind']}\x1f{basis['number']}",),
        )
        rows = await (
            await conn.execute(
                f"SELECT sku, quantity FROM {RETURNED_QUANTITIES} "
                "WHERE partner_id = %s AND document_kind = %s AND document_number = %s",
                (partner, basis["kind"], basis["number"]),
            )
        ).fetchall()
        return {sku: float(quantity) for sku, quantity in rows}

    async def _add_returned(
        self, conn: AsyncConnection[Any], partner: str, basis: dict[str, str], returned: dict[str, float]
    ) -> None:
        await self._partner(conn, partner)
        for sku, quantity in returned.items():
            await conn.execute(
                f"INSERT INTO {RETURNED_QUANTITIES} AS q "
                "(partner_id, document_kind, document_number, sku, quantity) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (partner_id, document_kind, document_number, sku) "
                "DO UPDATE SET quantity = q.quantity + excluded.quantity, updated_at = now()",
                (partner, basis["kind"], basis["number"], sku, quantity),
            )

    async def _partner(self, conn: AsyncConnection[Any], partner: str) -> None:
        """The partner's row, for the foreign keys; the partners' own store fills in the rest."""
        await conn.execute(f"INSERT INTO {PARTNERS} (id) VALUES (%s) ON CONFLICT DO NOTHING", (partner,))

    async def _insert(self, conn: AsyncConnection[Any], state: ReturnState, opening: Opening | None) -> None:
        """The return's row, if the intake has not written it yet (its columns stay the intake's).
        Published, since the lifecycle has it from the broker."""
        if opening is None:
            raise RetryableDeliveryFailure(f"return {state.return_id} has no record to open it with")
        await self._partner(conn, state.partner)
        await conn.execute(
            f"INSERT INTO {RETURNS} (id, partner_id, external_id, channel, customer_account, customer_name, "
            "reason_code, requested_date, contract, contract_version, message_id, request, accepted_at, "
            "updated_at, status, status_since, published_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (
                state.return_id,
                state.partner,
                state.external_id,
                state.channel,
                opening.customer_account,
                opening.customer_name,
                opening.reason_code,
                opening.requested_date,
                opening.contract,
                opening.contract_version,
                opening.message_id,
                _jsonb(opening.request),
                opening.accepted_at,
                state.updated_at,
                str(state.status),
                state.updated_at,
                state.updated_at,
            ),
        )

    async def _update(self, conn: AsyncConnection[Any], state: ReturnState, *, status_changed: bool) -> None:
        """The lifecycle's columns of the return's row (never the intake's)."""
        working = {k: v for k, v in msgspec.to_builtins(state).items() if k not in _COLUMNS}
        basis = state.basis or {}
        updated = await conn.execute(
            f"UPDATE {RETURNS} SET status = %s, status_since = CASE WHEN %s THEN %s ELSE status_since END, "
            "updated_at = %s, resume_status = %s, policy = %s, policy_version = %s, approvers_needed = %s, "
            "verdict = %s::jsonb, rma_number = %s, return_site = %s, basis_kind = %s, basis_number = %s, "
            "holds_count = %s, pending_credit = %s::jsonb, credit_invoice = %s::jsonb, "
            "parked_events = %s::jsonb, lifecycle = %s::jsonb WHERE id = %s",
            (
                str(state.status),
                status_changed,
                state.updated_at,
                state.updated_at,
                None if state.resume is None else str(state.resume),
                state.policy or None,
                state.policy_version or None,
                state.approvers_needed,
                _jsonb(state.verdict),
                state.rma_number,
                state.return_site,
                basis.get("kind"),
                basis.get("number"),
                state.holds,
                _jsonb(state.pending_credit),
                _jsonb(state.credit_invoice),
                _jsonb(state.parked),
                _jsonb(working),
                state.return_id,
            ),
        )
        if updated.rowcount != 1:  # its partner and external id (or request) belong to another return
            raise PermanentDeliveryFailure(
                f"return {state.return_id} cannot be recorded: partner {state.partner} already has a return "
                f"with external id {state.external_id} (or its request message) under another id"
            )

    async def _write_timeline(
        self, conn: AsyncConnection[Any], return_id: str, entries: list[TimelineEntry]
    ) -> None:
        if not entries:
            return
        async with conn.cursor() as cursor:
            await cursor.executemany(
                f"INSERT INTO {TIMELINE_ENTRIES} (return_id, at, action, actor, message_id, from_status, "
                "to_status, rule, documents, detail, dead_letter) "
                "VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s::jsonb)",
                [
                    (
                        return_id,
                        entry.at,
                        entry.action,
                        _jsonb(entry.actor),
                        entry.message_id,
                        entry.from_status,
                        entry.to_status,
                        _jsonb(entry.rule),
                        _jsonb(entry.documents),
                        entry.detail,
                        _jsonb(entry.dead_letter),
                    )
                    for entry in entries
                ],
            )

    async def _write_queues(self, conn: AsyncConnection[Any], state: ReturnState, change: Change) -> None:
        """Holds and inspection tasks the return entered or left (approvals are its status)."""
        for (kind, *_), rank in change.queues.items():
            if kind == "holds" and rank is not None:
                hold = state.hold
                await conn.execute(
                    f"INSERT INTO {HOLDS_TABLE} (return_id, number, reason, held_by, held_at, resume_status) "
                    "VALUES (%s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT DO NOTHING",
                    (
                        state.return_id,
                        max(1, state.holds),
                        hold.reason if hold else "",
                        _jsonb(hold.by if hold else {}),
                        dt.datetime.fromtimestamp(rank, dt.UTC),
                        str(state.resume or ""),
                    ),
                )
            elif kind == "holds":
                released = next((e for e in change.timeline if e.from_status == "on_hold"), None)
                await conn.execute(
                    f"UPDATE {HOLDS_TABLE} SET released_by = %s::jsonb, released_at = %s, "
                    "release_reason = %s, invoice_reference = %s::jsonb "
                    "WHERE return_id = %s AND released_at IS NULL",
                    (
                        _jsonb(released.actor if released else {"type": "system", "id": "lifecycle"}),
                        released.at if released else state.updated_at,
                        released.detail if released else None,
                        _jsonb(state.credit_invoice),
                        state.return_id,
                    ),
                )
            elif kind == "inspections" and rank is not None and state.inspection is not None:
                task = state.inspection
                await conn.execute(
                    f"INSERT INTO {INSPECTIONS} (task_number, return_id, site, priority, due_by, rule, "
                    "raised_by, requested_at) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s) "
                    "ON CONFLICT (return_id) DO UPDATE SET site = excluded.site, "
                    "priority = excluded.priority, due_by = excluded.due_by, rule = excluded.rule, "
                    "raised_by = excluded.raised_by",
                    (
                        task.task_number,
                        state.return_id,
                        task.site,
                        task.priority,
                        _moment(task.due_by),
                        _jsonb(task.rule),
                        task.event,
                        _moment(task.requested_at),
                    ),
                )
            elif kind == "inspections" and rank is None:
                inspected = next((e for e in change.timeline if e.to_status == "inspected"), None)
                await conn.execute(
                    f"UPDATE {INSPECTIONS} SET inspector = %s::jsonb, inspected_at = %s, result = %s::jsonb "
                    "WHERE return_id = %s AND inspected_at IS NULL",
                    (
                        _jsonb(inspected.actor if inspected else None),
                        inspected.at if inspected else state.updated_at,
                        _jsonb(change.inspected or {}),
                        state.return_id,
                    ),
                )

    async def _write_documents(
        self, conn: AsyncConnection[Any], state: ReturnState, before: list[dict[str, str]], message_id: str
    ) -> None:
        """Documents the systems posted for the return that this event brought."""
        known = {_json.encode(d) for d in before}
        rows = [
            (
                state.return_id,
                str(d.get("system", "")),
                str(d.get("document_type") or d.get("kind") or ""),
                d.get("id"),
                d.get("number"),
                d.get("status"),
                message_id,
            )
            for d in state.documents
            if _json.encode(d) not in known and (d.get("id") or d.get("number"))
        ]
        if rows:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    f"INSERT INTO {DOCUMENTS} "
                    "(return_id, system, kind, system_id, number, status, message_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    rows,
                )

    async def _write_decisions(
        self, conn: AsyncConnection[Any], return_id: str, decisions: list[ApprovalDecision]
    ) -> None:
        for d in decisions:
            await conn.execute(
                f"INSERT INTO {APPROVALS_TABLE} (return_id, message_id, decision, approver, "
                "approver_partner, decided_at, rule, comment, rejection_reason) "
                "VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s::jsonb, %s, %s) ON CONFLICT DO NOTHING",
                (
                    return_id,
                    d.message_id,
                    d.decision,
                    _jsonb(d.approver),
                    d.approver_partner,
                    d.decided_at,
                    _jsonb(d.rule),
                    d.comment,
                    d.rejection_reason,
                ),
            )

    async def _applied(
        self, conn: AsyncConnection[Any], return_id: str, message_id: str, contract: str
    ) -> None:
        await conn.execute(
            f"INSERT INTO {APPLIED_EVENTS} (return_id, message_id, contract) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (return_id, message_id, contract),
        )

    async def _write_outbox(
        self,
        conn: AsyncConnection[Any],
        return_id: str,
        source_message_id: str,
        partner: str,
        emitted: list[dict[str, Any]],
    ) -> bool:
        """The commands, in the order decided, each in the envelope the relay publishes as it is."""
        if not emitted:
            return False
        rows = []
        for fields in emitted:
            event = msgspec.convert(fields, Emitted)
            envelope = event.envelope(
                partner=partner, correlation_id=event.return_id or return_id, causation_id=source_message_id
            )
            rows.append(
                (
                    envelope.message_id,
                    source_message_id,
                    return_id,
                    self._exchange,
                    event.message_type,
                    _jsonb(condition_headers(partner, event.payload)),
                    _json.encode(envelope),
                )
            )
        async with conn.cursor() as cursor:
            await cursor.executemany(
                f"INSERT INTO {OUTBOX} (message_id, source_message_id, return_id, exchange, routing_key, "
                "headers, body) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s) "
                "ON CONFLICT (exchange, message_id) DO NOTHING",
                rows,
            )
        return True
