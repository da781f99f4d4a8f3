"""Declarative mappings between canonical contracts and each system's payloads.

Mapping files are data (``mappings/<profile>/*.yaml``), compiled to Python functions once
at start-up and checked against the schemas on both sides; see ``_compile`` for the
expression language and ``_catalog`` for the layout.
"""

from gateway.mapping._catalog import (
    STANDARD_VARIABLES,
    CompiledMapping,
    Fixture,
    MappingCatalog,
    fixture_problems,
)
from gateway.mapping._errors import MappingDefinitionError, MappingFailure

__all__ = [
    "STANDARD_VARIABLES",
    "CompiledMapping",
    "Fixture",
    "MappingCatalog",
    "MappingDefinitionError",
    "MappingFailure",
    "fixture_problems",
]
