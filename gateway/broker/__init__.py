"""RabbitMQ at the edge: topology and confirmed publishing."""

from gateway.broker._confirm import broker_errors, publish_confirmed
from gateway.broker._copy import persistent_copy
from gateway.broker._publisher import BrokerPublisher, TopologyStep, to_amqp_message, until_connected
from gateway.broker._topology import declare_edge_topology
from gateway.broker.names import events_exchange_name, unrouted_name

__all__ = [
    "BrokerPublisher",
    "TopologyStep",
    "broker_errors",
    "declare_edge_topology",
    "events_exchange_name",
    "persistent_copy",
    "publish_confirmed",
    "to_amqp_message",
    "unrouted_name",
    "until_connected",
]
