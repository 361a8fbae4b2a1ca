"""The database engine: settings per database, SQLite tuned for a threaded server, migrations on start.

One engine today (Flask-SQLAlchemy's, from SQLALCHEMY_DATABASE_URI). A second
one for replica reads would be made here too, with the same options.

PostgreSQL connections are not pinged on checkout: a stale one fails its
first statement, and the unit of work (`data.unit`) retries on a new one.
"""
from __future__ import annotations

import threading

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from ..schema import MIGRATION_LOCK_ID

SQLITE_BUSY_TIMEOUT_MS = 30_000
_HOLDS_WRITER_TURN = "twooter.holds_writer_turn"
# The execution option a unit of work that writes sets on its connection.
WRITES = "twooter_writes"


class WriteLockTimeout(TimeoutError):
    """This process's writers queued longer than SQLite's busy timeout for the write lock."""


def engine_options(database_uri: str) -> dict:
    """SQLAlchemy create_engine() options for this database URI."""
    if database_uri.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    return {"pool_size": 10, "max_overflow": 20}


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Take transaction control away from the sqlite3 module so that the
        # "begin" hook below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    # SQLite's busy handler polls with sleeps growing to 100 ms, so a waiting
    # writer can lose the lock to newcomers again and again, for seconds.
    # This process's writers queue on a lock of their own instead, and each is
    # woken as soon as the previous one hands its connection back; the busy
    # timeout still arbitrates between processes.
    writer_turn = threading.Lock()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # A deferred transaction that reads and then writes cannot wait for a
        # concurrent writer: SQLite fails it with "database is locked" at
        # once. A unit of work that writes takes the write lock up front
        # instead, and waits its turn; reads stay concurrent.
        if not connection.get_execution_options().get(WRITES):
            connection.exec_driver_sql("BEGIN")
            return
        if not connection.info.get(_HOLDS_WRITER_TURN):
            if not writer_turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
                raise WriteLockTimeout("waited too long for SQLite's write lock")
            connection.info[_HOLDS_WRITER_TURN] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _end_writer_turn(connection.info)
            raise

    def _end_writer_turn(info: dict) -> None:
        if info.pop(_HOLDS_WRITER_TURN, False):
            writer_turn.release()

    @event.listens_for(engine.pool, "checkin")
    def on_checkin(_dbapi_connection, record):
        if record is not None:
            _end_writer_turn(record.info)

    @event.listens_for(engine.pool, "invalidate")
    def on_invalidate(_dbapi_connection, record, _exception):
        _end_writer_turn(record.info)


def init_app(app: Flask) -> None:
    """Tune the app's engine for its database; after Flask-SQLAlchemy is bound."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    # Registered after Flask-SQLAlchemy's own teardown, so it runs before it.
    app.teardown_appcontext(_end_session)


def _end_session(_error: BaseException | None) -> None:
    """End the request's session even when its connection has died meanwhile.

    The request's work is done and its answer made; a connection lost since
    (a database node crashed under a read's open transaction) must not turn
    that answer into a 500 when the session's last ROLLBACK cannot be sent.
    The session's connections are invalidated instead, so the pool never
    hands them out again.
    """
    try:
        db.session.remove()
    except DBAPIError:
        db.session().invalidate()
        db.session.remove()


def upgrade_to_latest(app: Flask) -> None:
    """Apply pending migrations; instances starting together take turns."""
    from flask_migrate import upgrade

    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "postgresql":
            upgrade()
            return
        with engine.connect() as lock_connection:
            lock_connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})")
            try:
                upgrade()
            finally:
                lock_connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})")
                lock_connection.commit()
