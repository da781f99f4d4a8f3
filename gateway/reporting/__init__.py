"""The read side of the record in PostgreSQL: searching returns, process reports computed from
their timelines, and the retention of personal data on closed returns.

It reads ``returns``, ``return_lines``, ``timeline_entries``, ``inspections`` and ``documents``
as the intake and the lifecycle write them; the one thing it writes is the erasure of personal
data (:func:`erase_personal_data`). See ``docs/reports.md`` for every figure's definition.
"""

from gateway.reporting._reports import (
    AGING_BUCKETS,
    CreditAge,
    CycleGroup,
    Exceptions,
    Percentiles,
    PostingLatency,
    QueueAge,
    ReasonCount,
    ReasonGroup,
    StatusTime,
    SupplierRecovery,
    Window,
    credit_aging,
    cycle_time,
    exceptions,
    posting_latency,
    queue_aging,
    reasons,
    status_times,
    supplier_recovery,
)
from gateway.reporting._retention import (
    PERSONAL_FIELDS,
    DueForErasure,
    cutoff,
    due_for_erasure,
    erase_personal_data,
)
from gateway.reporting._search import (
    DEFAULT_PAGE,
    MAX_PAGE,
    SORTS,
    ReturnPage,
    ReturnQuery,
    ReturnSummary,
    Sort,
    build_search,
    search_returns,
)

__all__ = [
    "AGING_BUCKETS",
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "PERSONAL_FIELDS",
    "SORTS",
    "CreditAge",
    "CycleGroup",
    "DueForErasure",
    "Exceptions",
    "Percentiles",
    "PostingLatency",
    "QueueAge",
    "ReasonCount",
    "ReasonGroup",
    "ReturnPage",
    "ReturnQuery",
    "ReturnSummary",
    "Sort",
    "StatusTime",
    "SupplierRecovery",
    "Window",
    "build_search",
    "credit_aging",
    "cutoff",
    "cycle_time",
    "due_for_erasure",
    "erase_personal_data",
    "exceptions",
    "posting_latency",
    "queue_aging",
    "reasons",
    "search_returns",
    "status_times",
    "supplier_recovery",
]
