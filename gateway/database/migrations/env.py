"""alembic's environment for the gateway's schema, run by ``returns-gateway db`` (never imported).

Online, :mod:`gateway.database._schema` hands over the connection to migrate
(``config.attributes["connection"]``); offline (``db upgrade --sql``) the SQL is written out for
PostgreSQL. Each migration runs in a transaction of its own with its version stamp, so a failed
one leaves the schema at the revision before it.
"""

from alembic import context

from gateway.database.tables import VERSION_TABLE

config = context.config
options = {"transaction_per_migration": True, "version_table": VERSION_TABLE, "target_metadata": None}

if context.is_offline_mode():
    context.configure(dialect_name="postgresql", literal_binds=True, transactional_ddl=True, **options)
    with context.begin_transaction():
        context.run_migrations()
else:
    context.configure(connection=config.attributes["connection"], **options)
    with context.begin_transaction():
        context.run_migrations()
