"""The contract registry the gateway consults for every request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.errors import ContractRegistryError
from gateway.registry._bundle import openapi_components
from gateway.registry._contract import Contract
from gateway.registry._loader import load_contracts


class ContractRegistry:
    """Every contract version found at start-up, compiled once and looked up by name and version."""

    def __init__(self, contracts: dict[tuple[str, str], Contract]) -> None:
        self._contracts = contracts
        self._components = openapi_components(contracts.values())

    @classmethod
    def from_folder(cls, root: Path) -> ContractRegistry:
        """Load a contracts folder; raises :class:`~gateway.errors.ContractRegistryError` on any defect."""
        _, contracts = load_contracts(root)
        return cls(contracts)

    def get(self, name: str, version: str) -> Contract | None:
        """The contract, or ``None`` when no such name and version is registered."""
        return self._contracts.get((name, version))

    def require(self, name: str, version: str) -> Contract:
        """The contract the gateway itself relies on; a missing one is a deployment error."""
        contract = self.get(name, version)
        if contract is None:
            raise ContractRegistryError(f"contract {name} {version} is required but not installed")
        return contract

    def __iter__(self) -> Iterator[Contract]:
        return iter(sorted(self._contracts.values(), key=lambda c: (c.name, c.version)))

    def __len__(self) -> int:
        return len(self._contracts)

    @property
    def openapi_components(self) -> dict[str, dict[str, Any]]:
        """Self-contained schemas for the OpenAPI document."""
        return self._components
