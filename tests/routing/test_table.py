"""The routing table is refused at start-up with the place it went wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.lifecycle import Orchestrator
from gateway.routing import RoutingTableError, load_routing_table, parse_routing_table
from gateway.settings import PROJECT_ROOT


def test_shipped_table_is_valid() -> None:
    table = load_routing_table(PROJECT_ROOT / "routes.yaml")
    assert {"erp", "wms", "carrier", "crm"} <= set(table.connectors)
    assert table.routes_to("erp")


def test_the_shipped_table_feeds_the_lifecycle_every_event_it_handles() -> None:
    table = load_routing_table(PROJECT_ROOT / "routes.yaml")
    fed = {route.message for route in table.routes_to("lifecycle") if not route.when}
    assert Orchestrator.handles is not None and Orchestrator.handles <= fed, Orchestrator.handles - fed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("connectors: {erp: {delivery_limit: 0}}", "delivery_limit"),
        ("connectors: {erp: {retry_delays_ms: [5]}}", "retry_delays_ms"),
        ("connectors: {ERP: {}}", "connectors"),
        ("routes: [{id: a, message: return-request.v1, to: [nope]}]", "connector 'nope' is not declared"),
        (
            "connectors: {erp: {}}\nroutes: [{id: a, message: 'bad pattern!', to: [erp]}]",
            "not a topic pattern",
        ),
        (
            "connectors: {erp: {}}\nroutes: [{id: a, message: x.v1, to: [erp], when: {colour: [red]}}]",
            "'colour'",
        ),
        (
            "connectors: {erp: {}}\n"
            "routes: [{id: a, message: x.v1, to: [erp]}, {id: a, message: y.v1, to: [erp]}]",
            "used twice",
        ),
        ("connectors: {erp: {use: 'not a class path'}}", r"connectors\[...\]\.use"),
        ("connectors: {erp: {target: {base_url: 'ftp://erp'}}}", "base_url"),
        ("connectors: {erp: {target: {base_url: 'http://erp', token_env: 'my token'}}}", "token_env"),
        ("connectors: {erp: {circuit: {consecutive_failures: 0}}}", "consecutive_failures"),
        ("connectors: {erp: {circuit: {failure_rate: 1.5}}}", "failure_rate"),
        (
            "connectors: {erp: {circuit: {failure_threshold: 5}}}",
            "failure_threshold is gone: the circuit opens",
        ),
        ("connectors: {erp: {target: {base_url: 'http://erp', tries: 0}}}", "tries"),
        ("connectors: {erp: {prefetch: 0}}", "prefetch"),
        ("routez: []", "unknown field `routez`"),
        ("connectors: [", "not valid YAML"),
    ],
)
def test_defects_are_named(text: str, message: str) -> None:
    with pytest.raises(RoutingTableError, match=message):
        parse_routing_table(text)


def test_every_defect_is_reported_at_once() -> None:
    text = "connectors: {erp: {}}\nroutes: [{id: a, message: x.v1, to: [wms, crm]}]"
    with pytest.raises(RoutingTableError) as raised:
        parse_routing_table(text)
    assert "'wms'" in str(raised.value) and "'crm'" in str(raised.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RoutingTableError, match="cannot read"):
        load_routing_table(tmp_path / "routes.yaml")
