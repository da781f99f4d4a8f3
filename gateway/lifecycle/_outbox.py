"""The outbox relay: publishes the commands the lifecycle wrote to the ``outbox`` table.

The lifecycle writes the messages an event decides in the same transaction as the change that
decided them (:mod:`gateway.lifecycle._store`); the relay publishes them afterwards, each
confirmed by the broker, and marks them sent. At least once: a crash between the confirm and
the mark publishes a row again, and every consumer deduplicates by message id.

Order: rows go out by id, one relay at a time per events exchange (an advisory lock held by
the transaction that reads the batch), and a batch stops at its first failure, so the messages
about one return leave in the order they were decided. A row the broker refuses stays unsent,
counted in ``attempts`` with its ``last_error``, and is tried again after a pause that grows up
to :data:`MAX_PAUSE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gateway.broker import BrokerPublisher
from gateway.broker.names import events_exchange_name
from gateway.database import database_errors
from gateway.database.tables import OUTBOX
from gateway.envelope import Envelope
from gateway.errors import BrokerUnavailable, DatabaseUnavailable
from gateway.settings import Settings

log = logging.getLogger(__name__)

BATCH = 200
"""Rows published per transaction."""
IDLE_SECONDS = 1.0
"""How often the relay looks for rows when nobody woke it (rows of another process)."""
MAX_PAUSE_SECONDS = 10.0
"""The longest pause after a failure (broker or database away)."""
KEEP_SENT = dt.timedelta(days=7)
"""How long a sent row is kept (to see what was published, and when) before it is deleted."""
PURGE_EVERY_SECONDS = 600.0
"""How often the relay deletes rows sent longer ago than :data:`KEEP_SENT`."""

_envelope = msgspec.json.Decoder(Envelope)
_payload = msgspec.json.Decoder(dict[str, Any])


class OutboxRelay:
    """Publishes one namespace's unsent outbox rows; :meth:`start` it, :meth:`wake` it after a
    commit that wrote rows, :meth:`aclose` it (safe twice)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: Settings,
        *,
        publisher: BrokerPublisher | None = None,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._pool = pool
        self._url = settings.database
        self._exchange = events_exchange_name(settings)
        self._owns_publisher = publisher is None
        self._publisher = publisher or BrokerPublisher(settings)
        self._idle = idle_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._purged_at = 0.0

    async def start(self) -> None:
        """Connect to the broker (in the background if it is away) and start relaying."""
        if self._task is not None:
            return
        if self._owns_publisher:
            await self._publisher.start()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    def wake(self) -> None:
        """Rows were committed: relay them now rather than at the next look."""
        self._wake.set()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_publisher:
            await self._publisher.close()

    async def _run(self) -> None:
        pause = 0.0
        while True:
            try:
                sent, failed = await self.relay_once()
            except (DatabaseUnavailable, BrokerUnavailable) as exc:
                sent, failed = 0, True
                log.warning("outbox relay: %s", exc)
            except Exception:  # a bug must not stop the relay for good
                sent, failed = 0, True
                log.exception("outbox relay failed")
            if failed:
                pause = min(MAX_PAUSE_SECONDS, max(0.2, pause * 2))
                await asyncio.sleep(pause)
                continue
            pause = 0.0
            if sent == BATCH:
                continue  # more waiting
            if time.monotonic() - self._purged_at > PURGE_EVERY_SECONDS:
                with contextlib.suppress(DatabaseUnavailable):
                    await self.purge_sent()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle)
            self._wake.clear()

    async def purge_sent(self, older_than: dt.timedelta = KEEP_SENT) -> int:
        """Delete this namespace's rows sent longer ago than ``older_than``; answer how many."""
        with database_errors(self._url):
            async with self._pool.connection() as conn:
                deleted = await conn.execute(
                    f"DELETE FROM {OUTBOX} WHERE exchange = %s AND sent_at < now() - %s",
                    (self._exchange, older_than),
                )
        self._purged_at = time.monotonic()
        return deleted.rowcount

    async def relay_once(self) -> tuple[int, bool]:
        """Publish one batch of unsent rows, oldest first: (rows sent, whether one failed)."""
        with database_errors(self._url):
            async with self._pool.connection() as conn, conn.transaction():
                return await self._relay(conn)

    async def _relay(self, conn: AsyncConnection[Any]) -> tuple[int, bool]:
        locked = await (
            await conn.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 2))", (self._exchange,))
        ).fetchone()
        if not locked or not locked[0]:
            return 0, False  # another process relays this namespace now
        rows = await (
            await conn.execute(
                f"SELECT id, message_id, body FROM {OUTBOX} WHERE sent_at IS NULL AND exchange = %s "
                "ORDER BY id LIMIT %s",
                (self._exchange, BATCH),
            )
        ).fetchall()
        sent: list[int] = []
        failed = False
        for row_id, message_id, body in rows:
            envelope = _envelope.decode(body)
            try:
                await self._publisher.publish(envelope, _payload.decode(envelope.payload))
            except BrokerUnavailable as exc:
                failed = True
                log.warning("outbox relay: %s not published, kept for later: %s", message_id, exc)
                await conn.execute(
                    f"UPDATE {OUTBOX} SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                    (str(exc)[:1000], row_id),
                )
                break  # keep the order: nothing after it goes before it
            sent.append(row_id)
        if sent:
            await conn.execute(
                f"UPDATE {OUTBOX} SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY(%s)", (sent,)
            )
        return len(sent), failed
