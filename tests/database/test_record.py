"""What the schema itself guarantees, whatever the code above it does: one return per partner's
external id, one record per idempotency key, two approvals from two people, and an audit trail
the gateway's own role can add to but never rewrite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from gateway.database import tables as t
from gateway.database.tables import APP_ROLE

REQUEST = '{"external_id": "RMA-1"}'


@pytest.fixture
def app(database: str) -> Iterator[psycopg.Connection]:
    """A connection acting as the application role (SET ROLE: its privileges, not the owner's);
    what it did is rolled back afterwards."""
    with psycopg.connect(database) as connection:
        connection.execute(f"SET ROLE {APP_ROLE}")
        yield connection
        connection.rollback()


def _partner(db: psycopg.Connection) -> str:
    partner = f"p-{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO partners (id) VALUES (%s)", [partner])
    return partner


def _return(db: psycopg.Connection, partner: str, external_id: str = "RMA-1") -> str:
    return_id = f"ret_{uuid.uuid4().hex}"
    db.execute(
        """INSERT INTO returns (id, partner_id, external_id, channel, customer_account, reason_code,
               requested_date, contract, contract_version, message_id, request, accepted_at,
               updated_at, status_since)
           VALUES (%s, %s, %s, 'api', 'C-1', 'defective', '2026-12-01', 'return-request', 'v1',
               %s, %s, now(), now(), now())""",
        [return_id, partner, external_id, f"msg_{uuid.uuid4().hex}", REQUEST],
    )
    return return_id


def _note(db: psycopg.Connection, return_id: str) -> int:
    row = db.execute(
        """INSERT INTO timeline_entries (return_id, at, action, actor, message_id)
           VALUES (%s, now(), 'requested', '{"type": "system", "id": "test"}', 'msg_1') RETURNING id""",
        [return_id],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_app_role_adds_to_the_timeline(app: psycopg.Connection) -> None:
    return_id = _return(app, _partner(app))
    first, second = _note(app, return_id), _note(app, return_id)  # identity ids, no sequence grant needed
    assert second > first
    app.execute("UPDATE returns SET status = 'validated', updated_at = now() WHERE id = %s", [return_id])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE timeline_entries SET detail = 'rewritten' WHERE id = %s",
        "DELETE FROM timeline_entries WHERE id = %s",
    ],
)
def test_the_app_role_cannot_rewrite_the_timeline(app: psycopg.Connection, statement: str) -> None:
    entry = _note(app, _return(app, _partner(app)))
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table timeline_entries"):
        app.execute(statement, [entry])


def test_the_app_role_cannot_truncate_or_change_the_schema(app: psycopg.Connection) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute("TRUNCATE timeline_entries")
    app.rollback()
    app.execute(f"SET ROLE {APP_ROLE}")
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute("ALTER TABLE returns ADD COLUMN sneaky text")


@pytest.mark.parametrize("table", sorted(t.APPEND_ONLY))
def test_append_only_tables_grant_only_select_and_insert(database: str, table: str) -> None:
    with psycopg.connect(database) as db:
        rows = db.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = %s AND table_name = %s",
            [APP_ROLE, table],
        ).fetchall()
    assert sorted(row[0] for row in rows) == ["INSERT", "SELECT"]


def test_every_table_is_granted_to_the_app_role(database: str) -> None:
    with psycopg.connect(database) as db:
        rows = db.execute(
            "SELECT DISTINCT table_name FROM information_schema.role_table_grants"
            " WHERE grantee = %s AND privilege_type = 'SELECT'",
            [APP_ROLE],
        ).fetchall()
    assert {row[0] for row in rows} == {*t.TABLES, t.VERSION_TABLE}


def test_one_return_per_partner_and_external_id(app: psycopg.Connection) -> None:
    partner, other = _partner(app), _partner(app)
    _return(app, partner, "RMA-7")
    _return(app, other, "RMA-7")  # another partner's RMA-7 is another return
    with pytest.raises(errors.UniqueViolation, match="returns_partner_id_external_id_key"):
        _return(app, partner, "RMA-7")


def test_one_record_per_partner_and_idempotency_key(app: psycopg.Connection) -> None:
    partner, other = _partner(app), _partner(app)
    insert = """INSERT INTO idempotency_keys (partner_id, key, fingerprint, state, expires_at)
                VALUES (%s, 'key-1', 'f', 'failed', now() + interval '1 day')"""
    app.execute(insert, [partner])
    app.execute(insert, [other])
    with pytest.raises(errors.UniqueViolation, match="idempotency_keys_pkey"):
        app.execute(insert, [partner])


def test_an_idempotency_key_in_flight_holds_a_lease(app: psycopg.Connection) -> None:
    with pytest.raises(errors.CheckViolation):
        app.execute(
            """INSERT INTO idempotency_keys (partner_id, key, fingerprint, state, expires_at)
               VALUES (%s, 'k', 'f', 'in_flight', now())""",
            [_partner(app)],
        )


def test_two_approvals_come_from_two_people(app: psycopg.Connection) -> None:
    return_id = _return(app, _partner(app))
    insert = """INSERT INTO approvals (return_id, message_id, decision, approver, decided_at)
                VALUES (%s, %s, 'approve', %s, now())"""
    app.execute(insert, [return_id, "msg_a", '{"type": "user", "id": "anna"}'])
    app.execute(insert, [return_id, "msg_b", '{"type": "user", "id": "ben"}'])
    with pytest.raises(errors.UniqueViolation, match="approvals_one_per_approver"):
        app.execute(insert, [return_id, "msg_c", '{"type": "user", "id": "anna"}'])


def test_the_status_is_the_canonical_vocabulary(app: psycopg.Connection) -> None:
    return_id = _return(app, _partner(app))
    with pytest.raises(errors.CheckViolation, match="returns_status_check"):
        app.execute("UPDATE returns SET status = 'shipped_back' WHERE id = %s", [return_id])


def test_an_api_key_is_kept_only_as_a_hash(app: psycopg.Connection) -> None:
    with pytest.raises(errors.CheckViolation, match="api_keys_key_hash_check"):
        app.execute(
            "INSERT INTO api_keys (id, partner_id, key_hash, scopes) VALUES ('0123456789ab', %s, %s, %s)",
            [_partner(app), "rgw_0123456789ab_the-secret-itself", ["returns:write"]],
        )


def test_the_ack_control_numbers_cycle_within_nine_digits(app: psycopg.Connection) -> None:
    first = app.execute(f"SELECT nextval('{t.EDI_ACK_CONTROL_SEQUENCE}')").fetchone()
    assert first is not None and 1 <= first[0] <= 999_999_999
