"""``returns-gateway db purge``: erase personal data on returns closed longer than the retention.

What goes (``RGW_RETENTION_DAYS`` after a return closed): its request's ``contact``,
``ship_from`` and ``notes``, and each line's ``notes``. What stays: amounts, lines, the customer's
account and the whole audit trail. ``--dry-run`` lists what would go and changes nothing; a run
without it erases, and running it again erases nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gateway.errors import GatewayError
from gateway.settings import Settings

err = Console(stderr=True)


async def _purge(url: str, before: dt.datetime, dry_run: bool) -> tuple[int, list[str]]:
    import psycopg

    from gateway.database import CONNECT_TIMEOUT_SECONDS, database_errors
    from gateway.reporting import due_for_erasure, erase_personal_data

    with database_errors(url):
        connection = await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="returns-gateway purge",
        )
    async with connection:
        if dry_run:
            due = await due_for_erasure(connection, url, before)
            lines = [
                f"{d.return_id}  {d.partner}  closed {d.closed_at.isoformat()}  {', '.join(d.fields)}"
                for d in due
            ]
            return len(due), lines
        try:
            return await erase_personal_data(connection, url, before), []
        except psycopg.errors.InsufficientPrivilege as exc:
            raise GatewayError(f"not allowed to update returns: {exc}") from exc


def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be erased; change nothing.")
    ] = False,
    days: Annotated[
        int | None, typer.Option(min=0, help="Retention in days (default: RGW_RETENTION_DAYS).")
    ] = None,
) -> None:
    """Erase personal data (contacts, addresses, notes) of returns closed longer than the retention."""
    settings = Settings.from_env()
    retention = settings.retention_days if days is None else days
    before = dt.datetime.now(dt.UTC) - dt.timedelta(days=retention)
    try:
        count, lines = asyncio.run(_purge(settings.database, before, dry_run))
    except GatewayError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    closed = f"closed before {before.isoformat(timespec='seconds')} ({retention} days of retention)"
    if dry_run:
        typer.echo(f"would erase personal data of {count} return(s) {closed}")
        for line in lines:
            typer.echo(line)
    else:
        typer.echo(f"erased personal data of {count} return(s) {closed}")
