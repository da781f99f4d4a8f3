"""Contract registry: canonical JSON Schemas loaded, compiled and served by name and version."""

from gateway.registry._bundle import component_name
from gateway.registry._contract import COUNTED_VIOLATIONS, Contract, Example, Refusal
from gateway.registry._registry import ContractRegistry
from gateway.registry._violations import excerpt, to_pointer

__all__ = [
    "COUNTED_VIOLATIONS",
    "Contract",
    "ContractRegistry",
    "Example",
    "Refusal",
    "component_name",
    "excerpt",
    "to_pointer",
]
