"""``returns-gateway``: run the gateway and administer it.

Whatever needs Redis, RabbitMQ, the web stack or the contracts is imported inside the command
that uses it: ``--help`` and the commands that need none of them start without loading them
(tests/test_cli_startup.py). Option types stay cheap (typer reads them to build every command).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from gateway.auth import Scope
from gateway.cli.db import db_app
from gateway.cli.dlq import dlq_app
from gateway.cli.edi import edi_app
from gateway.cli.mappings import mappings_app
from gateway.cli.sandbox import sandbox_app
from gateway.errors import ConfigurationError, GatewayError, from_setting
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.auth import KeyStore

app = typer.Typer(help="Governed integration gateway for returns and credits.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue, list and revoke partner API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(mappings_app, name="mappings")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(edi_app, name="edi")
app.add_typer(db_app, name="db")
connector_app = typer.Typer(help="Run connectors (one process per connector).", no_args_is_help=True)
app.add_typer(connector_app, name="connector")
webhooks_app = typer.Typer(help="Partners' webhook endpoints.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

T = TypeVar("T")
err = Console(stderr=True)
#: A start-up refusal prints as one line whatever the terminal's width, paths uncoloured.
ONE_LINE: dict[str, bool] = {"highlight": False, "soft_wrap": True}


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP gateway (settings come from RGW_* environment variables)."""
    import uvicorn

    from gateway.api import create_app
    from gateway.database import ensure_schema_current

    settings = Settings.from_env()
    try:  # built and checked here first, so a defect is one line, not a worker's traceback
        built = create_app(settings)
        with from_setting("RGW_DATABASE_URL"):
            ensure_schema_current(settings.database)
    except GatewayError as exc:  # a setting (exit 2), or a server it needs at start-up (exit 1)
        said = exc.one_line() if isinstance(exc, ConfigurationError) else " ".join(str(exc).split())
        err.print(f"[red]error:[/red] cannot start the gateway: {said}", **ONE_LINE)
        raise typer.Exit(code=2 if isinstance(exc, ConfigurationError) else 1) from None
    uvicorn.run(
        built if workers == 1 else "gateway.api.app:create_app",
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


@app.command()
def demo(
    erp: Annotated[str, typer.Option(help="ERP profile: netsuite or business_central.")] = "netsuite",
    seconds: Annotated[float, typer.Option(help="Give up after this long.")] = 60.0,
) -> None:
    """Run the gateway, a connector per system and their sandboxes, submit a few returns,
    play the warehouse and the carrier, and print each return's path as it happens."""
    import asyncio

    from gateway.demo import run_demo

    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    raise typer.Exit(code=asyncio.run(run_demo(Settings.from_env(), erp=erp, give_up_after=seconds)))


@connector_app.command("run")
def connector_run(
    name: Annotated[str, typer.Argument(help="The connector's name in the routing table.")],
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Deliver the connector's messages until SIGTERM/SIGINT (routing table from RGW_ROUTES_FILE)."""
    import uvloop

    from gateway.worker import run_connector

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise at this rate
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the start-up schema check's chatter
    try:
        uvloop.run(run_connector(name, Settings.from_env()))
    except ConfigurationError as exc:
        err.print(f"[red]error:[/red] cannot start connector {name}: {exc.one_line()}", **ONE_LINE)
        raise typer.Exit(code=2) from None
    except GatewayError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc


@connector_app.command("new")
def connector_new(
    name: Annotated[str, typer.Argument(help="Connector and profile name (lower_case).")],
    role: Annotated[str, typer.Option(help="Kind of system: erp, wms, carrier or crm.")],
    root: Annotated[Path, typer.Option(help="Project folder to write into.")] = Path("."),
) -> None:
    """Write a working connector skeleton: connector, sandbox, mapping with a fixture, and a test."""
    from gateway.cli.scaffold import ScaffoldError, scaffold

    root = root.resolve()
    try:
        written = scaffold(name, root, role=role)
    except ScaffoldError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    for path in written:
        typer.echo(f"wrote {path.relative_to(root)}")
    cls = "".join(p.capitalize() for p in name.split("_"))
    typer.echo(
        f"next: pytest tests/connectors/profiles/test_{name}.py, then add it to the routing table:\n"
        f"  {name}:\n    use: connectors.{role}.{name}:{cls}Connector\n"
        f"    target: {{base_url: ..., auth: {{type: basic, username_env: ..., password_env: ...}}}}\n"
        f"try its sandbox: returns-gateway sandbox run connectors.{role}.{name}_sandbox:{cls}Sandbox"
    )


@webhooks_app.command("reencrypt")
def webhooks_reencrypt() -> None:
    """Encrypt every endpoint's signing secret again with the first key of RGW_SECRETS_KEY: the
    step of a key rotation between adding the new key (in front) and removing the old one."""
    import asyncio

    from gateway.database import open_pool
    from gateway.partners.endpoints import EndpointRegistry

    async def run() -> int:
        settings = Settings.from_env()
        database = await open_pool(settings.database, max_size=1)
        try:
            return await EndpointRegistry(database, settings).reencrypt()
        finally:
            await database.close()

    try:
        count = asyncio.run(run())
    except GatewayError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    typer.echo(f"re-encrypted {count} webhook secret(s)")


def _with_keys(action: Callable[[KeyStore], Awaitable[T]]) -> T:
    import asyncio

    from gateway.auth import KeyStore
    from gateway.database import open_pool

    async def run() -> T:
        settings = Settings.from_env()
        database = await open_pool(settings.database, max_size=1)
        try:
            return await action(KeyStore(database, settings))
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except (GatewayError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc


@keys_app.command("create")
def keys_create(
    partner: Annotated[str, typer.Option(help="Partner (tenant) the key belongs to.")],
    scope: Annotated[list[Scope], typer.Option(help="Scope to grant; repeat for several.")],
    rate_limit: Annotated[
        int | None, typer.Option(help="Set the partner's requests-per-second limit.", min=1)
    ] = None,
    label: Annotated[str, typer.Option(help="Free text to recognise the key by.")] = "",
) -> None:
    """Create a key; it is printed once, alone on the last line, and never stored."""
    issued = _with_keys(
        lambda ks: ks.create(partner, [s.value for s in scope], rate_limit=rate_limit, label=label)
    )
    err.print(
        f"key {issued.record.key_id} for partner {issued.record.partner} "
        f"scopes {' '.join(issued.record.scopes)} — store it now, it cannot be shown again"
    )
    typer.echo(issued.secret)


@keys_app.command("list")
def keys_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's keys.")] = None,
) -> None:
    """List every key (never the secret), revoked ones marked: a table on a terminal, tab-separated
    lines with a header otherwise (for scripts; nothing is cut to fit)."""
    from rich.table import Table

    records = [r for r in _with_keys(lambda ks: ks.list()) if partner is None or r.partner == partner]
    header = ("key id", "partner", "scopes", "created", "revoked", "label")
    rows = [
        (
            r.key_id,
            r.partner,
            " ".join(r.scopes),
            r.created_at.isoformat(timespec="seconds"),
            r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "",
            r.label,
        )
        for r in records
    ]
    if not sys.stdout.isatty():
        for row in (header, *rows):
            typer.echo("\t".join(row))
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id shown by 'keys list'.")]) -> None:
    """Revoke a key; every running gateway stops accepting it within a second."""
    from gateway.cli.dlq import actor

    record = _with_keys(lambda ks: ks.revoke(key_id, by=actor()))  # who revoked it, on the record
    if record is None:
        err.print(f"[red]error:[/red] no key {key_id}")
        raise typer.Exit(code=1)
    typer.echo(f"revoked {record.key_id} ({record.partner})")
