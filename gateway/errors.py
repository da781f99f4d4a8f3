"""The gateway's exception tree.

Every error the gateway raises descends from :class:`GatewayError`::

    GatewayError
    ├── ConfigurationError             a file or setting the gateway cannot work with: it refuses to start
    │   ├── ContractRegistryError      a contract folder is invalid
    │   ├── RoutingTableError          [routing] the routing table is missing, malformed or inconsistent
    │   ├── MappingDefinitionError     [mapping] mapping files that cannot work, each problem as file:line
    │   ├── PolicyError                [lifecycle] a policy file is missing, malformed or inconsistent
    │   ├── PartnerProfileError        [edi] edi-partners.yaml is missing, malformed, or binds a sender twice
    │   ├── SecretsKeyError            RGW_SECRETS_KEY unset, malformed, or without a stored secret's key
    │   ├── DatabaseMissing            RGW_DATABASE_URL names a database the server does not have
    │   ├── SchemaOutOfDate            the database's schema is not the code's: `returns-gateway db upgrade`
    │   └── TargetConfigError          [sdk] a target's settings cannot be used (a credential not set)
    ├── DependencyUnavailable          retryable: a server we depend on did not answer
    │   ├── BrokerUnavailable          RabbitMQ down, refused, or did not confirm in time
    │   ├── StoreUnavailable           Redis down or timed out
    │   └── DatabaseUnavailable        PostgreSQL down, refusing us, or timed out
    ├── DeliveryFailed                 a connector could not apply a message to its target system
    │   ├── RetryableDeliveryFailure   timeout, connection error, 429, 5xx: retry with backoff
    │   │   ├── CircuitOpen            the target's breaker is open: not called, not an attempt
    │   │   ├── TargetUnreachable      no answer at all (refused, reset, timed out): counts toward a breaker
    │   │   └── NotReadyYet            early for what it depends on (a return not opened): waits, no attempt
    │   └── PermanentDeliveryFailure   4xx, contract or mapping error: dead-letter at once
    │       └── MappingFailure         [mapping] a message its mapping cannot map: dead-lettered until fixed
    ├── IllegalTransition              [lifecycle] a status move the model refuses: never applied
    ├── _Parked                        [lifecycle] an event early for its return: parked (never escapes)
    ├── WebhookRejected                [sdk] a webhook a connector refuses: answered 401, 404, 422 or 503
    ├── UnknownSandbox                 [sandbox] no sandbox plays that profile (also a KeyError)
    ├── ScaffoldError                  [cli] connector new: the name is unusable or its files exist
    └── ProblemError                   answered to the client as application/problem+json
        ├── MalformedRequest               400
        │   └── InterchangeUnusable        400  (EDI: no usable ISA, or a broken interchange envelope)
        ├── AuthenticationRequired         401
        ├── PermissionDenied               403
        │   └── SenderNotAllowed           403  (an EDI sender id that is not the caller's)
        ├── NotFound                       404
        │   ├── UnknownConnector           404  (not in the routing table)
        │   └── DeadLetterNotFound         404  (not, or no longer, in the dead-letter queue)
        ├── IdempotencyKeyInFlight         409
        ├── ControlNumberReused            409  (EDI: a sender's control number again, another interchange)
        ├── DuplicateReturn                409
        ├── StatusConflict                 409  (the return is not in a status that allows it)
        ├── PayloadTooLarge                413
        ├── UnsupportedMediaType           415
        ├── ContractViolation              422  (every violation, with its JSON pointer)
        ├── IdempotencyKeyReused           422
        ├── WebhookRefused                 422  (unreadable, unmappable, or an unknown return)
        ├── InvalidWebhookEndpoint         422  (a partner's endpoint URL we will not post to)
        ├── RateLimited                    429  (Retry-After)
        └── ServiceUnavailable             503  (Retry-After)

A ``[package]`` mark names the ``gateway`` package that defines the class (this module is the
bottom layer: it imports none of them); ``tests/test_errors.py`` holds the drawing to the code.
The ``WebhookRejected`` status is the instance's, turned into a :class:`ProblemError` at the edge.

Lower layers (redis, aio-pika, psycopg) are translated into these at their boundary with
``raise ... from exc``; the HTTP edge renders only :class:`ProblemError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import msgspec


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigurationError(GatewayError):
    """A configuration file or setting the gateway cannot work with; it refuses to start."""

    setting: str | None = None
    """The ``RGW_*`` setting that points at what is wrong, when one does (see :func:`from_setting`)."""

    def one_line(self) -> str:
        """What is wrong, where, and which setting to look at, on one line (a start-up refusal)."""
        what = " ".join(str(self).split())
        return f"{what} (setting {self.setting})" if self.setting else what


@contextmanager
def from_setting(name: str) -> Iterator[None]:
    """Name the setting behind a :class:`ConfigurationError` raised in the block."""
    try:
        yield
    except ConfigurationError as exc:
        if exc.setting is None:
            exc.setting = name
        raise


class ContractRegistryError(ConfigurationError):
    """A contract could not be loaded, compiled or resolved."""


class SecretsKeyError(ConfigurationError):
    """``RGW_SECRETS_KEY`` is unset or malformed, or none of its keys opens a stored secret:
    partners' webhook secrets can be neither kept nor used until an operator fixes it."""


