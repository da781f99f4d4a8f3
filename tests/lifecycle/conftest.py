"""The lifecycle's fixtures: a pool on the run's database, as a connector process opens one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from gateway.database import open_pool
from gateway.settings import Settings


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(settings.database, max_size=6)
    yield pool
    await pool.close()
