"""Webhooks to partners: the endpoints a partner registers (:mod:`~gateway.partners.endpoints`)
and the built-in connector that delivers its ``return-status-changed`` events to them, signed
(:mod:`~gateway.partners.webhooks`)."""
