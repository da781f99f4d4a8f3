"""Names of the gateway's Redis keys, in one place so every store agrees on them.

Each function names one kind of key and says what lives there and its Redis type. Every key
starts with the deployment's namespace (:meth:`Settings.key <gateway.settings.Settings.key>`
joins the parts with ``:``), so one namespace is cleared by :func:`namespace_pattern`. The
strings are the ones the stores spelled before this module, so data already stored is found.

Keys built elsewhere, left as they are:

* the Lua scripts (:mod:`gateway.intake.idempotency`, :mod:`gateway.runtime`) build no key
  inside Redis: they touch only the keys passed in ``KEYS``, named here;
* the rate-limit counters are named by the ``limits`` library under :func:`rate_limit_prefix`
  (``<prefix>:LIMITER/<partner>/<limit>/1/second``); :mod:`gateway.intake.ratelimit` repeats
  that join so its script counts in the same key.
"""

from __future__ import annotations

import hashlib

from gateway.settings import Settings


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def namespace_pattern(settings: Settings) -> str:
    """A ``SCAN MATCH`` glob for every key of the deployment (the demo clears its own with it)."""
    return settings.key("*")


# -- intake ---------------------------------------------------------------------------------
def idempotency_key(settings: Settings, partner: str, key: str) -> str:
    """One idempotency key of a partner, stored by its SHA-256 (hash: state, fingerprint,
    return and message ids, lease; once done, the response to replay). The fast path: for return
    requests the record is ``idempotency_keys`` in PostgreSQL, so losing this costs nothing."""
    return settings.key("idem", partner, _digest(key))


def external_id_owner(settings: Settings, partner: str, external_id: str) -> str:
    """The return that holds a partner's external id, stored by its SHA-256 (string: return id).
    The fast path: PostgreSQL's ``UNIQUE (partner_id, external_id)`` on ``returns`` decides."""
    return settings.key("extid", partner, _digest(external_id))


def return_record(settings: Settings, return_id: str) -> str:
    """An accepted return as older releases kept it (string: JSON
    :class:`~gateway.records.ReturnRecord`); read only by :func:`gateway.records.import_from_redis`,
    returns now live in PostgreSQL."""
    return settings.key("return", return_id)


def return_event(settings: Settings, message_id: str) -> str:
    """A receipt or inspection result reported through the API (string: its JSON payload)."""
    return settings.key("return-event", message_id)


def webhook_event_claim(settings: Settings, connector: str, event_id: str) -> str:
    """A connected system's webhook event, taken once (string ``1``, expires with idempotency)."""
    return settings.key("webhook", connector, event_id)


def rate_limit_prefix(settings: Settings) -> str:
    """Prefix of the per-partner rate-limit windows ``limits`` counts (strings with expiry)."""
    return settings.key("ratelimit")


# -- auth (the record is PostgreSQL's now: read only by ``gateway.auth.import_from_redis``) ---
def api_key(settings: Settings, key_hash: str) -> str:
    """An API key by the hash of its secret (string: JSON :class:`~gateway.auth.ApiKeyRecord`)."""
    return settings.key("apikey", key_hash)


def webhook_rate_limit_prefix(settings: Settings) -> str:
    """Where ``limits`` keeps the counters of unauthenticated webhook calls, per source address
    and connector (strings, one per window)."""
    return settings.key("ratelimit", "webhooks")


def api_key_index(settings: Settings) -> str:
    """Every API key (hash: key id → hash of its secret)."""
    return settings.key("apikeys")


def partner_settings(settings: Settings, partner: str) -> str:
    """A partner's own settings (hash: ``rate_limit`` → requests per second)."""
    return settings.key("partner", partner)


# -- connectors -----------------------------------------------------------------------------
def effect(settings: Settings, connector: str, message_id: str) -> str:
    """A message's effect on a connector's target (string: a worker's lease token while it
    applies it, then ``done`` until the retention expires)."""
    return settings.key("effect", connector, message_id)


# -- partners ------------------------------------------------------------------------------
def webhook_endpoints(settings: Settings, partner: str) -> str:
    """A partner's registered webhook endpoints (hash: endpoint id → JSON endpoint); the record is
    PostgreSQL's now, read only by ``gateway.partners.endpoints.import_from_redis``."""
    return settings.key("webhook-endpoints", partner)


# -- lifecycle ------------------------------------------------------------------------------
def lifecycle_state(settings: Settings, return_id: str) -> str:
    """Where a return stands in its lifecycle (string: JSON ``ReturnState``)."""
    return settings.key("lifecycle", return_id)


def lifecycle_timeline(settings: Settings, return_id: str) -> str:
    """A return's audit trail (list: JSON timeline entries, oldest first)."""
    return settings.key("timeline", return_id)


def lifecycle_applied(settings: Settings, return_id: str) -> str:
    """The events already applied to a return (set: message ids)."""
    return settings.key("lifecycle-applied", return_id)


def lifecycle_outbox(settings: Settings, message_id: str) -> str:
    """The commands an applied event produced, published again on redelivery (string: JSON
    list, kept a week)."""
    return settings.key("lifecycle-outbox", message_id)


def returned_quantities(settings: Settings, partner: str, kind: str, number: str) -> str:
    """Quantities authorized against one of a partner's ERP documents (hash: SKU → quantity)."""
    return settings.key("returned", partner, kind, number)


def approvals_queue(settings: Settings) -> str:
    """Returns waiting for a person's decision (sorted set: return id → when it began waiting)."""
    return settings.key("approvals")


def holds_queue(settings: Settings) -> str:
    """Returns on hold until a person releases them (sorted set: return id → when it was held)."""
    return settings.key("holds")


def inspections_queue(settings: Settings, partner: str) -> str:
    """A partner's returns received and not yet inspected (sorted set: return id → when due)."""
    return settings.key("inspections", partner)


# -- EDI ------------------------------------------------------------------------------------
def edi_interchange(settings: Settings, partner: str, ident: str, standard: str = "x12") -> str:
    """The claim on an inbound interchange while it is processed (string: empty, a lease that
    expires); X12's keys carry no standard. The acknowledged record is PostgreSQL's
    (``edi_interchanges``); records older deployments kept here as JSON are read only by
    ``gateway.edi.intake.import_from_redis``."""
    if standard == "x12":
        return settings.key("edi", "interchange", partner, ident)
    return settings.key("edi", standard, "interchange", partner, ident)


def edi_ack_control(settings: Settings) -> str:
    """Control numbers of the acknowledgments (997, CONTRL) we sent (string: counter); no longer
    written: the sequence ``edi_ack_control_seq`` counts them now."""
    return settings.key("edi", "control")


def edi_origin(settings: Settings, return_id: str) -> str:
    """The EDI transaction a return came from, to answer it in kind (string: JSON origin)."""
    return settings.key("edi", "origin", return_id)


def edi_response(settings: Settings, response_id: str) -> str:
    """An EDI response (180, RETINS) built once for a decision (string: JSON response)."""
    return settings.key("edi", "response", response_id)


def edi_responses(settings: Settings, return_id: str) -> str:
    """The EDI responses sent for a return (list: response ids, oldest first)."""
    return settings.key("edi", "responses", return_id)


def edi_response_control(settings: Settings, partner: str) -> str:
    """Control numbers of the responses we send a partner (string: counter)."""
    return settings.key("edi", "control", "out", partner)


# -- dead letters ---------------------------------------------------------------------------
def audit_log(settings: Settings) -> str:
    """What operators did to dead letters (stream, capped); the record is PostgreSQL's now, read
    only by ``gateway.deadletters.import_from_redis``."""
    return settings.key("audit")
