"""The lifecycle's main road as tests expect a return to travel it."""

from __future__ import annotations

from gateway.lifecycle import ROAD

#: Every status of the main road but approval: a return no rule sent to a person.
UNAPPROVED_ROAD = [status for status in ROAD if status != "pending_approval"]
