"""Rewrite contracts into OpenAPI ``components/schemas`` so the served spec is self-contained.

OpenAPI tooling resolves ``$ref`` against the OpenAPI document, not against each
schema's ``$id``; so every ``$defs`` entry becomes a component and refs point at it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from gateway.errors import ContractRegistryError
from gateway.registry._contract import Contract

_COMPONENTS = "#/components/schemas/"
_DEFS = "#/$defs/"


def component_name(name: str, version: str, definition: str | None = None) -> str:
    """``return-request``, ``v1``, ``Line`` → ``ReturnRequestV1_Line``."""
    base = "".join(part.capitalize() for part in name.split("-")) + version.upper()
    return f"{base}_{definition}" if definition else base


def _rewrite(node: Any, contract: Contract, by_id: dict[str, Contract]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, contract, by_id) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _rewrite(v, contract, by_id) for k, v in node.items() if k not in {"$id", "$schema", "$defs"}}
    ref = node.get("$ref")
    if isinstance(ref, str):
        target_id, _, fragment = ref.partition("#")
        target = by_id.get(target_id) if target_id else contract
        if target is None:
            raise ContractRegistryError(f"{contract.source}: cannot bundle $ref {ref!r}")
        if fragment in {"", "/"}:
            out["$ref"] = _COMPONENTS + component_name(target.name, target.version)
        elif ("#" + fragment).startswith(_DEFS) and "/" not in fragment[len("/$defs/") :]:
            out["$ref"] = _COMPONENTS + component_name(
                target.name, target.version, fragment[len("/$defs/") :]
            )
        else:
            raise ContractRegistryError(f"{contract.source}: only refs to $defs can be bundled, got {ref!r}")
    return out


def openapi_components(contracts: Iterable[Contract]) -> dict[str, dict[str, Any]]:
    """Every contract and every one of its ``$defs`` as a named OpenAPI component."""
    contracts = list(contracts)
    by_id = {c.id: c for c in contracts}
    components: dict[str, dict[str, Any]] = {}
    for contract in contracts:
        schema = copy.deepcopy(contract.schema)
        for def_name, definition in schema.get("$defs", {}).items():
            components[component_name(contract.name, contract.version, def_name)] = _rewrite(
                definition, contract, by_id
            )
        components[component_name(contract.name, contract.version)] = _rewrite(schema, contract, by_id)
    return components
