"""Valid return requests built from the contract's own examples, made unique per call."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from gateway.registry import ContractRegistry
from gateway.settings import PROJECT_ROOT

_REGISTRY = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")
RETURN_REQUEST = _REGISTRY.require("return-request", "v1")


def return_request(example: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid ``return-request`` with a fresh ``external_id`` (the gateway refuses repeats)."""
    payload = copy.deepcopy(RETURN_REQUEST.valid_examples[example].payload)
    payload["external_id"] = f"RMA-{uuid.uuid4().hex[:12]}"
    payload.update(changes)
    return payload


def headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    """Authenticated JSON headers, with a fresh idempotency key unless one is given."""
    return {
        "Authorization": f"Bearer {key}",
        "Idempotency-Key": idempotency_key or uuid.uuid4().hex,
        "Content-Type": "application/json",
    }
