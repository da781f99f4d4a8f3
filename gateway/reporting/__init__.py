"""The read side of the record in PostgreSQL: searching returns.

It reads ``returns`` and ``return_lines`` as the intake and the lifecycle write them.
"""

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
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "SORTS",
    "ReturnPage",
    "ReturnQuery",
    "ReturnSummary",
    "Sort",
    "build_search",
    "search_returns",
]
