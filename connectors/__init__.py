"""Connector SDK, runtime and the ERP/WMS/carrier/CRM connectors (delivery side of the gateway)."""
