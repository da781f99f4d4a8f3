"""The routing table: which messages go to which connectors, as an operator-edited YAML file.

Example (``routes.yaml``)::

    connectors:
      erp:
        use: gateway.builtin.webhook:WebhookConnector   # what `returns-gateway connector run erp` runs
        target: {base_url: "https://erp.internal", timeout_seconds: 10, token_env: RGW_ERP_TOKEN}
        circuit: {failure_rate: 0.5, minimum_calls: 20, window_seconds: 30, open_seconds: 30}
        delivery_limit: 10          # deliveries before a message is dead-lettered as poison
        retry_delays_ms: [1000, 5000, 30000, 120000, 600000]
      crm: {}
    routes:
      - id: returns-to-erp
        message: return-request.v1  # topic pattern: '*' one word, '#' any words
        to: [erp, crm]
      - id: edi-returns-to-wms
        message: return-request.v1
        when: {channel: [edi]}      # content conditions, all must hold; values are alternatives
        to: [wms]

A table that does not parse, names an unknown connector, repeats a route id or uses an
unknown condition is refused at start-up with the place it went wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from gateway.errors import ConfigurationError

#: Payload fields a route may test; the publisher copies them into message headers.
CONDITION_FIELDS = ("partner", "channel", "reason_code")

_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_PATTERN = re.compile(r"^(\*|#|[a-z0-9][a-z0-9_-]*)(\.(\*|#|[a-z0-9][a-z0-9_-]*))*$")

Name = Annotated[str, msgspec.Meta(pattern=_NAME)]
Delay = Annotated[int, msgspec.Meta(ge=100, le=86_400_000)]


class RoutingTableError(ConfigurationError):
    """The routing table is missing, malformed or inconsistent."""


_ENV_NAME = r"^[A-Z][A-Z0-9_]*$"


class OAuth2ClientCredentials(
    msgspec.Struct,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="oauth2_client_credentials",
    tag_field="type",
):
    """OAuth2 client credentials grant (Business Central, NetSuite M2M, Salesforce, Extensiv):
    the connector fetches a bearer token and fetches a new one before it expires or on a 401."""

    token_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    client_id_env: Annotated[str, msgspec.Meta(pattern=_ENV_NAME)]
    client_secret_env: Annotated[str, msgspec.Meta(pattern=_ENV_NAME)]
    scope: str | None = None
    client_auth: Literal["basic", "body"] = "basic"
    """How the client id and secret reach the token endpoint: HTTP Basic (RFC 6749's preferred
    way), or as form fields (``client_id``, ``client_secret``) for endpoints that want them so."""


class BasicAuth(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="basic", tag_field="type"):
    """HTTP Basic (EasyPost takes its API key as the user name, with no password)."""

    username_env: Annotated[str, msgspec.Meta(pattern=_ENV_NAME)]
    password_env: Annotated[str, msgspec.Meta(pattern=_ENV_NAME)] | None = None


class TargetSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The system a connector calls: one shared HTTP client per target is built from this."""

    base_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0
    """Longest wait for any one read, write or pooled connection; keep it below the effect lease."""
    connect_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 3.0
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 32
    token_env: Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9_]*$")] | None = None
    """Environment variable holding the target's bearer token: secrets never sit in this file."""
    auth: OAuth2ClientCredentials | BasicAuth | None = None
    """How else to authenticate; credentials are named by environment variable, never written here."""
    tries: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    """Tries of a call that is safe to repeat (GET, HEAD, PUT, DELETE, OPTIONS, or a POST or PATCH
    carrying an idempotency key), the first included, before its retryable failure (5xx, 429,
    timeout, refused connection) goes to the runtime's retry tiers. They wait a jittered
    exponential backoff from 0.1 s, at least the target's ``Retry-After``, and none starts
    ``timeout_seconds`` or more after the first (a call takes at most about twice that). 1
    retries nothing here; other calls are only tried again when their connection failed to open."""
    max_retry_after_seconds: Annotated[float, msgspec.Meta(ge=0, le=60)] = 5.0
    """Longest ``Retry-After`` waited in-process; a target asking for longer is left to the retry
    tiers at once, so the message does not hold its place in the prefetch meanwhile."""


class CircuitSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """When a target counts as down, so its connector stops calling it, and for how long.

    Every call to the target counts once, after its in-process tries (``target.tries``): a
    failure is a retryable one (5xx, 429, timeout, refused connection); any answer the target
    gave otherwise, a 4xx included, is a success (the system is up). The circuit opens when
    either holds: ``failure_rate`` of the calls in the last ``window_seconds`` failed, and there
    were at least ``minimum_calls`` of them; or ``consecutive_failures`` calls in a row got no
    answer at all. Some calls failing is not the system being down.
    """

    failure_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    """Share of failed calls in the window that opens it."""
    minimum_calls: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20
    """Calls the window must hold before its failure rate counts: a few failures among a few
    calls (a quiet hour) open nothing."""
    window_seconds: Annotated[float, msgspec.Meta(ge=1, le=600)] = 30.0
    """How far back the failure rate looks (the last ``window_seconds``, sliding by the second)."""
    consecutive_failures: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    """Calls in a row that got no answer at all (connection refused or reset, timed out) that
    open it, whatever the window holds: a system that is gone is down after a few calls."""
    open_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    """How long it stays open; then one trial message decides whether it closes again."""


class ConnectorSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One connector: its delivery topology, and how its process builds and calls it."""

    use: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")] | None = None
    """``module:Class`` of the connector; ``returns-gateway connector run`` imports it."""

    target: TargetSpec | None = None
    options: dict[str, Any] = {}
    """Connector-specific settings, handed to the connector as they are."""

    prefetch: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 32
    """Messages one connector process works on at once."""

    circuit: CircuitSpec = msgspec.field(default_factory=CircuitSpec)

    delivery_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    """Deliveries (including redeliveries after a crash) before the broker dead-letters the message."""

    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 8
    """Tries (the first included) before a retryable failure is dead-lettered."""

    retry_delays_ms: Annotated[list[Delay], msgspec.Meta(min_length=1, max_length=16)] = msgspec.field(
        default_factory=lambda: [1_000, 5_000, 30_000, 120_000, 600_000]
    )
    """Retry tiers: a failed message waits in the tier nearest its backoff, then comes back."""


class Route(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Messages of one type (pattern), optionally filtered by content, sent to connectors."""

    id: Name
    message: str
    to: Annotated[list[Name], msgspec.Meta(min_length=1)]
    when: dict[str, Annotated[list[str], msgspec.Meta(min_length=1, max_length=32)]] = {}


class RoutingTable(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Connectors and the routes that feed them."""

    connectors: dict[Name, ConnectorSpec] = {}
    routes: list[Route] = []

    def routes_to(self, connector: str) -> list[Route]:
        return [r for r in self.routes if connector in r.to]


def _check(table: RoutingTable) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for index, route in enumerate(table.routes):
        where = f"routes[{index}] ({route.id})"
        if route.id in seen:
            problems.append(f"{where}: route id '{route.id}' is used twice")
        seen.add(route.id)
        if not _PATTERN.match(route.message):
            problems.append(
                f"{where}: message '{route.message}' is not a topic pattern like 'return-request.v1'"
            )
        for connector in route.to:
            if connector not in table.connectors:
                problems.append(f"{where}: connector '{connector}' is not declared under 'connectors'")
        for field in route.when:
            if field not in CONDITION_FIELDS:
                allowed = ", ".join(CONDITION_FIELDS)
                problems.append(f"{where}: cannot route on '{field}'; use one of {allowed}")
    return problems


#: Settings a table may still carry from an earlier version, and what took their place.
_RENAMED = {
    "failure_threshold": (
        " (circuit.failure_threshold is gone: the circuit opens on a failure rate over a window,"
        " failure_rate, minimum_calls and window_seconds, or on consecutive_failures calls in a row"
        " that got no answer)"
    ),
}


def parse_routing_table(text: bytes | str, *, source: str = "routing table") -> RoutingTable:
    """Decode and cross-check a routing table; every problem is reported at once."""
    try:
        table = msgspec.yaml.decode(text, type=RoutingTable)
    except msgspec.ValidationError as exc:
        hint = _RENAMED.get(str(exc).partition("`")[2].partition("`")[0], "")
        raise RoutingTableError(f"{source}: {exc}{hint}") from exc
    except msgspec.DecodeError as exc:
        raise RoutingTableError(f"{source}: not valid YAML: {exc}") from exc
    problems = _check(table)
    if problems:
        raise RoutingTableError(f"{source}: " + "; ".join(problems))
    return table


def load_routing_table(path: Path) -> RoutingTable:
    """Read ``path``; a missing file is an error, not an empty table."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RoutingTableError(f"cannot read routing table {path}: {exc}") from exc
    return parse_routing_table(text, source=str(path))
