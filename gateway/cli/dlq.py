"""``returns-gateway dlq``: the dead-letter desk from a shell, straight against RabbitMQ and Redis.

Settings come from the same ``RGW_*`` variables as the gateway (``RGW_ROUTES_FILE`` names the
connectors). Actions are audited as ``cli:<OS user>``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.markup import escape

from gateway.errors import ContractViolation, DependencyUnavailable, GatewayError
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.deadletters import DeadLetter, DeadLetterDesk, QueueListing

dlq_app = typer.Typer(
    help="Browse, replay and discard connectors' dead letters (every action is audited).",
    no_args_is_help=True,
)

T = TypeVar("T")
out = Console()
err = Console(stderr=True)

ConnectorArg = Annotated[str, typer.Argument(help="Connector name, as in the routing table.")]


def actor() -> str:
    """``cli:<OS user>``: who did it, as the audit log records it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = os.environ.get("USER") or "unknown"
    return f"cli:{user}"


def _report(exc: BaseException) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}")
    if isinstance(exc, ContractViolation):
        for violation in exc.violations:
            err.print(f"  {violation.pointer or '/'}: {violation.detail}", markup=False, highlight=False)


def _with_desk(action: Callable[[DeadLetterDesk], Awaitable[T]]) -> T:
    import asyncio

    from gateway.database import open_pool
    from gateway.deadletters import DeadLetterDesk
    from gateway.registry import ContractRegistry
    from gateway.routing import load_routing_table

    async def run() -> T:
        settings = Settings.from_env()
        routing = load_routing_table(settings.routes_file) if settings.routes_file else None
        registry = ContractRegistry.from_folder(settings.contracts_dir)
        database = await open_pool(settings.database, max_size=1)
        desk = DeadLetterDesk(settings, registry=registry, database=database, routing=routing)
        try:
            return await action(desk)
        finally:
            await desk.aclose()
            await database.close()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        _report(exc)
        raise typer.Exit(code=1) from exc


def _print_listing(listing: QueueListing) -> None:
    # Plain lines, not a table: message ids are copied into show/replay/discard, and a table
    # narrow enough for a terminal would fold or cut them.
    out.print(
        f"[bold]{listing.connector}[/bold]: {listing.depth} dead letter(s) in {listing.queue}",
        highlight=False,
    )
    for d in listing.dead_letters:
        r = d.reason
        status = f" (HTTP {r.status_code})" if r.status_code else ""
        typer.echo(f"  #{d.position}  {d.message_id}  {d.message_type or '?'}  partner {d.partner or '?'}")
        typer.echo(
            f"      {r.error}{status} after {r.attempts} attempt(s), last {r.last_failure_at or '?'}"
            f" [{d.dead_lettered_by}]"
        )
        typer.echo(f"      {r.detail[:200]}")


@dlq_app.command("list")
def dlq_list(
    connector: Annotated[str | None, typer.Option(help="Only this connector (default: every one).")] = None,
    limit: Annotated[int, typer.Option(help="Dead letters shown per connector.", min=1, max=1000)] = 50,
) -> None:
    """List dead letters, oldest first, with each queue's depth; nothing is taken from the queues."""

    async def listing(desk: DeadLetterDesk) -> list[QueueListing]:
        return [await desk.list(connector, limit)] if connector else await desk.list_all(limit)

    found = _with_desk(listing)
    if not found:
        err.print("no connectors: set RGW_ROUTES_FILE to the routing table")
    for queue in found:
        _print_listing(queue)


def _print_dead_letter(dead: DeadLetter) -> None:
    r = dead.reason
    out.print(f"[bold]{escape(dead.message_id)}[/bold]  {dead.connector}, position {dead.position}")
    for label, value in (
        ("type", dead.message_type),
        ("correlation id", dead.correlation_id),
        ("partner", dead.partner),
        ("dead-lettered by", dead.dead_lettered_by),
        ("error", f"{r.error}" + (f" (HTTP {r.status_code})" if r.status_code else "")),
        ("detail", r.detail),
        ("attempts", str(r.attempts)),
        ("first failure", r.first_failure_at),
        ("last failure", r.last_failure_at),
    ):
        out.print(f"  {label:<17}{value or ''}", markup=False, highlight=False)
    out.print("[bold]headers[/bold]")
    out.print_json(data=dead.headers)
    out.print("[bold]envelope[/bold]" if dead.envelope is not None else "[bold]body (not an envelope)[/bold]")
    if dead.envelope is not None:
        out.print_json(data=dead.envelope)
    else:
        out.print(dead.body, highlight=False, markup=False)


