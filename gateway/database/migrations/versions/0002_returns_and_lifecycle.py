"""returns, their lines, lifecycle state, timeline, approvals, holds, inspections, documents, outbox

Revision 0002, after 0001. Reversible: the downgrade drops these tables (and their data).

Designed from the Redis model it replaces (``gateway.records``, ``gateway.lifecycle``): the
``ReturnState`` of a return becomes columns of ``returns`` (what is searched or counted) and
``jsonb`` (what is a contract payload or a rule's verdict); its lists become tables (timeline,
approvals, holds, inspections, documents); the applied-event set and the outbox of commands are
tables written in the same transaction as the change they record. Money is ``numeric(21, 6)``
with its currency (the contracts' DecimalAmount: 15 integer digits, 6 decimals), quantities
``numeric(18, 6)`` (fractions for KGM, MTR...), moments ``timestamptz``.

Append-only for the application role (SELECT, INSERT): ``timeline_entries``, ``approvals``
and ``applied_events``. It never deletes ``returns`` or their lines either (personal data is
cleared by UPDATE when the retention policy says so; amounts and the audit trail stay).
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APP = "returns_gateway_app"
STATUSES = (
    "requested",
    "validated",
    "pending_approval",
    "authorized",
    "rejected",
    "label_issued",
    "in_transit",
    "received",
    "inspected",
    "dispositioned",
    "credited",
    "closed",
    "validation_failed",
    "posting_failed",
    "on_hold",
)
"""The contracts' ReturnStatus as of this revision; a new status needs a migration."""


