"""The record of accepted returns: who sent what, and where it stands.

Kept in PostgreSQL (``returns``, ``return_lines`` and the ``idempotency_keys`` of return
requests: :class:`ReturnStore`), above :mod:`gateway.database` and the tenancy of
:mod:`gateway.auth` (a partner sees only its own returns), below everything that accepts or
reads a return. :func:`import_from_redis` copies what an older deployment kept in Redis.
"""

from gateway.records._import import import_from_redis
from gateway.records._returns import (
    INITIAL_STATUS,
    ReturnReceipt,
    ReturnRecord,
    ReturnResource,
    render_receipt,
    render_return,
)
from gateway.records._store import (
    Reservation,
    ReturnRequest,
    ReturnStore,
    StoredAnswer,
    key_digest,
    unstorable,
)

__all__ = [
    "INITIAL_STATUS",
    "Reservation",
    "ReturnReceipt",
    "ReturnRecord",
    "ReturnRequest",
    "ReturnResource",
    "ReturnStore",
    "StoredAnswer",
    "import_from_redis",
    "key_digest",
    "render_receipt",
    "render_return",
    "unstorable",
]