class DatabaseMissing(ConfigurationError):
    """The database ``RGW_DATABASE_URL`` names does not exist on its server: create it, then
    ``returns-gateway db upgrade``."""


class SchemaOutOfDate(ConfigurationError):
    """The database's schema is not the revision this code was written for: older (or empty),
    and ``returns-gateway db upgrade`` fixes it; or newer, migrated by a later release."""

    def __init__(self, detail: str, *, current: str | None, head: str) -> None:
        super().__init__(detail)
        self.current = current
        """The database's revision (``None``: no schema at all)."""
        self.head = head
        """The revision this code needs."""


class DependencyUnavailable(GatewayError):
    """A server the gateway depends on is unavailable; the same request may succeed later."""


class BrokerUnavailable(DependencyUnavailable):
    """RabbitMQ is unreachable, refused the message, or did not confirm it in time."""


class StoreUnavailable(DependencyUnavailable):
    """Redis is unreachable or timed out."""


class DatabaseUnavailable(DependencyUnavailable):
    """PostgreSQL is unreachable, refused the connection, or timed out."""


class DeliveryFailed(GatewayError):
    """A connector could not apply a message; carries what an operator needs to judge it."""

    def __init__(self, detail: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        """HTTP status the target answered, when it answered."""
        self.code = code
        """The target's own error code (``DUP_RCRD``, ``REQUIRED_FIELD_MISSING``...), when it gave one."""


class RetryableDeliveryFailure(DeliveryFailed):
    """Worth another try later: the target was down, slow, throttling or failing inside."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, status_code=status_code, code=code)
        self.retry_after = retry_after
        """Seconds the target asked us to wait (``Retry-After``), honoured as a lower bound."""


class CircuitOpen(RetryableDeliveryFailure):
    """The target's circuit is open: it was not called; try after ``retry_after`` seconds.

    Raised by the connector runtime's breaker (:mod:`gateway.runtime`), and seen by a target's
    in-process retry (:mod:`gateway.sdk`), which never retries it: the breaker decides when
    the target is called again."""


class TargetUnreachable(RetryableDeliveryFailure):
    """The target did not answer at all: the connection was refused, reset or dropped, or the
    reply did not come in time. Calls failing so one after another mean the system is down,
    whatever their share of the calls (the breaker counts them apart)."""


class NotReadyYet(RetryableDeliveryFailure):
    """The message came before what it depends on (an event for a return not opened yet): it
    waits in the retry tiers without spending an attempt, up to the runtime's deferral limit."""


class PermanentDeliveryFailure(DeliveryFailed):
    """Retrying cannot help: the target refused the content, or it could not be mapped."""


class Violation(msgspec.Struct, frozen=True):
    """One reason a payload was refused, located by an RFC 6901 JSON pointer."""

    pointer: str
    detail: str
    keyword: str | None = None


class ProblemError(GatewayError):
    """An error answered to the client as an RFC 9457 problem document."""

    status_code: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    @property
    def type_uri(self) -> str:
        """A stable identifier clients can branch on."""
        return f"urn:returns-gateway:problem:{self.slug}"


class MalformedRequest(ProblemError):
    status_code = 400
    slug = "malformed-request"
    title = "Malformed request"


class InterchangeUnusable(MalformedRequest):
    """An EDI interchange that cannot be acknowledged: no readable ISA, or an envelope too
    broken (truncated, IEA not matching the ISA) to trust any group in it."""

    slug = "edi-interchange-unusable"
    title = "The EDI interchange cannot be read"


class AuthenticationRequired(ProblemError):
    status_code = 401
    slug = "authentication-required"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="returns-gateway"'})


class PermissionDenied(ProblemError):
    status_code = 403
    slug = "permission-denied"
    title = "Permission denied"


class SenderNotAllowed(PermissionDenied):
    slug = "edi-sender-not-allowed"
    title = "The interchange's sender is not bound to this partner"


class NotFound(ProblemError):
    status_code = 404
    slug = "not-found"
    title = "Not found"


class UnknownConnector(NotFound):
    slug = "unknown-connector"
    title = "No such connector in the routing table"


class DeadLetterNotFound(NotFound):
    slug = "dead-letter-not-found"
    title = "No such message in the dead-letter queue"


class IdempotencyKeyInFlight(ProblemError):
    status_code = 409
    slug = "idempotency-key-in-flight"
    title = "A request with this idempotency key is still being processed"


class ControlNumberReused(ProblemError):
    """An EDI interchange whose sender and control number (ISA13, UNB 0020) were already used
    for an interchange with a different content: refused, never answered with the other's
    acknowledgment; the partner sends it again under a new control number."""

    status_code = 409
    slug = "edi-control-number-reused"
    title = "The interchange control number was already used for a different interchange"


class DuplicateReturn(ProblemError):
    status_code = 409
    slug = "duplicate-return"
    title = "A return with this external id already exists"


class StatusConflict(ProblemError):
    """The return is not where this request needs it (an approval for a return no one waits on)."""

    status_code = 409
    slug = "status-conflict"
    title = "Not allowed in the return's status"


class PayloadTooLarge(ProblemError):
    status_code = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(ProblemError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


LISTED_VIOLATIONS = 50
"""The most violations a refusal lists; ``total_violations`` says how many there were."""


class ContractViolation(ProblemError):
    """Lists the first :data:`LISTED_VIOLATIONS` violations (``errors``) and counts them all
    (``total_violations``; a lower bound when ``total_violations_exact`` is false)."""

    status_code = 422
    slug = "contract-violation"
    title = "The payload violates its contract"

    def __init__(
        self,
        detail: str,
        violations: Sequence[Violation],
        *,
        total: int | None = None,
        exact: bool = True,
    ) -> None:
        listed = tuple(violations[:LISTED_VIOLATIONS])
        total = len(violations) if total is None else max(total, len(listed))
        super().__init__(
            detail,
            extensions={
                "errors": [msgspec.to_builtins(v) for v in listed],
                "total_violations": total,
                "total_violations_exact": exact,
            },
        )
        self.violations = listed
        self.total = total
        """How many violations were counted (at least this many when not ``exact``)."""
        self.exact = exact


class WebhookRefused(ProblemError):
    """A connected system's webhook we cannot take: its body is unreadable, unmappable, or
    names a return we do not hold (422)."""

    status_code = 422
    slug = "webhook-refused"
    title = "The webhook cannot be taken"


class InvalidWebhookEndpoint(ProblemError):
    """A webhook endpoint a partner may not register: not https (unless allowed), no host,
    credentials in the URL, a host or address the outbound URL policy refuses (loopback,
    private, metadata...), or one endpoint too many (422)."""

    status_code = 422
    slug = "invalid-webhook-endpoint"
    title = "The webhook endpoint cannot be registered"


class IdempotencyKeyReused(ProblemError):
    status_code = 422
    slug = "idempotency-key-reused"
    title = "The idempotency key was used with a different payload"


class RateLimited(ProblemError):
    status_code = 429
    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(ProblemError):
    status_code = 503
    slug = "service-unavailable"
    title = "Service temporarily unavailable"
