"""dead-letter actions: what operators replayed or discarded, who, and why (append-only)

Revision 0004, after 0003. Reversible: the downgrade drops the table (and the audit it holds).

From ``gateway.deadletters._audit``, whose Redis stream is capped at about 100,000 entries;
here nothing is dropped, and the application role may only read and add.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APP = "returns_gateway_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dead_letter_actions (
            id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at                 timestamptz NOT NULL,
            actor              text NOT NULL,
            action             text NOT NULL CHECK (action IN ('replay', 'discard')),
            connector          text NOT NULL,
            message_id         text NOT NULL,
            replayed_as        text,
            payload_corrected  boolean NOT NULL DEFAULT false,
            reason             text,
            note               text,
            CHECK (action <> 'discard' OR length(btrim(reason)) > 0)
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN dead_letter_actions.actor IS "
        "'key:<key id> through the API, cli:<OS user> from the command line'"
    )
    op.execute("CREATE INDEX dead_letter_actions_at_idx ON dead_letter_actions (at DESC)")
    op.execute("CREATE INDEX dead_letter_actions_message_idx ON dead_letter_actions (connector, message_id)")
    op.execute(f"GRANT SELECT, INSERT ON dead_letter_actions TO {APP}")


def downgrade() -> None:
    op.execute("DROP TABLE dead_letter_actions")
