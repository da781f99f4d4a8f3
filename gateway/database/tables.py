"""Names of the gateway's PostgreSQL tables and roles, in one place so every store agrees on them.

The migrations (``gateway/database/migrations/versions``) spell these names out as they were
when each migration was written, as migrations must; ``tests/database`` checks that every name
here exists in a database upgraded to the head revision.

Append-only tables (:data:`APPEND_ONLY`), the audit trail and the events applied: the
application role may read and add rows, never change or remove one.
"""

from __future__ import annotations

from typing import Final

APP_ROLE: Final = "returns_gateway_app"
"""The role the gateway's own login is to be a member of: what it may read and write, no DDL."""

VERSION_TABLE: Final = "alembic_version"
"""The schema's revision, kept by the migrations (one row)."""

# -- partners and access --------------------------------------------------------------------
PARTNERS: Final = "partners"
"""Tenants: id, name, their own requests-per-second limit."""
API_KEYS: Final = "api_keys"
"""Partners' API keys: SHA-256 of the secret (never the secret), scopes, label, revoked_at."""
WEBHOOK_ENDPOINTS: Final = "webhook_endpoints"
"""Where partners want their events; the signing secret as a Fernet token (RGW_SECRETS_KEY)."""
IDEMPOTENCY_KEYS: Final = "idempotency_keys"
"""One row per (partner, Idempotency-Key): the request's fingerprint, lease, response to replay."""

# -- returns and their lifecycle ------------------------------------------------------------
RETURNS: Final = "returns"
"""One row per return: unique per (partner, external id), the request as accepted, where it stands."""
RETURN_LINES: Final = "return_lines"
"""The lines requested (and the quantity authorized) per return."""
RETURNED_QUANTITIES: Final = "returned_quantities"
"""Quantities already authorized against one of a partner's ERP documents, per SKU."""
TIMELINE_ENTRIES: Final = "timeline_entries"
"""Each return's audit trail (append-only)."""
APPROVALS: Final = "approvals"
"""People's approval decisions (append-only; one per approver and return)."""
HOLDS: Final = "holds"
"""Each time a return was held, by whom and why, and its release."""
INSPECTIONS: Final = "inspections"
"""The inspection task of a return and, once inspected, its result."""
DOCUMENTS: Final = "documents"
"""Documents each system posted for a return: RMA, credit memo, receipt, label, case..."""
APPLIED_EVENTS: Final = "applied_events"
"""Events already applied to a return (a redelivery changes nothing; append-only)."""
OUTBOX: Final = "outbox"
"""Messages the lifecycle decided to publish, written with the change that decided them."""

# -- EDI ------------------------------------------------------------------------------------
EDI_INTERCHANGES: Final = "edi_interchanges"
"""Inbound interchanges, taken once by partner, standard, sender and control number."""
EDI_ACKNOWLEDGEMENTS: Final = "edi_acknowledgements"
"""The 997, TA1 or CONTRL answered for an interchange."""
EDI_ORIGINS: Final = "edi_origins"
"""For a return that came by EDI: the transaction it came from, to answer it in kind."""
EDI_RESPONSES: Final = "edi_responses"
"""The 180s and RETINSs sent for returns' decisions."""
EDI_RESPONSE_CONTROLS: Final = "edi_response_controls"
"""Per partner: the last control number of the responses sent to it."""
EDI_ACK_CONTROL_SEQUENCE: Final = "edi_ack_control_seq"
"""Control numbers of the acknowledgments we send (a sequence, 1 to 999999999, cycling)."""

# -- dead letters ---------------------------------------------------------------------------
DEAD_LETTER_ACTIONS: Final = "dead_letter_actions"
"""What operators did to dead letters: replay or discard, who, why (append-only)."""

TABLES: Final = (
    PARTNERS,
    API_KEYS,
    WEBHOOK_ENDPOINTS,
    IDEMPOTENCY_KEYS,
    RETURNS,
    RETURN_LINES,
    RETURNED_QUANTITIES,
    TIMELINE_ENTRIES,
    APPROVALS,
    HOLDS,
    INSPECTIONS,
    DOCUMENTS,
    APPLIED_EVENTS,
    OUTBOX,
    EDI_INTERCHANGES,
    EDI_ACKNOWLEDGEMENTS,
    EDI_ORIGINS,
    EDI_RESPONSES,
    EDI_RESPONSE_CONTROLS,
    DEAD_LETTER_ACTIONS,
)
"""Every table of the record (the version table aside)."""

APPEND_ONLY: Final = frozenset({TIMELINE_ENTRIES, APPROVALS, APPLIED_EVENTS, DEAD_LETTER_ACTIONS})
"""Tables on which :data:`APP_ROLE` has SELECT and INSERT only."""
