"""Connectors that ship with the platform and belong to no system profile.

``gateway.builtin.webhook:WebhookConnector`` posts each canonical message, as it is, to an
HTTP endpoint. The lifecycle (``gateway.lifecycle:Orchestrator``), partner webhooks
(``gateway.partners.webhooks``) and EDI responses (``gateway.edi.responder``) are built-in
connectors too, living beside the feature they serve.
"""