def upgrade() -> None:
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    op.execute(
        f"""
        CREATE TABLE returns (
            id                text PRIMARY KEY CHECK (id ~ '^ret_[0-9a-f]{{32}}$'),
            partner_id        text NOT NULL REFERENCES partners (id),
            external_id       text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 64),
            channel           text NOT NULL,
            customer_account  text NOT NULL,
            customer_name     text,
            reason_code       text NOT NULL,
            requested_date    date NOT NULL,
            contract          text NOT NULL,
            contract_version  text NOT NULL,
            message_id        text NOT NULL UNIQUE,
            request           jsonb NOT NULL CHECK (jsonb_typeof(request) = 'object'),
            accepted_at       timestamptz NOT NULL,
            published_at      timestamptz,
            updated_at        timestamptz NOT NULL,
            status            text NOT NULL DEFAULT 'requested' CHECK (status IN ({statuses})),
            status_since      timestamptz NOT NULL,
            resume_status     text CHECK (resume_status IN ({statuses})),
            policy            text,
            policy_version    text,
            approvers_needed  smallint NOT NULL DEFAULT 0 CHECK (approvers_needed >= 0),
            verdict           jsonb,
            rma_number        text,
            return_site       text,
            basis_kind        text,
            basis_number      text,
            holds_count       integer NOT NULL DEFAULT 0 CHECK (holds_count >= 0),
            pending_credit    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(pending_credit) = 'array'),
            credit_invoice    jsonb,
            parked_events     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(parked_events) = 'array'),
            lifecycle         jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(lifecycle) = 'object'),
            UNIQUE (partner_id, external_id),
            CHECK ((basis_kind IS NULL) = (basis_number IS NULL))
        )
        """
    )
    for column, says in (
        ("request", "the return-request payload as accepted (contract and version beside it)"),
        (
            "published_at",
            "when the broker confirmed the request; NULL: reserved by the intake, not published",
        ),
        ("status_since", "when the return entered its status: the rank in the approvals and holds queues"),
        ("resume_status", "the status a parked return (posting_failed, on_hold) left and goes back to"),
        ("verdict", "the validation verdict of the policy rules"),
        ("basis_kind", "the ERP document (shipment, invoice, order) returned quantities count against"),
        ("parked_events", "events that came before the return was ready for them, applied later"),
        (
            "lifecycle",
            "the rest of the lifecycle''s working state (documents as posted, approvals, the open hold and "
            "inspection task, authorized lines, dead-letter exceptions), written with the columns",
        ),
    ):
        op.execute(f"COMMENT ON COLUMN returns.{column} IS '{says}'")
    for name, columns in (
        ("returns_partner_accepted_idx", "partner_id, accepted_at DESC"),
        ("returns_partner_updated_idx", "partner_id, updated_at DESC"),
        ("returns_accepted_idx", "accepted_at DESC"),
        ("returns_updated_idx", "updated_at DESC"),
        ("returns_status_idx", "status, status_since"),
        ("returns_reason_idx", "reason_code, accepted_at DESC"),
        ("returns_channel_idx", "channel, accepted_at DESC"),
        ("returns_customer_idx", "customer_account, accepted_at DESC"),
        ("returns_external_id_idx", "external_id"),
    ):
        op.execute(f"CREATE INDEX {name} ON returns ({columns})")
    op.execute("CREATE INDEX returns_rma_idx ON returns (rma_number) WHERE rma_number IS NOT NULL")

    op.execute(
        """
        CREATE TABLE return_lines (
            return_id            text NOT NULL REFERENCES returns (id),
            line_number          integer NOT NULL CHECK (line_number > 0),
            sku                  text NOT NULL,
            description          text,
            quantity             numeric(18, 6) NOT NULL CHECK (quantity > 0),
            unit_of_measure      text NOT NULL,
            unit_price           numeric(21, 6) NOT NULL CHECK (unit_price >= 0),
            currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            reason_code          text,
            order_line_number    integer,
            serial_numbers       text[] NOT NULL DEFAULT '{}',
            lot_numbers          text[] NOT NULL DEFAULT '{}',
            authorized_quantity  numeric(18, 6) CHECK (authorized_quantity >= 0),
            PRIMARY KEY (return_id, line_number)
        )
        """
    )
    op.execute("CREATE INDEX return_lines_sku_idx ON return_lines (sku)")

    op.execute(
        """
        CREATE TABLE returned_quantities (
            partner_id       text NOT NULL REFERENCES partners (id),
            document_kind    text NOT NULL,
            document_number  text NOT NULL,
            sku              text NOT NULL,
            quantity         numeric(18, 6) NOT NULL DEFAULT 0 CHECK (quantity >= 0),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (partner_id, document_kind, document_number, sku)
        )
        """
    )

    op.execute(
        """
        CREATE TABLE timeline_entries (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            return_id    text NOT NULL REFERENCES returns (id),
            at           timestamptz NOT NULL,
            action       text NOT NULL,
            actor        jsonb NOT NULL
                         CHECK (jsonb_typeof(actor) = 'object' AND actor ? 'type' AND actor ? 'id'),
            message_id   text NOT NULL,
            from_status  text,
            to_status    text,
            rule         jsonb,
            documents    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(documents) = 'array'),
            detail       text,
            dead_letter  jsonb,
            recorded_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE timeline_entries IS "
        "'each return''s audit trail: append-only (the application role may not UPDATE or DELETE)'"
    )
    op.execute("CREATE INDEX timeline_entries_return_idx ON timeline_entries (return_id, id)")
    op.execute("CREATE INDEX timeline_entries_action_idx ON timeline_entries (action, at)")
    op.execute(
        "CREATE INDEX timeline_entries_status_idx ON timeline_entries (to_status, at) "
        "WHERE to_status IS NOT NULL"
    )

    op.execute(
        """
        CREATE TABLE approvals (
            id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            return_id         text NOT NULL REFERENCES returns (id),
            message_id        text NOT NULL UNIQUE,
            decision          text NOT NULL CHECK (decision IN ('approve', 'reject')),
            approver          jsonb NOT NULL CHECK (jsonb_typeof(approver) = 'object' AND approver ? 'id'),
            approver_partner  text,
            decided_at        timestamptz NOT NULL,
            rule              jsonb,
            comment           text,
            rejection_reason  text,
            recorded_at       timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One decision per approver and return: two approvals must come from two people.
    op.execute("CREATE UNIQUE INDEX approvals_one_per_approver ON approvals (return_id, (approver ->> 'id'))")

    op.execute(
        """
        CREATE TABLE holds (
            return_id          text NOT NULL REFERENCES returns (id),
            number             integer NOT NULL CHECK (number > 0),
            reason             text NOT NULL,
            held_by            jsonb NOT NULL,
            held_at            timestamptz NOT NULL,
            resume_status      text NOT NULL,
            released_by        jsonb,
            released_at        timestamptz,
            release_reason     text,
            invoice_reference  jsonb,
            PRIMARY KEY (return_id, number),
            CHECK ((released_at IS NULL) = (released_by IS NULL))
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX holds_one_open_idx ON holds (return_id) WHERE released_at IS NULL")
    op.execute("CREATE INDEX holds_open_idx ON holds (held_at) WHERE released_at IS NULL")

    op.execute(
        """
        CREATE TABLE inspections (
            task_number   text PRIMARY KEY,
            return_id     text NOT NULL UNIQUE REFERENCES returns (id),
            site          text,
            priority      text NOT NULL,
            due_by        timestamptz NOT NULL,
            rule          jsonb NOT NULL,
            raised_by     text NOT NULL,
            requested_at  timestamptz NOT NULL,
            inspector     jsonb,
            inspected_at  timestamptz,
            result        jsonb,
            CHECK ((inspected_at IS NULL) = (result IS NULL))
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN inspections.raised_by IS "
        "'the event that raised the task: receipt or carrier_delivery'"
    )
    op.execute("CREATE INDEX inspections_due_idx ON inspections (due_by) WHERE inspected_at IS NULL")

    op.execute(
        """
        CREATE TABLE documents (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            return_id    text NOT NULL REFERENCES returns (id),
            system       text NOT NULL,
            kind         text NOT NULL,
            system_id    text,
            number       text,
            status       text,
            amount       numeric(21, 6),
            currency     char(3) CHECK (currency ~ '^[A-Z]{3}$'),
            message_id   text,
            recorded_at  timestamptz NOT NULL DEFAULT now(),
            CHECK (system_id IS NOT NULL OR number IS NOT NULL),
            CHECK ((amount IS NULL) = (currency IS NULL)),
            UNIQUE NULLS NOT DISTINCT (return_id, system, kind, system_id, number)
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE documents IS "
        "'documents each system posted for a return: RMA, credit memo, receipt, label, tracking, case...'"
    )
    op.execute("CREATE INDEX documents_number_idx ON documents (kind, number)")
    op.execute("CREATE INDEX documents_system_id_idx ON documents (system, system_id)")

    op.execute(
        """
        CREATE TABLE applied_events (
            return_id   text NOT NULL REFERENCES returns (id),
            message_id  text NOT NULL,
            contract    text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (return_id, message_id)
        )
        """
    )

    op.execute(
        """
        CREATE TABLE outbox (
            id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_id         text NOT NULL,
            source_message_id  text NOT NULL,
            return_id          text REFERENCES returns (id),
            exchange           text NOT NULL,
            routing_key        text NOT NULL,
            headers            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
            body               bytea NOT NULL,
            content_type       text NOT NULL DEFAULT 'application/json',
            created_at         timestamptz NOT NULL DEFAULT now(),
            sent_at            timestamptz,
            attempts           integer NOT NULL DEFAULT 0,
            last_error         text,
            UNIQUE (exchange, message_id)
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN outbox.source_message_id IS "
        "'the event whose change decided this message (published again on its redelivery)'"
    )
    op.execute("CREATE INDEX outbox_unsent_idx ON outbox (exchange, id) WHERE sent_at IS NULL")
    op.execute("CREATE INDEX outbox_sent_idx ON outbox (exchange, sent_at) WHERE sent_at IS NOT NULL")
    op.execute("CREATE INDEX outbox_source_idx ON outbox (source_message_id)")

    op.execute(f"GRANT SELECT, INSERT ON timeline_entries, approvals, applied_events TO {APP}")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE ON returns, return_lines, holds, inspections, documents TO {APP}"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON returned_quantities, outbox TO {APP}")


def downgrade() -> None:
    op.execute(
        "DROP TABLE outbox, applied_events, documents, inspections, holds, approvals, "
        "timeline_entries, returned_quantities, return_lines, returns"
    )
