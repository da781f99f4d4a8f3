"""Routing: the operator's routing table and the RabbitMQ topology declared from it."""

from gateway.broker.names import (
    condition_header,
    condition_headers,
    connector_queue,
    dead_exchange,
    dead_letter_queue,
    redeliver_exchange,
    retry_exchange,
    retry_queue,
    route_exchange,
)
from gateway.routing._table import (
    CONDITION_FIELDS,
    BasicAuth,
    CircuitSpec,
    ConnectorSpec,
    OAuth2ClientCredentials,
    Route,
    RoutingTable,
    RoutingTableError,
    TargetSpec,
    load_routing_table,
    parse_routing_table,
)
from gateway.routing._topology import (
    QUORUM,
    declare_routing_topology,
    delete_routing_topology,
    topology_names,
)

__all__ = [
    "CONDITION_FIELDS",
    "QUORUM",
    "BasicAuth",
    "CircuitSpec",
    "ConnectorSpec",
    "OAuth2ClientCredentials",
    "Route",
    "RoutingTable",
    "RoutingTableError",
    "TargetSpec",
    "condition_header",
    "condition_headers",
    "connector_queue",
    "dead_exchange",
    "dead_letter_queue",
    "declare_routing_topology",
    "delete_routing_topology",
    "load_routing_table",
    "parse_routing_table",
    "redeliver_exchange",
    "retry_exchange",
    "retry_queue",
    "route_exchange",
    "topology_names",
]
