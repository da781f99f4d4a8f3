"""``returns-gateway sandbox ...``: serve a system's sandbox to try connectors and mappings."""

from __future__ import annotations

from typing import Annotated

import typer

sandbox_app = typer.Typer(help="Serve sandboxes that speak each system's API.", no_args_is_help=True)


@sandbox_app.command("list")
def list_sandboxes() -> None:
    """The profiles that have a sandbox."""
    from gateway.sandbox import sandbox_profiles

    for profile, path in sorted(sandbox_profiles().items()):
        typer.echo(f"{profile:20} {path}")


@sandbox_app.command("run")
def run(
    profile: Annotated[str, typer.Argument(help="Profile to serve (see 'sandbox list'), or module:Class.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 9001,
    client_id: Annotated[str, typer.Option(help="Client id (or Basic user) it accepts.")] = "sandbox-client",
    client_secret: Annotated[str, typer.Option(help="Secret it accepts.", envvar="RGW_SANDBOX_SECRET")] = (
        "sandbox-secret"
    ),
) -> None:
    """Serve one sandbox until interrupted. Faults: POST /_sandbox/faults; state: GET /_sandbox/records."""
    from gateway.sandbox import Credentials, build_sandbox, server_for

    try:
        sandbox = build_sandbox(profile, Credentials(client_id, client_secret))
    except KeyError as exc:
        typer.echo(exc.args[0], err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"{profile} sandbox on http://{host}:{port} (client id {client_id})")
    server_for(sandbox, host, port).run()
