"""`python -m migrate_tools` / `twooter-migrate`: the operator's one command."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from .errors import MigrationError
from .pipeline import migrate
from .progress import for_output

EXIT_VERIFICATION_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--to", "to", required=True, envvar="TWOOTER_MIGRATE_TO", metavar="POSTGRES_URL",
              help="The target, e.g. postgresql://twooter:secret@127.0.0.1/twooter.")
@click.option("--merge", is_flag=True, help="Add to a target that already holds data.")
@click.option("--dry-run", is_flag=True, help="Read, plan, load and verify, then roll back.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON to this file.")
@click.option("--quiet", is_flag=True, help="No progress and no summary; errors only.")
def main(sources: tuple[Path, ...], to: str, merge: bool, dry_run: bool, report_path: Path | None,
         quiet: bool) -> None:
    """Migrate SOURCES (oldest first) into the PostgreSQL database at --to.

    SOURCES are MiniTwit or Twooter SQLite files, MSSQL-era T-SQL dumps and
    Twooter JSON snapshots, recognised from their content. Exit status: 0 when
    verification agrees (and the data is committed), 1 when it does not
    (nothing committed), 2 for bad input or an unusable target, 130 when
    interrupted (nothing committed).
    """
    progress = for_output(quiet)
    try:
        report = migrate(sources, to, merge=merge, dry_run=dry_run, progress=progress)
    except MigrationError as error:
        progress.close()
        click.echo(f"error: {error}", err=True)
        click.echo("the target is unchanged", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        progress.close()
        click.echo("interrupted: nothing was committed, the target is unchanged", err=True)
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    if report_path is not None:
        report.write_json(report_path)
    if not quiet:
        report.render(Console(width=None if sys.stdout.isatty() else 120))
    sys.exit(0 if report.ok else EXIT_VERIFICATION_FAILED)
