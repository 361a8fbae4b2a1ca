"""The PostgreSQL target: connecting, refusing what cannot work, and the app's migrations.

The migrations run inside the load's own transaction (PostgreSQL's DDL is
transactional), so even the schema appears only if the whole run commits.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from twooter.schema import MIGRATION_LOCK_ID, MIGRATIONS_PATH

from .errors import TargetError

APP_TABLES = ("users", "messages", "follows")


def target_url(raw: str) -> sa.engine.URL:
    try:
        url = sa.make_url(raw)
    except sa.exc.ArgumentError:
        raise TargetError(f"--to {raw!r} is not a database URL (postgresql://user:pass@host/db)") from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise TargetError(f"--to must be a PostgreSQL URL, not {url.get_backend_name()}")
    return url.set(drivername="postgresql+psycopg2")


def shown(url: sa.engine.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def connect(url: sa.engine.URL) -> sa.Connection:
    """A connection to a reachable, writable primary, or a TargetError saying why not."""
    # UTF-8 on the wire whatever the database's encoding: sources hand over UTF-8 bytes.
    engine = sa.create_engine(url, poolclass=NullPool,
                              connect_args={"connect_timeout": 10, "client_encoding": "utf8"})
    try:
        connection = engine.connect()
    except sa.exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise TargetError(f"cannot connect to PostgreSQL at {shown(url)}: {reason}") from None
    recovery, read_only = connection.exec_driver_sql(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
    ).one()
    connection.rollback()
    if recovery or read_only == "on":
        connection.close()
        why = "it is a standby in recovery" if recovery else "its transactions are read-only"
        raise TargetError(f"PostgreSQL at {shown(url)} is read-only ({why}); point --to at the primary")
    return connection


def upgrade_schema(connection: sa.Connection) -> str | None:
    """Bring the target to the app's current revision inside the open transaction.

    Takes the same advisory lock as the app's own start-up upgrade, so an
    instance starting meanwhile waits instead of racing. Returns the revision
    found before (None for an empty database).
    """
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    script = ScriptDirectory.from_config(config)
    found: list[str | None] = []

    def upgrade(revision, context):
        found.append(context.get_current_revision())
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=upgrade, destination_rev="head") as environment:
        environment.configure(connection=connection, transactional_ddl=True)
        with environment.begin_transaction():
            environment.run_migrations()
    return found[0] if found else None


def lock_and_count(connection: sa.Connection) -> dict[str, int]:
    """Keep the app from writing meanwhile (reads go on) and count what is there."""
    connection.exec_driver_sql(f"LOCK TABLE {', '.join(APP_TABLES)} IN SHARE ROW EXCLUSIVE MODE")
    return {
        table: connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
        for table in APP_TABLES
    }
