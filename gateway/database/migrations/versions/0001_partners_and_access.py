"""partners, API keys, webhook endpoints, idempotency keys; the application role

Revision 0001, the first. Reversible: the downgrade drops the tables and takes back what the
role was granted in this database, but leaves the role itself: a role belongs to the whole
PostgreSQL cluster, where other databases (another deployment, a test run) may still use it.
``DROP ROLE returns_gateway_app`` by hand once no database needs it.

What the gateway keeps about who may call it. Secrets are never stored: an API key only as
the SHA-256 of its secret (256 random bits, so unsalted is safe), a webhook signing secret only
encrypted (a Fernet token under RGW_SECRETS_KEY; it must be recoverable to sign).
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APP = "returns_gateway_app"


def upgrade() -> None:
    # The role may already exist (created for another database of the cluster); two migrations
    # racing to create it would otherwise fail on the second.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{APP}') THEN
                CREATE ROLE {APP} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$
        """
    )
    op.execute(f"COMMENT ON ROLE {APP} IS 'returns-gateway: what the running gateway may do (no DDL)'")
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' TO {APP}';
        END
        $$
        """
    )
    op.execute(f"GRANT SELECT ON alembic_version TO {APP}")

    op.execute(
        """
        CREATE TABLE partners (
            id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
            name        text,
            rate_limit  integer CHECK (rate_limit > 0),
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("COMMENT ON COLUMN partners.rate_limit IS 'requests per second; NULL: RGW_DEFAULT_RATE_LIMIT'")

    op.execute(
        """
        CREATE TABLE api_keys (
            id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
            partner_id  text NOT NULL REFERENCES partners (id),
            key_hash    text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
            scopes      text[] NOT NULL CHECK (cardinality(scopes) > 0),
            label       text NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  text,
            revoked_at  timestamptz,
            revoked_by  text
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN api_keys.key_hash IS 'SHA-256 (hex) of the secret; the secret is never stored'"
    )
    op.execute("CREATE INDEX api_keys_partner_idx ON api_keys (partner_id)")

    op.execute(
        """
        CREATE TABLE webhook_endpoints (
            id                 text PRIMARY KEY,
            partner_id         text NOT NULL REFERENCES partners (id),
            url                text NOT NULL CHECK (length(url) <= 2048),
            enabled            boolean NOT NULL DEFAULT true,
            secret_ciphertext  text NOT NULL,
            created_at         timestamptz NOT NULL DEFAULT now(),
            secret_rotated_at  timestamptz
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN webhook_endpoints.secret_ciphertext IS "
        "'Fernet token of the signing secret under RGW_SECRETS_KEY; never the secret in clear'"
    )
    op.execute("CREATE INDEX webhook_endpoints_partner_idx ON webhook_endpoints (partner_id, created_at)")

    op.execute(
        """
        CREATE TABLE idempotency_keys (
            partner_id        text NOT NULL REFERENCES partners (id),
            key               text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
            fingerprint       text NOT NULL,
            state             text NOT NULL CHECK (state IN ('in_flight', 'done', 'failed')),
            return_id         text,
            message_id        text,
            token             text,
            lease_until       timestamptz,
            response_status   smallint,
            response_headers  jsonb,
            response_body     bytea,
            created_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now(),
            expires_at        timestamptz NOT NULL,
            PRIMARY KEY (partner_id, key),
            CHECK (state <> 'in_flight' OR (token IS NOT NULL AND lease_until IS NOT NULL)),
            CHECK (state <> 'done' OR response_status IS NOT NULL)
        )
        """
    )
    op.execute(
        "COMMENT ON COLUMN idempotency_keys.key IS "
        "'SHA-256 (hex) of the Idempotency-Key header, as Redis keys it (so its entries can be imported)'"
    )
    op.execute(
        "COMMENT ON COLUMN idempotency_keys.fingerprint IS "
        "'SHA-256 of the request payload (keys sorted): the same key with another payload is refused'"
    )
    op.execute("CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at)")
    op.execute(
        "CREATE INDEX idempotency_keys_return_idx ON idempotency_keys (partner_id, return_id) "
        "WHERE return_id IS NOT NULL"
    )

    # Keys are revoked, never deleted (the audit trail names them); partners are not deleted.
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON partners, api_keys TO {APP}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints, idempotency_keys TO {APP}")


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys, webhook_endpoints, api_keys, partners")
    op.execute(f"REVOKE ALL ON alembic_version FROM {APP}")
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE 'REVOKE USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' FROM {APP}';
        END
        $$
        """
    )
