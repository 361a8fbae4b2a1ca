"""Reads that may come from a replica, and a person who just wrote reading their own change.

With DATABASE_REPLICA_URL set (a hot standby, or a front that routes to
one), requests for pages and lists that tolerate being a moment behind —
public and user timelines, the simulator's GET /msgs and GET /fllws — read
from it, so reading goes on while the primary changes. Everything else, and
every unit of work that writes, uses the primary (DATABASE_URL). Without the
setting there is one database, as before.

Read-your-writes: a logged-in person who changed something reads from the
primary for TWOOTER_READ_YOUR_WRITES_SECONDS (default 5) afterwards — long
beyond the replica's lag in normal operation — so their own twoot, follow or
unfollow is on the very next page. The moment is kept in their signed
session cookie, so it holds whichever instance serves the next page. A
simulator request carrying `latest` writes that id, so it is never lag-tolerant.

A read of any other GET or HEAD request goes to the primary, but when the
primary cannot be reached (a failover under way) it is answered from the
replica at once instead of waiting out the retry budget and answering 503:
while there is no primary nothing new can be committed, and the replica has
replayed all but the last moment of what was.
"""
from __future__ import annotations

import functools
import time
from typing import Callable, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, g, has_request_context, request, session
from flask_sqlalchemy.session import Session
from werkzeug.wrappers import Response

from .. import metrics

BIND_KEY = "replica"
WROTE_AT = "wrote_at"  # session key: Unix seconds of the person's last change
_READS_FROM_REPLICA = "twooter_reads_from_replica"
F = TypeVar("F", bound=Callable)


def binds(replica_url: str | None, engine_options: dict) -> dict:
    """SQLALCHEMY_BINDS for the replica ({} without one): the same engine options as the primary's."""
    return {BIND_KEY: {"url": replica_url, **engine_options}} if replica_url else {}


def init_app(app: Flask) -> None:
    if BIND_KEY in app.config.get("SQLALCHEMY_BINDS", {}):
        app.after_request(_remember_changes)


def lag_tolerant(view: F) -> F:
    """Mark a view whose reads may come from the replica (unless this person just wrote)."""
    @functools.wraps(view)
    def run(*args, **kwargs):
        if _replica_allowed():
            g.setdefault(_READS_FROM_REPLICA, True)
            metrics.count_replica_read()
        return view(*args, **kwargs)

    return run  # type: ignore[return-value]


def _replica_allowed() -> bool:
    if BIND_KEY not in current_app.config.get("SQLALCHEMY_BINDS", {}):
        return False
    if request.method not in ("GET", "HEAD") or "latest" in request.args:
        return False
    wrote_at = session.get(WROTE_AT)
    window = current_app.config["READ_YOUR_WRITES_SECONDS"]
    return not (isinstance(wrote_at, (int, float)) and time.time() - wrote_at < window)


def _remember_changes(response: Response) -> Response:
    if request.method not in ("GET", "HEAD", "OPTIONS") and response.status_code < 400 and "user_id" in session:
        session[WROTE_AT] = round(time.time(), 3)
    return response


def fall_back_to_replica() -> bool:
    """After a transient failure of a GET or HEAD request's read on the primary: read from the replica now.

    True if the request's further statements go to the replica (retry at
    once), False when there is no replica, the request is not a GET or HEAD,
    or it already reads from the replica.
    """
    if not has_request_context() or BIND_KEY not in current_app.config.get("SQLALCHEMY_BINDS", {}):
        return False
    if request.method not in ("GET", "HEAD") or g.get(_READS_FROM_REPLICA):
        return False
    setattr(g, _READS_FROM_REPLICA, True)
    metrics.count_replica_read()
    return True


def use_primary() -> None:
    """A unit of work that writes goes to the primary, whatever the request read from."""
    if has_request_context():
        g.pop(_READS_FROM_REPLICA, None)


class RoutingSession(Session):
    """Flask-SQLAlchemy's session, sending the statements of lag-tolerant requests to the replica."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs) -> sa.Engine | sa.Connection:
        if bind is None and has_request_context() and g.get(_READS_FROM_REPLICA):
            return self._db.engines[BIND_KEY]
        return super().get_bind(mapper, clause=clause, bind=bind, **kwargs)
