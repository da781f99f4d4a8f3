"""``returns-gateway mappings ...``: check every mapping and run the fixtures each ships."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.mapping import MappingCatalog

mappings_app = typer.Typer(help="Check mappings and run their fixtures.", no_args_is_help=True)


def _catalog() -> MappingCatalog:
    from gateway.mapping import MappingCatalog, MappingDefinitionError

    settings = Settings.from_env()
    try:
        return MappingCatalog.load(settings.mappings_dir, settings.contracts_dir)
    except MappingDefinitionError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(code=1) from exc


@mappings_app.command("check")
def check() -> None:
    """Load and compile every mapping; print each problem as file:line and fail if any."""
    catalog = _catalog()
    if not len(catalog):
        typer.echo(f"no mappings in {Settings.from_env().mappings_dir}: nothing was checked", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"{len(catalog)} mappings compiled, no problems")


@mappings_app.command("test")
def test(
    profile: Annotated[str | None, typer.Argument(help="Only this profile (folder under mappings/).")] = None,
) -> None:
    """Run every fixture (input → expected output) and report each difference."""
    from gateway.mapping import fixture_problems

    failed = passed = 0
    for mapping in sorted(_catalog(), key=lambda m: (m.profile, m.name)):
        if profile is not None and mapping.profile != profile:
            continue
        for fixture in mapping.fixtures:
            problems = fixture_problems(mapping, fixture)
            label = f"{mapping.profile}/{mapping.name} [{fixture.name}]"
            if problems:
                failed += 1
                typer.secho(f"FAIL {label}", fg=typer.colors.RED)
                for problem in problems:
                    typer.echo(f"     {problem}")
            else:
                passed += 1
                typer.echo(f"ok   {label}")
    typer.echo(f"{passed} passed, {failed} failed")
    if failed or not passed:
        raise typer.Exit(code=1)
