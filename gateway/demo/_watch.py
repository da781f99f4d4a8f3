"""Print what each system receives, as it happens, attributed to the return it belongs to.

Sandboxes keep what they were sent; the watcher compares their records every few tens of
milliseconds and prints each new or changed record once, with the return id found in it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from gateway.sandbox import Sandbox

#: A return id as the gateway writes it, or as a system with short reference fields holds it
#: (Business Central's 35-character externalDocumentNumber: ``RGW`` + the id's hex).
_RETURN_ID = re.compile(r"(?:ret_|RGW)([0-9a-f]{32})")
#: Fields that say what a record is, first present wins, per kind of value.
_NUMBER_FIELDS = (
    "tranId",
    "number",
    "No",
    "ReferenceNum",
    "referenceNum",
    "tracking_code",
    "CaseNumber",
    "Inspection_Task_Number__c",
    "id",
)
_STATE_FIELDS = ("Status", "status", "orderStatus", "Rma_Status__c")


def return_ids_in(value: Any) -> Iterator[str]:
    """Every gateway return id mentioned anywhere in ``value``."""
    if isinstance(value, str):
        yield from (f"ret_{found}" for found in _RETURN_ID.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from return_ids_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from return_ids_in(item)


def _describe(record: Mapping[str, Any]) -> str:
    number = next((str(record[f]) for f in _NUMBER_FIELDS if isinstance(record.get(f), str | int)), "")
    state = next((record[f] for f in _STATE_FIELDS if f in record), None)
    if isinstance(state, Mapping):
        state = state.get("id") or state.get("refName")
    return f"{number}" + (f" [{state}]" if state not in (None, "") else "")


class Watcher:
    """Remembers what it has shown; ``poll`` reports what changed since."""

    def __init__(self, sandboxes: Mapping[str, Sandbox], labels: Mapping[str, str]) -> None:
        self._sandboxes = sandboxes
        self._labels = labels
        self._seen: dict[tuple[str, str, str], Any] = {}

    def poll(self, show: Callable[[str, str, str, str], None]) -> None:
        """Call ``show(return_id, system, what, detail)`` for every new or changed record."""
        for role, sandbox in self._sandboxes.items():
            with sandbox.state.lock:
                snapshot = {c: dict(items) for c, items in sandbox.state.records.items()}
            for collection, items in snapshot.items():
                for key, record in items.items():
                    marker = (role, collection, key)
                    if self._seen.get(marker) == record:
                        continue
                    verb = "updated" if marker in self._seen else "created"
                    self._seen[marker] = copy.deepcopy(record)
                    owners = sorted(set(return_ids_in(record))) or ["-"]
                    for owner in owners:
                        show(owner, self._labels.get(role, role), f"{collection} {verb}", _describe(record))
