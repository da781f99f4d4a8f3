"""System profiles: one connector per system the gateway talks to, each beside its sandbox.

* ``erp/``      NetSuite, Business Central
* ``wms/``      Extensiv 3PL Warehouse Manager
* ``carrier/``  EasyPost
* ``crm/``      Salesforce

A profile imports only the platform's public SDK (:mod:`gateway.sdk`) and, for its sandbox,
:mod:`gateway.sandbox`; the platform never imports a profile: the routing table names it
(``use: connectors.erp.netsuite:NetSuiteConnector``) and the runtime loads it.
"""
