"""Intake: what enters the gateway and how it is taken exactly once.

* :mod:`~gateway.intake.returns`        the use case behind ``POST /v1/returns``;
* :mod:`~gateway.intake.return_events`  receipts, inspections, approvals and holds about a return;
* :mod:`~gateway.intake.webhooks`       webhooks from connected systems (WMS, carrier);
* :mod:`~gateway.intake.idempotency`    ``Idempotency-Key`` claims and stored answers (Redis, the fast path;
  for return requests the record decides: :class:`gateway.records.ReturnStore`);
* :mod:`~gateway.intake.ratelimit`      per-partner rate limits;
* :mod:`~gateway.intake.batching`       Redis script calls of concurrent requests in shared round trips.
"""
