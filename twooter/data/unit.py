"""The unit of work: one transaction per piece of work that changes data.

`writing(work)` runs `work` (a function of no arguments that reads and
changes data through the data modules, which never commit) in one
transaction, commits it once, and rolls it back on any error. On SQLite the
transaction starts with BEGIN IMMEDIATE, because the unit says it writes.

A transient database failure retries the whole unit, with backoff, until
`DATABASE_RETRY_SECONDS` (TWOOTER_DB_RETRY_SECONDS) are spent; then
DatabaseUnavailable is raised, which the web answers with 503 and
Retry-After. Transient: a serialization failure or deadlock, the connection
lost (or refused) before COMMIT was sent, a server shutting down or starting
up, "cannot execute ... in a read-only transaction" on a server that was
just demoted (a failover), and on SQLite a write lock not had in time.

When the connection is lost *during* COMMIT, nobody can tell from the
client whether the transaction committed. The unit takes the transaction's
id with `txid_current()` when it begins (PostgreSQL), and asks
`txid_status()` on a new connection: committed means done (not retried, so
nothing is stored twice), aborted means retry, in progress means ask again.

`reading(work)` retries a read the same way and leaves its transaction open
for the rest of the request (objects it returns may still load lazily).
"""
from __future__ import annotations

import math
import random
import time
from typing import Callable, TypeVar

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .. import metrics
from ..extensions import db
from . import replica
from .engine import WRITES, WriteLockTimeout

T = TypeVar("T")

DEFAULT_RETRY_SECONDS = 10.0
FIRST_DELAY_SECONDS = 0.02
LONGEST_DELAY_SECONDS = 1.0

# SQLSTATEs after which the same work can simply run again.
_RETRY_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "25006",  # read_only_sql_transaction: a standby, or a primary just demoted
    "57P01",  # admin_shutdown (also pg_terminate_backend)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: starting up, shutting down, in recovery
})
_SQLITE_BUSY = ("database is locked", "database is busy")


class DatabaseUnavailable(Exception):
    """The database did not answer within the retry budget; try again in `retry_after` seconds."""

    def __init__(self, retry_after: int, cause: BaseException | None = None):
        super().__init__(f"the database is unavailable (retry after {retry_after} s): {cause}")
        self.retry_after = retry_after


class _CommitLost(Exception):
    """The connection was lost during COMMIT; the outcome is not known yet."""


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "pgcode", None)


def is_transient(error: BaseException) -> bool:
    """True for a database failure after which running the same unit again may succeed."""
    if isinstance(error, WriteLockTimeout):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if _sqlstate(error) in _RETRY_SQLSTATES:
        return True
    module = type(error.orig).__module__
    message = str(error.orig)
    if module.startswith("psycopg2") and type(error.orig).__name__ == "OperationalError":
        # No SQLSTATE: libpq could not reach the server (refused, reset, timed out).
        return _sqlstate(error) is None
    if module == "sqlite3":
        return any(busy in message for busy in _SQLITE_BUSY)
    return False


def _budget_seconds() -> float:
    return float(current_app.config.get("DATABASE_RETRY_SECONDS", DEFAULT_RETRY_SECONDS))


def retry_after_seconds() -> int:
    """What a refused client is told to wait: the retry budget, in whole seconds (at least 1)."""
    return max(1, math.ceil(_budget_seconds()))


def _forget_failed_connection(error: BaseException) -> None:
    db.session.rollback()
    if isinstance(error, DBAPIError) and _sqlstate(error) == "25006":
        # Every pooled connection leads to the server that is no longer the
        # primary; the next ones are made afresh (through the primary's front).
        db.engine.dispose()


def _end_reads() -> None:
    """End a read transaction the request has open, so the unit begins one of its own."""
    session = db.session()
    if not session.in_transaction():
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("changes made outside a unit of work: use data.unit.writing()")
    try:
        session.commit()
    except DBAPIError:
        # It only read: if its connection is gone, the unit simply starts on a new one.
        session.rollback()


def finish_reading() -> None:
    """End the request's read transaction before slow work (hashing a password)."""
    _end_reads()


