"""Gateway settings, read once from ``RGW_*`` environment variables.

Every field documents its environment variable; README's configuration table is
built from the same names, so keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "RGW_"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/returns_gateway"
"""The local PostgreSQL database ``scripts/services-up.sh`` creates: ``RGW_DATABASE_URL``'s default."""


def shipped(name: str) -> Path:
    """A folder or file the project ships (``contracts``, ``mappings``, ``routes.yaml``...).

    An installed wheel carries them as package data under ``gateway/_shipped``; a source
    checkout (or an editable install of one) has them at the project's root.
    """
    packaged = resources.files("gateway").joinpath("_shipped", name)
    if isinstance(packaged, Path) and packaged.exists():
        return packaged
    return PROJECT_ROOT / name


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Runtime configuration of the gateway."""

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    """``RGW_AMQP_URL``: the RabbitMQ broker the gateway publishes to."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """``RGW_REDIS_URL``: Redis for API keys, idempotency records, rate limits and return state."""

    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    """``RGW_DATABASE_URL``: the PostgreSQL database that holds the record (libpq URL or
    ``key=value`` string), migrated by ``returns-gateway db upgrade``. The gateway and every
    ``connector run`` refuse to start unless its schema is the one their code was written for.
    Kept out of ``repr``: it may hold a password."""

    database_pool_size: int = 10
    """``RGW_DATABASE_POOL_SIZE``: most connections one process holds open to PostgreSQL."""

    retention_days: int = 365
    """``RGW_RETENTION_DAYS``: days personal data (contacts, addresses, notes) is kept on a closed
    return, after which ``returns-gateway db purge`` erases it; amounts and the audit trail stay."""

    namespace: str = "rgw"
    """``RGW_NAMESPACE``: prefix of every exchange, queue and Redis key, so deployments can share servers."""

    contracts_dir: Path = field(default_factory=lambda: shipped("contracts"))
    """``RGW_CONTRACTS_DIR``: folder holding ``<name>/<version>/schema.json`` contracts."""

    mappings_dir: Path = field(default_factory=lambda: shipped("mappings"))
    """``RGW_MAPPINGS_DIR``: folder of mapping files, ``<profile>/<contract>.<version>.<direction>.yaml``."""

    policies_dir: Path = field(default_factory=lambda: shipped("policies"))
    """``RGW_POLICIES_DIR``: folder of lifecycle policy files (``*.yaml``: return windows, approvals,
    evidence, dispositions), checked at start-up."""

    routes_file: Path | None = None
    """``RGW_ROUTES_FILE``: the routing table (YAML); unset, every message waits in ``<ns>.unrouted``."""

    edi_partners_file: Path | None = field(default_factory=lambda: shipped("edi-partners.yaml"))
    """``RGW_EDI_PARTNERS_FILE``: EDI trading-partner profiles (sender ids, code tables), checked at
    start-up."""

    effect_retention_seconds: int = 7 * 86_400
    """``RGW_EFFECT_RETENTION_SECONDS``: how long a connector remembers a message it applied
    (longer than any redelivery or replay of it is expected to take)."""

    effect_lease_seconds: float = 15.0
    """``RGW_EFFECT_LEASE_SECONDS``: a worker's lease on a message it is applying, renewed every
    third of it while the worker lives: a worker killed mid-call holds the message back this
    long at most before another may apply it."""

    max_body_bytes: int = 1_048_576
    """``RGW_MAX_BODY_BYTES``: largest request body accepted; larger answers 413."""

    idempotency_ttl_seconds: int = 86_400
    """``RGW_IDEMPOTENCY_TTL_SECONDS``: how long an idempotency key and its response are kept."""

    idempotency_lease_seconds: int = 30
    """``RGW_IDEMPOTENCY_LEASE_SECONDS``: how long a request may hold its key in flight before another
    request with the same key may take over (covers a gateway that died mid-request)."""

    redis_batch_linger_ms: float = 2.0
    """``RGW_REDIS_BATCH_LINGER_MS``: under load, how long the idempotency scripts of concurrent
    requests wait to share one Redis round trip (less CPU per request for up to this much more
    latency per call; a lone request never waits); 0 sends each batch at once."""

    default_rate_limit: int = 100
    """``RGW_DEFAULT_RATE_LIMIT``: requests per second for a partner without a limit of its own."""

    webhook_rate_limit: int = 100
    """``RGW_WEBHOOK_RATE_LIMIT``: requests per second that one client address may send to one
    connector's ``/v1/webhooks/{connector}`` (unauthenticated, so limited per source); over it,
    429 with ``Retry-After``. Behind a proxy, let uvicorn take the client address from
    ``X-Forwarded-For`` (its ``FORWARDED_ALLOW_IPS``), or every client counts as the proxy."""

    auth_cache_seconds: float = 0.5
    """``RGW_AUTH_CACHE_SECONDS``: how long a verified API key is trusted without asking Redis again;
    also the longest a revoked key keeps working on a running gateway. At most 0.5 (a larger value
    is cut to it, with a warning), so a revocation takes effect within a second on every replica."""

    publish_timeout_seconds: float = 5.0
    """``RGW_PUBLISH_TIMEOUT_SECONDS``: how long to wait for the broker's confirm before answering 503."""

    retry_after_seconds: int = 5
    """``RGW_RETRY_AFTER_SECONDS``: the ``Retry-After`` a client gets when the broker is unavailable."""

    webhook_allow_http: bool = False
    """``RGW_WEBHOOK_ALLOW_HTTP``: let partners register ``http://`` webhook endpoints, not only
    ``https://`` (for tests and the demo on loopback; leave it off in production)."""

    secrets_key: str = field(default="", repr=False)
    """``RGW_SECRETS_KEY``: Fernet key(s) that encrypt partners' webhook signing secrets in Redis
    (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
    Comma-separated, newest first: the first encrypts, all decrypt. Rotation: prepend a new key
    everywhere, run ``returns-gateway webhooks reencrypt``, then remove the old key. Unset, the
    webhook-endpoint API answers 503 and the partner-webhooks connector refuses to start."""

    webhook_allowed_hosts: str = ""
    """``RGW_WEBHOOK_ALLOWED_HOSTS``: exceptions to the outbound URL policy of partners' webhooks
    (public addresses only: no loopback, private, link-local, CGNAT... see
    ``gateway.partners._url_policy``), comma-separated: host names, trusted with whatever they
    resolve to, and CIDRs (``10.20.0.0/16``, ``127.0.0.1``), whose addresses are allowed. For a
    deployment that must reach an internal receiver, and for tests on loopback; empty by default."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``RGW_*`` variables; explicit ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(ENV_PREFIX + spec.name.upper())
            if raw is None:
                continue
            default = spec.default
            if isinstance(default, bool):
                values[spec.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                values[spec.name] = int(raw)
            elif isinstance(default, float):
                values[spec.name] = float(raw)
            elif spec.name.endswith(("_dir", "_file")):
                values[spec.name] = Path(raw) if raw else spec.default
            else:
                values[spec.name] = raw
        values.update(overrides)
        return cls(**values)

    @property
    def database(self) -> str:
        """The database to migrate and connect to (``RGW_DATABASE_URL``)."""
        return self.database_url or DEFAULT_DATABASE_URL

    def key(self, *parts: str) -> str:
        """A Redis key inside this deployment's namespace."""
        return ":".join((self.namespace, *parts))

    def amqp_name(self, *parts: str) -> str:
        """An exchange or queue name inside this deployment's namespace."""
        return ".".join((self.namespace, *parts))
