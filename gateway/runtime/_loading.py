"""Build a connector from its routing-table entry: import its class, give it its target."""

from __future__ import annotations

import importlib

from gateway.mapping import MappingCatalog
from gateway.routing import ConnectorSpec
from gateway.sdk import Connector, Target, TargetConfigError


def connector_class(use: str) -> type[Connector]:
    """Import ``module:Class`` and check it is a connector."""
    module_name, _, class_name = use.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise TargetConfigError(f"cannot import connector {use}: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, Connector)):
        raise TargetConfigError(f"{use} is not a Connector subclass")
    return found


def build_connector(name: str, spec: ConnectorSpec, mappings: MappingCatalog | None = None) -> Connector:
    """The connector the routing table describes under ``name``, with one shared target client."""
    if spec.use is None:
        raise TargetConfigError(f"connector {name} has no 'use: module:Class' in the routing table")
    cls = connector_class(spec.use)
    target = Target(name, spec.target) if spec.target is not None else None
    return cls(name, target=target, options=spec.options, mappings=mappings)
