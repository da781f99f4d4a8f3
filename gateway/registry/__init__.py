"""Contract registry: canonical JSON Schemas loaded, compiled and served by name and version."""

from gateway.registry._bundle import component_name
from gateway.registry._contract import Contract, Example
from gateway.registry._registry import ContractRegistry
from gateway.registry._violations import to_pointer

__all__ = ["Contract", "ContractRegistry", "Example", "component_name", "to_pointer"]