class _Attempts:
    """Sleeps between attempts, doubling with jitter, until the budget is spent."""

    def __init__(self, counted: bool = False) -> None:
        self.deadline = time.monotonic() + _budget_seconds()
        self.delay = FIRST_DELAY_SECONDS
        self.counted = counted  # units that write are what twooter_db_retries_total counts

    def wait_or_give_up(self, error: BaseException) -> None:
        pause = self.delay * random.uniform(0.5, 1.0)
        if time.monotonic() + pause > self.deadline:
            if self.counted:
                metrics.count_db_retry("failed")
            raise DatabaseUnavailable(retry_after_seconds(), error) from error
        if self.delay == FIRST_DELAY_SECONDS:  # once per unit, not once per attempt
            current_app.logger.warning("database unavailable, retrying for up to %.1f s: %s",
                                       self.deadline - time.monotonic(), str(error).partition("\n")[0])
        time.sleep(pause)
        self.delay = min(self.delay * 2, LONGEST_DELAY_SECONDS)

    def succeeded(self) -> None:
        """The unit finished; count it when it needed a retry to get there."""
        if self.counted and self.delay != FIRST_DELAY_SECONDS:
            metrics.count_db_retry("committed")


def _begin_writing() -> int | None:
    """Begin the unit's transaction; on PostgreSQL return its id (txid_current())."""
    connection = db.session.connection(execution_options={WRITES: True})
    if connection.dialect.name != "postgresql":
        return None  # SQLite's COMMIT is local: it never reaches an unknown outcome
    # On the driver, not through the ORM: every write pays for this statement.
    return connection.exec_driver_sql("SELECT txid_current()").scalar_one()


def _outcome(txid: int) -> str:
    """'committed', 'aborted' or 'in progress', asked on a connection of its own."""
    with db.engine.connect() as connection:
        try:
            status = connection.execute(text("SELECT txid_status(:txid)"), {"txid": txid}).scalar()
        except DBAPIError as error:
            if "in the future" in str(error.orig):
                # A server promoted since never saw this transaction: it did not commit there.
                return "aborted"
            raise
    if status is None:
        raise RuntimeError(f"transaction {txid} is too old for txid_status()")
    return status


def _committed(txid: int, attempts: _Attempts) -> bool:
    while True:
        try:
            status = _outcome(txid)
        except DBAPIError as error:
            if not is_transient(error):
                raise
            attempts.wait_or_give_up(error)
            continue
        if status != "in progress":
            return status == "committed"
        # The old backend has not finished COMMIT (or not noticed that we left).
        attempts.wait_or_give_up(_CommitLost(f"transaction {txid} is still in progress"))


def _commit(txid: int | None) -> None:
    try:
        db.session.commit()
    except DBAPIError as error:
        if txid is not None and error.connection_invalidated:
            raise _CommitLost(str(error.orig).partition("\n")[0]) from error
        raise


def writing(work: Callable[[], T]) -> T:
    """Run `work` in one transaction that writes; commit once; retry whole when that is safe.

    Returns what `work` returns. Raises what `work` raises (after rolling
    back), DatabaseUnavailable when the retry budget is spent.
    """
    _end_reads()
    replica.use_primary()
    attempts = _Attempts(counted=True)
    while True:
        txid = None
        try:
            txid = _begin_writing()
            result = work()
            db.session.flush()
            _commit(txid)
            attempts.succeeded()
            return result
        except _CommitLost as lost:
            db.session.rollback()
            if _committed(txid, attempts):
                attempts.succeeded()
                return result
            attempts.wait_or_give_up(lost)
        except (DBAPIError, WriteLockTimeout) as error:
            _forget_failed_connection(error)
            if not is_transient(error):
                raise
            attempts.wait_or_give_up(error)
        except BaseException:
            db.session.rollback()
            raise


def reading(work: Callable[[], T]) -> T:
    """Run a read, retrying it on a transient failure; its transaction stays open.

    A GET or HEAD whose read finds the primary away is answered from the
    replica, when there is one (`replica.fall_back_to_replica`).
    Raises what `work` raises, DatabaseUnavailable when the budget is spent.
    """
    attempts = _Attempts()
    while True:
        try:
            return work()
        except DBAPIError as error:
            _forget_failed_connection(error)
            if not is_transient(error):
                raise
            if replica.fall_back_to_replica():
                continue
            attempts.wait_or_give_up(error)
