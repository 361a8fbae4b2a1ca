"""One migration run: sources → staging → plan → write → verify → commit or roll back."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import psycopg2
import sqlalchemy as sa

from . import direct, plan, staging, target, verify
from .errors import MigrationError, TargetError, first_line
from .progress import Quiet
from .report import Report, SourceReport
from .sources import Source, open_source

# Session settings for one large transaction: staging and plan tables are
# temporary (the server's session memory, allocated as used, then temp files),
# sorts and index builds get room to work in memory.
SESSION_SETTINGS = (
    "SET temp_buffers = '1GB'",
    "SET work_mem = '256MB'",
    "SET maintenance_work_mem = '512MB'",
    # Compiling expressions costs more than it saves on these one-off statements.
    "SET jit = off",
)


def migrate(
    paths: Sequence[Path | str],
    to: str,
    *,
    merge: bool = False,
    dry_run: bool = False,
    progress: Quiet | None = None,
    allow_direct: bool = True,
) -> Report:
    """Migrate every source into the target in one transaction.

    Returns the report (its `ok` says whether verification agreed). Raises
    MigrationError for bad input or an unusable target; the target is then
    exactly as it was. `allow_direct=False` sends even a lone MiniTwit file
    through the staged path (see direct.py), to compare the two.
    """
    started = time.monotonic()
    progress = progress or Quiet()
    sources = [open_source(path) for path in paths]  # bad files fail before the target is touched
    url = target.target_url(to)
    report = Report(target=target.shown(url), dry_run=dry_run, merge=merge)
    connection = target.connect(url)
    try:
        for setting in SESSION_SETTINGS:
            connection.exec_driver_sql(setting)
        connection.commit()
        transaction = connection.begin()
        try:
            _load(connection, sources, report, merge, progress, allow_direct)
        except BaseException:
            transaction.rollback()
            raise
        if dry_run or not report.ok:
            transaction.rollback()
        else:
            progress.phase("committing")
            transaction.commit()
            report.committed = True
    except (sa.exc.DBAPIError, psycopg2.Error) as error:
        raise _target_error(error, report.target) from None
    finally:
        connection.close()
        report.seconds = time.monotonic() - started
    return report


def _load(connection: sa.Connection, sources: list[Source], report: Report, merge: bool,
          progress: Quiet, allow_direct: bool) -> None:
    report.revision_before = target.upgrade_schema(connection)
    report.target_before = target.lock_and_count(connection)
    if any(report.target_before.values()) and not merge:
        held = ", ".join(f"{n} {table}" for table, n in report.target_before.items())
        raise TargetError(
            f"the target {report.target} is not empty ({held}); pass --merge to add to it"
        )
    cursor = connection.connection.dbapi_connection.cursor()
    cursor.execute(staging.CREATE_STAGE)
    if (allow_direct and direct.applies(sources, report.target_before)
            and direct.load(cursor, sources[0], report, progress)):
        report.method = "direct"
    else:
        _staged(cursor, sources, report, progress)
    if not report.ok:
        progress.phase("verification failed: rolling back")


def _staged(cursor, sources: list[Source], report: Report, progress: Quiet) -> None:
    """Every source staged, one plan for all of them, verified against the plan."""
    counts = []
    for index, source in enumerate(sources):
        progress.source(source.describe())
        counts.append(staging.copy_source(cursor, index, source, source.chunks(progress.update)))
        report.sources.append(SourceReport(str(source.path), source.kind, ignored=source.ignored,
                                           value_check=staging.check_values(cursor, index, source)))
    before = verify.target_content(cursor)
    progress.phase("planning the merge and writing")
    tallies, planned, report.renames = plan.load(cursor, report.target_before)
    for table, per_source in tallies.items():
        for index, tally in per_source.items():
            report.sources[index].tables[table] = tally
    for source, source_report in zip(sources, report.sources):
        source_report.count_adjusted(source.adjusted)
    for index, checks in verify.check_read(counts, tallies).items():
        report.sources[index].read_check = checks
    progress.phase("verifying")
    report.verification = verify.check_target(before, planned, verify.target_content(cursor))
    report.verification["username keys"] = verify.keys_check(cursor)


def _target_error(error: Exception, shown: str) -> TargetError:
    original = getattr(error, "orig", None)
    reason = first_line(original if original is not None else error)
    return TargetError(f"PostgreSQL at {shown} refused the migration: {reason}")


__all__ = ["migrate", "MigrationError"]
