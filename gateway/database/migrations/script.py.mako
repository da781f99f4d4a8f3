"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}. Reversible: say so, or why not.
Grant the application role (returns_gateway_app) what it needs on each new table, and no more.
"""

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else 'op.execute("")'}


def downgrade() -> None:
    ${downgrades if downgrades else 'op.execute("")'}
