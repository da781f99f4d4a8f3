"""Compile a mapping's field map into one Python function, checking it against its schemas.

A field map is data: output field → expression. At load time each expression becomes a
Python expression over the input, the whole map one function (``compile``), so mapping a
message is a single call with no interpretation left; ``bench.mapping`` measures it. While
compiling, every input path is looked up in the input schema and every output object is
checked against the output schema, so a mapping that cannot work fails at start-up.

Expressions (strings):

``$.lines[0].sku``   a path from the input's root (``["@odata.etag"]`` for odd names);
``$item.sku``        a path from the current element of the innermost ``each``;
``$message_id``      a variable the connector passes (``message_id``, ``partner``...);
anything else        a literal string; numbers, booleans and lists are literals too.

Operators (objects with one of these keys; any other object is a nested output object):

``{from: EXPR, table: NAME, default: VALUE, as: number|integer|string|date}``
                                        (``table: $name`` looks up the table passed at run time
                                        in variable ``name``: a trading partner's own codes);
``{each: PATH, map: EXPR-OR-OBJECT}``   one output element per input element;
``{format: "RMA {$.external_id}"}``     a string with expressions in braces;
``{first: [EXPR, ...]}``                the first alternative that is present;
``{const: VALUE}``                      a literal, even one starting with ``$``;
``{object: {...}}``                     a nested object whose keys look like operators.

An absent or ``null`` input value is absent: the output field is left out, and an output object
with no field present is left out too (never ``{}``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.mapping._errors import MappingFailure
from gateway.mapping._schemas import Located, SchemaIndex
from gateway.mapping._source import line_of

OPERATORS = frozenset({"from", "each", "format", "first", "const", "object"})
_OPTIONS = {
    "from": {"from", "table", "default", "as"},
    "each": {"each", "map"},
    "format": {"format"},
    "first": {"first"},
    "const": {"const"},
    "object": {"object"},
}
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[\"([^\"]+)\"\]")
_REFERENCE = re.compile(
    r"^\$(item|[A-Za-z_][A-Za-z0-9_]*)?((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\[\"[^\"]+\"\])*)$"
)
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_E: dict[str, Any] = {}
#: Variables every connector passes with a delivery: a mapping may rely on them being there.
STANDARD_VARIABLES = frozenset({"message_id", "correlation_id", "partner", "occurred_at", "connector"})


@dataclass
class Expr:
    """Python source for one expression, and whether it always has a value."""

    code: str
    always: bool
    schema: Located | None = None


@dataclass
class Scope:
    """What an expression can see while compiling: the input schema, the current ``each``
    element (its variable and schema), the variables and tables, and where errors go."""

    root: Located
    index: SchemaIndex
    variables: frozenset[str]
    tables: Mapping[str, Mapping[str, Any]]
    errors: list[str]
    source: str
    items: tuple[tuple[str, Located], ...] = ()
    constants: list[Any] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"{self.source}:{line}: {message}")

    def constant(self, value: Any) -> str:
        """Name of a module-level slot holding ``value`` (tables, defaults)."""
        self.constants.append(value)
        return f"_C[{len(self.constants) - 1}]"


def _lookup(table: Mapping[str, Any], name: str, value: Any, default: Any) -> Any:
    if value is None:
        return default
    found = table.get(str(value))
    if found is not None:
        return found
    if default is not None:
        return default
    raise MappingFailure(f"no entry for {value!r} in mapping table {name!r}")


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _format(*parts: Any) -> str | None:
    return None if any(part is None for part in parts) else "".join(map(str, parts))


def _convert(value: Any, kind: str) -> Any:
    if value is None:
        return None
    try:
        if kind == "number":
            number = Decimal(str(value))
            return int(number) if number == number.to_integral_value() else float(number)
        if kind == "integer":
            return int(Decimal(str(value)))
        if kind == "date":
            return value.isoformat()[:10] if isinstance(value, dt.date) else str(value)[:10]
        return str(value)
    except (ArithmeticError, ValueError) as exc:
        raise MappingFailure(f"cannot read {value!r} as {kind}") from exc


def _obj(*pairs: tuple[str, Any]) -> dict[str, Any] | None:
    """An output object; one with no field present is itself absent (never ``{}``)."""
    built = {key: value for key, value in pairs if value is not None}
    return built or None


def _list(values: Any) -> list[Any] | None:
    return None if values is None else [value for value in values if value is not None]


def _index(values: Any, position: int) -> Any:
    return values[position] if isinstance(values, list) and len(values) > position else None


RUNTIME: dict[str, Any] = {
    "_index": _index,
    "_E": _E,
    "_lookup": _lookup,
    "_first": _first,
    "_format": _format,
    "_convert": _convert,
    "_obj": _obj,
    "_list": _list,
}


def compile_reference(text: str, scope: Scope, line: int) -> Expr | None:
    """``$.a.b``, ``$item.a``, ``$name``; ``None`` if ``text`` is not a reference."""
    match = _REFERENCE.match(text)
    if match is None:
        return None
    head, rest = match.group(1), match.group(2)
    if head is None:
        code, node = "root", scope.root
    elif head == "item":
        if not scope.items:
            scope.error(line, f"{text}: $item is only defined inside 'each'")
            return Expr("None", False)
        code, node = scope.items[-1]
        node = Located(node.schema, node.base, True)  # the element exists while we map it
    else:
        if rest:
            scope.error(line, f"{text}: variables have no fields")
        if head not in scope.variables:
            known = ", ".join(sorted(scope.variables))
            scope.error(line, f"{text}: unknown variable (known: {known})")
        return Expr(f"vars.get({head!r})", head in STANDARD_VARIABLES)
    if head is None and not rest.startswith((".", "[")):
        scope.error(line, f"{text}: a path from the root starts with '$.'")
    index = scope.index
    for step in _STEP.finditer(rest):
        name, position, quoted = step.groups()
        if position is not None:
            child = index.items(node) if node is not None else None
            if node is not None and child is None:
                scope.error(line, f"{text}: [{position}] indexes something that is not an array")
            code = f"_index({code}, {int(position)})"
            node = child
            continue
        key = name or quoted
        child = index.property(node, key) if node is not None else None
        if node is not None and child is None:
            scope.error(line, f"{text}: the input schema has no {key!r} here")
        code = f"({code} or _E).get({key!r})"
        node = child
    return Expr(code, node is not None and node.always, node)


def compile_expression(node: Any, scope: Scope, line: int, target: Located | None) -> Expr:
    """Compile any expression, checking an output object against ``target`` when known."""
    if isinstance(node, str):
        reference = compile_reference(node, scope, line) if node.startswith("$") else None
        return reference or Expr(repr(node), True)
    if isinstance(node, bool | int | float) or node is None:
        if node is None:
            scope.error(line, "null is not a value: leave the field out instead")
        return Expr(repr(node), node is not None)
    if isinstance(node, list):
        parts = [compile_expression(part, scope, line_of(node) or line, None) for part in node]
        return Expr(f"_list([{', '.join(p.code for p in parts)}])", True)
    if isinstance(node, dict):
        operators = OPERATORS & node.keys()
        if not operators:
            return compile_object(node, scope, target)
        if len(operators) > 1:
            scope.error(line_of(node), f"one operator per object, found {sorted(operators)}")
        operator = sorted(operators)[0]
        unknown = node.keys() - _OPTIONS[operator]
        if unknown:
            scope.error(line_of(node), f"{operator!r} takes no {sorted(unknown)}")
        return _OPERATOR_COMPILERS[operator](node, scope, line_of(node), target)
    scope.error(line, f"cannot map a {type(node).__name__}")
    return Expr("None", False)


def compile_object(node: Mapping[str, Any], scope: Scope, target: Located | None) -> Expr:
    """A nested output object; its fields are checked against the target schema."""
    index = scope.index
    pairs, always = [], {}
    for key, value in node.items():
        line = line_of(node, key)
        child = index.property(target, key) if target is not None else None
        if target is not None and child is None:
            scope.error(line, f"output field {key!r} is not in the target schema")
        expr = compile_expression(value, scope, line, child)
        pairs.append(f"({key!r}, {expr.code})")
        always[key] = expr.always
    if target is not None:
        required, _ = index.shape(target)
        for name in sorted(required):
            if name not in always:
                scope.error(line_of(node), f"required output field {name!r} is not mapped")
            elif not always[name]:
                scope.error(
                    line_of(node, name),
                    f"required output field {name!r} may be absent: map it from a required input, "
                    "or give a default or a 'first' alternative that is always there",
                )
    # Counted as always there: a required object left empty fails the output check either way.
    return Expr(f"_obj({', '.join(pairs)}{',' if len(pairs) == 1 else ''})", True)


def _compile_from(node: Mapping[str, Any], scope: Scope, line: int, target: Located | None) -> Expr:
    inner = compile_expression(node["from"], scope, line, None)
    code, always = inner.code, inner.always
    if "table" in node:
        name = node["table"]
        if isinstance(name, str) and name.startswith("$"):
            if name[1:] not in scope.variables or name[1:] in STANDARD_VARIABLES:
                scope.error(line, f"table {name}: declare {name[1:]!r} under 'variables'")
            table = f"(vars.get({name[1:]!r}) or _E)"
        elif name not in scope.tables:
            scope.error(line, f"unknown table {name!r} (tables: {', '.join(sorted(scope.tables)) or 'none'})")
            table = "_E"
        else:
            table = scope.constant(scope.tables[name])
        default = scope.constant(node.get("default"))
        code = f"_lookup({table}, {name!r}, {code}, {default})"
    elif "default" in node:
        code = f"_first({code}, {scope.constant(node['default'])})"
    always = always or "default" in node
    if "as" in node:
        if node["as"] not in ("number", "integer", "string", "date"):
            scope.error(line, f"'as' is one of number, integer, string, date; not {node['as']!r}")
        code = f"_convert({code}, {node['as']!r})"
    return Expr(code, always)


def _compile_each(node: Mapping[str, Any], scope: Scope, line: int, target: Located | None) -> Expr:
    source = node["each"]
    array = compile_reference(source, scope, line) if isinstance(source, str) else None
    if array is None:
        scope.error(line, "'each' takes a path to an array")
        return Expr("None", False)
    index = scope.index
    element = index.items(array.schema) if array.schema is not None else None
    if array.schema is not None and element is None:
        scope.error(line, f"'each' over {source}, which is not an array")
    variable = f"item{len(scope.items)}"
    inner_scope = Scope(
        root=scope.root,
        index=scope.index,
        variables=scope.variables,
        tables=scope.tables,
        errors=scope.errors,
        source=scope.source,
        items=(*scope.items, (variable, element or Located({}, "", False))),
        constants=scope.constants,
    )
    if "map" not in node:
        scope.error(line, "'each' needs 'map': what each element becomes")
        return Expr("None", False)
    element_target = index.items(target) if target is not None else None
    body = compile_expression(node["map"], inner_scope, line, element_target)
    return Expr(f"_list([{body.code} for {variable} in ({array.code} or ())])", array.always)


def _compile_format(node: Mapping[str, Any], scope: Scope, line: int, target: Located | None) -> Expr:
    text = str(node["format"])
    parts, always, position = [], True, 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > position:
            parts.append(repr(text[position : match.start()]))
        inner = compile_reference(match.group(1).strip(), scope, line)
        if inner is None:
            scope.error(line, f"{{{match.group(1)}}} is not a reference")
            inner = Expr("None", False)
        parts.append(inner.code)
        always = always and inner.always
        position = match.end()
    if position < len(text):
        parts.append(repr(text[position:]))
    return Expr(f"_format({', '.join(parts)})", always)


def _compile_first(node: Mapping[str, Any], scope: Scope, line: int, target: Located | None) -> Expr:
    options = node["first"]
    if not isinstance(options, list) or not options:
        scope.error(line, "'first' takes a list of alternatives")
        return Expr("None", False)
    parts = [compile_expression(option, scope, line_of(options) or line, target) for option in options]
    return Expr(f"_first({', '.join(p.code for p in parts)})", any(p.always for p in parts))


def _compile_const(node: Mapping[str, Any], scope: Scope, line: int, target: Located | None) -> Expr:
    return Expr(scope.constant(node["const"]), node["const"] is not None)


def _compile_nested(node: Mapping[str, Any], scope: Scope, line: int, target: Located | None) -> Expr:
    if not isinstance(node["object"], dict):
        scope.error(line, "'object' takes a mapping")
        return Expr("None", False)
    return compile_object(node["object"], scope, target)


_OPERATOR_COMPILERS: dict[str, Callable[[Mapping[str, Any], Scope, int, Located | None], Expr]] = {
    "from": _compile_from,
    "each": _compile_each,
    "format": _compile_format,
    "first": _compile_first,
    "const": _compile_const,
    "object": _compile_nested,
}


def build_function(expr: Expr, scope: Scope) -> Callable[[Any, Mapping[str, Any]], Any]:
    """Turn the compiled body into ``fn(root, vars)``; generated code holds only our helpers,
    reprs of literals and slots of ``_C``, never text a mapping author typed as code."""
    namespace = {**RUNTIME, "_C": list(scope.constants)}
    source = f"def mapped(root, vars):\n    return {expr.code}\n"
    exec(compile(source, scope.source, "exec"), namespace)
    return namespace["mapped"]  # type: ignore[no-any-return]