@dlq_app.command("show")
def dlq_show(
    connector: ConnectorArg,
    message_id: Annotated[str, typer.Argument(help="The dead letter's message id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the dead letter as JSON.")] = False,
) -> None:
    """Show one dead letter: why it died, its headers and its envelope."""
    dead = _with_desk(lambda desk: desk.show(connector, message_id))
    if as_json:
        typer.echo(msgspec.json.format(msgspec.json.encode(dead), indent=2))
    else:
        _print_dead_letter(dead)


def _read_payload(path: Path) -> Any:
    try:
        return msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise typer.BadParameter(f"cannot read JSON from {path}: {exc}", param_hint="--payload") from exc


@dlq_app.command("replay")
def dlq_replay(
    connector: ConnectorArg,
    message_ids: Annotated[list[str] | None, typer.Argument(help="Dead letters to replay.")] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter present now, as it is.")
    ] = False,
    payload: Annotated[
        Path | None,
        typer.Option(help="Corrected payload (JSON file) for a single message id; checked first."),
    ] = None,
    note: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
) -> None:
    """Send dead letters back to their connector (and no other), failure headers reset."""
    ids = list(message_ids or [])
    if replay_all == bool(ids):
        raise typer.BadParameter("give message ids, or --all (not both)")
    if payload is not None and (replay_all or len(ids) != 1):
        raise typer.BadParameter("--payload corrects exactly one message id", param_hint="--payload")
    corrected = _read_payload(payload) if payload is not None else None
    who = actor()
    if replay_all:
        _replay_everything(connector, who, note)
        return

    async def replay(desk: DeadLetterDesk) -> int:
        failed = 0
        for message_id in ids:
            try:
                result = await desk.replay(connector, message_id, payload=corrected, actor=who, note=note)
            except DependencyUnavailable:
                raise
            except GatewayError as exc:
                _report(exc)
                failed += 1
                continue
            fixed = (
                f" as {result.replayed_as}, with the corrected payload" if result.payload_corrected else ""
            )
            typer.echo(f"replayed {result.message_id}{fixed}")
        return failed

    if _with_desk(replay):
        raise typer.Exit(code=1)


def _replay_everything(connector: str, who: str, note: str) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("replaying {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(connector, total=None)
        result = _with_desk(
            lambda desk: desk.replay_all(
                connector,
                actor=who,
                note=note,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        )
    typer.echo(f"replayed {result.replayed} of {result.depth_at_start} dead letter(s) of {connector}")


@dlq_app.command("discard")
def dlq_discard(
    connector: ConnectorArg,
    message_ids: Annotated[list[str], typer.Argument(help="Dead letters to discard.")],
    reason: Annotated[str, typer.Option(help="Why they are discarded (required; audited).")],
) -> None:
    """Remove dead letters for good."""
    who = actor()

    async def discard(desk: DeadLetterDesk) -> int:
        failed = 0
        for message_id in message_ids:
            try:
                result = await desk.discard(connector, message_id, actor=who, reason=reason)
            except DependencyUnavailable:
                raise
            except GatewayError as exc:
                _report(exc)
                failed += 1
                continue
            typer.echo(f"discarded {result.message_id}")
        return failed

    if _with_desk(discard):
        raise typer.Exit(code=1)


@dlq_app.command("audit")
def dlq_audit(
    limit: Annotated[int, typer.Option(help="Entries shown, newest first.", min=1, max=10_000)] = 50,
) -> None:
    """Who replayed or discarded which dead letter, and why; newest first."""
    entries = _with_desk(lambda desk: desk.audit.recent(limit))
    for e in entries:
        action = e.action + (" (corrected)" if e.payload_corrected else "")
        replayed_as = f" as {e.replayed_as}" if e.replayed_as and e.replayed_as != e.message_id else ""
        said = e.reason or e.note
        typer.echo(
            f"{e.at.isoformat(timespec='seconds')}  {e.actor}  {action}  {e.connector}/{e.message_id}"
            f"{replayed_as}" + (f"  -- {said}" if said else "")
        )
