"""`twooter export`: the whole database as one JSON snapshot, streamed.

The snapshot is the in-memory era's format, which `migrate_tools` reads back
(documented in migrate_tools/SNAPSHOT_FORMAT.md). Rows are written one per
line as they are fetched, so memory stays flat however large the database.
"""
from __future__ import annotations

from typing import IO

from sqlalchemy import select

from .extensions import db
from .data.tables import Follow, Message, User
from .snapshot import iso_utc, write_document

FETCH_BATCH = 2_000


def _streamed(statement):
    return db.session.execute(statement.execution_options(yield_per=FETCH_BATCH))


def write_snapshot(out: IO[str]) -> dict[str, int]:
    """Write every user, follow and message; returns the row count per table.

    Must run inside an app context. All tables are read in one transaction
    (repeatable read on PostgreSQL), so the snapshot is consistent.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    users = _streamed(
        select(User.id, User.username, User.email, User.pw_hash, User.is_admin).order_by(User.id)
    )
    follows = _streamed(
        select(Follow.follower_id, Follow.followed_id).order_by(Follow.follower_id, Follow.followed_id)
    )
    messages = _streamed(
        select(Message.id, Message.author_id, Message.text, Message.pub_date, Message.flagged)
        .order_by(Message.id)
    )
    try:
        return write_document(
            out,
            ({"id": u.id, "username": u.username, "email": u.email, "pw_hash": u.pw_hash,
              "is_admin": bool(u.is_admin)} for u in users),
            ({"follower_id": f.follower_id, "followed_id": f.followed_id} for f in follows),
            ({"id": m.id, "author_id": m.author_id, "text": m.text, "pub_date": iso_utc(m.pub_date),
              "flagged": bool(m.flagged)} for m in messages),
        )
    finally:
        db.session.rollback()
