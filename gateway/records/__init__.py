"""The record of accepted returns: who sent what, and where it stands.

Above the Redis plumbing of :mod:`gateway.storage` and the tenancy of :mod:`gateway.auth`
(a partner sees only its own returns), below everything that accepts or reads a return.
"""

from gateway.records._returns import (
    INITIAL_STATUS,
    ReturnReceipt,
    ReturnRecord,
    ReturnResource,
    ReturnStore,
    render_receipt,
    render_return,
)

__all__ = [
    "INITIAL_STATUS",
    "ReturnReceipt",
    "ReturnRecord",
    "ReturnResource",
    "ReturnStore",
    "render_receipt",
    "render_return",
]
