"""PostgreSQL, the system of record to be: connections and their pool (psycopg 3), error
translation (:func:`database_errors`), the schema's migrations (alembic, shipped in
``migrations/``) and the start-up check that the schema is the one the code needs
(:func:`ensure_schema_current`). Table names live in :mod:`gateway.database.tables`.

Beside :mod:`gateway.storage` (Redis), which keeps what may be lost; see ``docs/data.md``.
"""

from gateway.database._connect import (
    CONNECT_TIMEOUT_SECONDS,
    connect,
    database_errors,
    describe,
    open_database,
    open_pool,
)
from gateway.database._schema import (
    MIGRATIONS,
    current_revision,
    downgrade,
    ensure_schema_current,
    head_revision,
    revisions,
    upgrade,
    upgrade_sql,
)

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "MIGRATIONS",
    "connect",
    "current_revision",
    "database_errors",
    "describe",
    "downgrade",
    "ensure_schema_current",
    "head_revision",
    "open_database",
    "open_pool",
    "revisions",
    "upgrade",
    "upgrade_sql",
]
