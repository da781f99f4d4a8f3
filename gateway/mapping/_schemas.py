"""Walk JSON Schemas by path, to check a mapping against what its input and output can hold.

The checks a mapping gets at load time need two answers from a schema: does this path
exist, and is it always present (every step required)? ``$ref`` is followed across the
canonical contracts (by ``$id``) and within a system's schema file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

_ANY: dict[str, Any] = {}


@dataclass(frozen=True)
class Located:
    """A subschema, the document base it resolves ``$ref`` against, and whether it is always there."""

    schema: dict[str, Any]
    base: str
    always: bool = True


class SchemaIndex:
    """Every schema a mapping may name, by ``$id`` (contracts) or by file (system payloads)."""

    def __init__(self, contracts_dir: Path) -> None:
        self._documents: dict[str, dict[str, Any]] = {}
        self._contracts: dict[str, str] = {}
        for path in sorted(contracts_dir.glob("*/*/schema.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            self._documents[schema["$id"]] = schema
            self._contracts[f"{path.parent.parent.name}.{path.parent.name}"] = schema["$id"]

    def contract(self, name: str) -> Located | None:
        """A canonical contract by ``return-request.v1``."""
        uri = self._contracts.get(name)
        return None if uri is None else Located(self._documents[uri], uri)

    def file(self, path: Path) -> Located:
        """A system payload schema kept beside the mappings."""
        uri = path.resolve().as_uri()
        if uri not in self._documents:
            self._documents[uri] = json.loads(path.read_text(encoding="utf-8"))
        return Located(self._documents[uri], uri)

    def resolve(self, node: Located) -> Located:
        """Follow ``$ref`` until a schema with content of its own."""
        schema, base = node.schema, node.base
        for _ in range(32):
            ref = schema.get("$ref") if isinstance(schema, dict) else None
            if ref is None:
                break
            uri, fragment = urldefrag(urljoin(base, ref))
            document = self._documents.get(uri)
            if document is None:
                raise LookupError(f"unresolvable $ref {ref}")
            schema = document
            for part in filter(None, fragment.split("/")):
                schema = schema[part.replace("~1", "/").replace("~0", "~")]
            base = uri
        return Located(schema if isinstance(schema, dict) else _ANY, base, node.always)

    def _branches(self, node: Located) -> list[Located]:
        """The schema and the schemas it combines, each resolved."""
        found = [node]
        for keyword in ("allOf", "anyOf", "oneOf"):
            for sub in node.schema.get(keyword, []):
                found.append(self.resolve(Located(sub, node.base, node.always)))
        return found

    def _required_names(self, node: Located) -> set[str]:
        names = set(node.schema.get("required", ()))
        for sub in node.schema.get("allOf", []):
            names |= set(self.resolve(Located(sub, node.base)).schema.get("required", ()))
        return names

    def _allowed_names(self, node: Located) -> set[str] | None:
        """Property names the schema defines, or ``None`` when it takes any name.

        A schema that lists properties takes only those unless it says otherwise with
        ``additionalProperties`` or ``patternProperties``: a mapping naming anything else
        is almost always a typo.
        """
        allowed: set[str] = set()
        for branch in self._branches(node):
            extra = branch.schema.get("additionalProperties")
            if extra is True or isinstance(extra, dict) or "patternProperties" in branch.schema:
                return None
            allowed |= set(branch.schema.get("properties", {}))
        return allowed if allowed or node.schema.get("type") == "object" else None

    def property(self, node: Located, name: str) -> Located | None:
        """The subschema of property ``name``; ``None`` if the schema cannot hold it."""
        node = self.resolve(node)
        always = node.always and name in self._required_names(node)
        for branch in self._branches(node):
            if name in branch.schema.get("properties", {}):
                return self.resolve(Located(branch.schema["properties"][name], branch.base, always))
        if self._allowed_names(node) is not None:
            return None
        extra = node.schema.get("additionalProperties")
        return self.resolve(Located(extra if isinstance(extra, dict) else _ANY, node.base, always))

    def items(self, node: Located) -> Located | None:
        """The subschema of an array's elements (never sure to exist); ``None`` if not an array."""
        node = self.resolve(node)
        if "items" in node.schema:
            return self.resolve(Located(node.schema["items"], node.base, False))
        if node.schema.get("type") in (None, "array") and "properties" not in node.schema:
            return Located(_ANY, node.base, False)
        return None

    def shape(self, node: Located) -> tuple[set[str], set[str] | None]:
        """An object schema's (required property names, allowed names or ``None`` for any)."""
        node = self.resolve(node)
        return self._required_names(node), self._allowed_names(node)

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every schema document loaded so far, by URI."""
        return dict(self._documents)
