"""``returns-gateway demo``: the gateway, its connectors and sandboxes, and a few returns.

Starts sandboxes for the ERP (NetSuite, or Business Central with ``--erp business_central``),
the WMS (Extensiv), the carrier (EasyPost) and the CRM (Salesforce); the gateway; and one
connector runtime per system, on the local RabbitMQ and Redis in a namespace of its own.
Then it submits a handful of realistic returns through the API, plays the warehouse and the
carrier (signed webhooks), and prints each return's path through the systems as it happens.
"""

from gateway.demo._run import run_demo

__all__ = ["run_demo"]
