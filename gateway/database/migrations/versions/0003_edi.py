"""EDI: interchanges received, their 997/TA1/CONTRL, returns' origins, the 180/RETINS sent

Revision 0003, after 0002. Reversible: the downgrade drops these tables and the sequence.

From ``gateway.edi`` (intake, ``_origin``, ``_responses``): an interchange is taken once per
partner, standard and ``interchange_id`` (sender and ISA13 / UNB 0020); its fingerprint tells a
re-send (answered with the acknowledgment kept here) from another interchange under a control
number already used (refused). A row is written once the interchange is acknowledged, with its
acknowledgment, in one transaction; while it is being processed, the claim is a lease in Redis
(which may be lost: the unique key here still takes the interchange once). Test interchanges
are recorded too, as before (``test``; their ``interchange_id`` ends in ``.test``, so their
control numbers are counted apart from production's).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP = "returns_gateway_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE edi_interchanges (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            partner_id      text NOT NULL REFERENCES partners (id),
            standard        text NOT NULL CHECK (standard IN ('x12', 'edifact')),
            interchange_id  text NOT NULL CHECK (length(interchange_id) <= 64),
            sender          text NOT NULL,
            control_number  text NOT NULL,
            fingerprint     text CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
            test            boolean NOT NULL DEFAULT false,
            received_at     timestamptz NOT NULL DEFAULT now(),
            UNIQUE (partner_id, standard, interchange_id)
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN edi_interchanges.fingerprint IS "
        "'SHA-256 of the interchange as received (a BOM and surrounding blanks aside); NULL in "
        "records kept before it was (imported from Redis), which replay whatever is sent'"
    )

    op.execute(
        """
        CREATE TABLE edi_acknowledgements (
            interchange_id  bigint PRIMARY KEY REFERENCES edi_interchanges (id),
            kind            text NOT NULL CHECK (kind IN ('997', 'TA1', 'CONTRL')),
            control_number  integer CHECK (control_number BETWEEN 1 AND 999999999),
            body            text NOT NULL,
            returns         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(returns) = 'object'),
            created_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN edi_acknowledgements.returns IS "
        "'ST02 (UNH 0062) -> the return each set became; for a test interchange, the external id "
        "it would have had'"
    )
    op.execute(
        "COMMENT ON COLUMN edi_acknowledgements.control_number IS "
        "'ISA13 / UNB 0020 of the acknowledgment; NULL when imported from Redis, which did not keep it apart'"
    )
    op.execute("CREATE SEQUENCE edi_ack_control_seq AS integer MINVALUE 1 MAXVALUE 999999999 CYCLE")

    op.execute(
        """
        CREATE TABLE edi_origins (
            return_id       text PRIMARY KEY REFERENCES returns (id),
            interchange_id  bigint NOT NULL REFERENCES edi_interchanges (id),
            transaction     text NOT NULL,
            reference       text NOT NULL,
            origin          jsonb NOT NULL CHECK (jsonb_typeof(origin) = 'object')
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN edi_origins.origin IS "
        "'what the response needs: ids and qualifiers, version, each line''s item ids and quantities'"
    )
    op.execute("CREATE INDEX edi_origins_interchange_idx ON edi_origins (interchange_id)")

    op.execute(
        """
        CREATE TABLE edi_responses (
            id              text PRIMARY KEY,
            return_id       text NOT NULL REFERENCES returns (id),
            partner_id      text NOT NULL REFERENCES partners (id),
            kind            text NOT NULL CHECK (kind IN ('180', 'RETINS')),
            decision        text NOT NULL,
            control_number  integer NOT NULL CHECK (control_number BETWEEN 1 AND 999999999),
            body            text NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX edi_responses_return_idx ON edi_responses (return_id, created_at)")

    op.execute(
        """
        CREATE TABLE edi_response_controls (
            partner_id  text PRIMARY KEY REFERENCES partners (id),
            last_value  integer NOT NULL DEFAULT 0 CHECK (last_value BETWEEN 0 AND 999999999)
        )
        """
    )

    op.execute(
        f"GRANT SELECT, INSERT ON edi_interchanges, edi_acknowledgements, edi_origins, edi_responses TO {APP}"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON edi_response_controls TO {APP}")
    op.execute(f"GRANT USAGE ON SEQUENCE edi_ack_control_seq TO {APP}")


def downgrade() -> None:
    op.execute(
        "DROP TABLE edi_response_controls, edi_responses, edi_origins, edi_acknowledgements, edi_interchanges"
    )
    op.execute("DROP SEQUENCE edi_ack_control_seq")
