"""``returns-gateway keys``: create prints the key once on its last line; list and revoke work."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

from gateway.auth import Authenticator, KeyStore
from gateway.database import open_pool
from gateway.errors import AuthenticationRequired
from gateway.settings import Settings
from tests.conftest import REDIS_URL
from tests.support.server import cli


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    namespace = f"test{uuid.uuid4().hex[:10]}"
    yield {"RGW_NAMESPACE": namespace, "RGW_REDIS_URL": REDIS_URL}
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()


async def _authenticate(env: dict[str, str], secret: str) -> str:
    settings = Settings.from_env({**os.environ, **env})  # RGW_DATABASE_URL: this run's database
    pool = await open_pool(settings.database, max_size=1)
    try:
        authenticator = Authenticator(KeyStore(pool, settings), cache_seconds=0, default_rate_limit=10)
        principal = await authenticator.authenticate(f"Bearer {secret}")
        return f"{principal.partner} {sorted(principal.scopes)} {principal.rate_limit}"
    finally:
        await pool.close()


def test_create_list_revoke(env: dict[str, str]) -> None:
    partner = f"c{uuid.uuid4().hex[:6]}"  # the run's database is shared: a partner of its own
    created = cli(
        env, "keys", "create", "--partner", partner, "--scope", "returns:write", "--rate-limit", "7"
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("rgw_") and len(secret) > 40
    assert asyncio.run(_authenticate(env, secret)) == f"{partner} ['returns:write'] 7"

    listed = cli(env, "keys", "list", "--partner", partner)
    key_id = secret.split("_")[1]
    header, *rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert header == ["key id", "partner", "scopes", "created", "revoked", "label"]
    assert [(row[0], row[1], row[2], row[4]) for row in rows] == [(key_id, partner, "returns:write", "")]
    assert secret.split("_", 2)[2] not in listed.stdout  # the secret is never shown again

    assert cli(env, "keys", "revoke", key_id).returncode == 0
    with pytest.raises(AuthenticationRequired):
        asyncio.run(_authenticate(env, secret))
    with psycopg.connect(os.environ["RGW_DATABASE_URL"]) as conn:
        row = conn.execute("SELECT revoked_by FROM api_keys WHERE id = %s", (key_id,)).fetchone()
    assert row is not None and str(row[0]).startswith("cli:")  # who revoked it, on the record


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "--partner", "Bad Partner!", "--scope", "returns:write"),
        ("keys", "create", "--partner", "acme", "--scope", "returns:everything"),
        ("keys", "revoke", "no-such-key"),
    ],
)
def test_bad_admin_input_fails_clearly(env: dict[str, str], args: tuple[str, ...]) -> None:
    result = cli(env, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
