"""RabbitMQ: the AMQP names, the edge topology, and confirmed publishing (:class:`EventPublisher`)."""

from gateway.broker._confirm import broker_errors
from gateway.broker._events import EventPublisher
from gateway.broker._publisher import BrokerPublisher, TopologyStep, until_connected
from gateway.broker._topology import declare_edge_topology
from gateway.broker.names import events_exchange_name, unrouted_name

__all__ = [
    "BrokerPublisher",
    "EventPublisher",
    "TopologyStep",
    "broker_errors",
    "declare_edge_topology",
    "events_exchange_name",
    "unrouted_name",
    "until_connected",
]
