"""`twooter export`: the whole database as one JSON snapshot, streamed.

The snapshot is the in-memory era's format, which `migrate_tools` reads back
(documented in migrate_tools/SNAPSHOT_FORMAT.md). Rows are written one per
line as they are fetched, so memory stays flat however large the database.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import IO, Iterable

from sqlalchemy import select

from .extensions import db
from .models import Follow, Message, User

SNAPSHOT_FORMAT = "twooter-snapshot"
SNAPSHOT_VERSION = 1
FETCH_BATCH = 2_000


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _write_array(out: IO[str], name: str, items: Iterable[dict], last: bool) -> int:
    out.write(f' "{name}": [')
    count = 0
    for item in items:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(item, ensure_ascii=False))
        count += 1
    out.write("\n ]" if count else "]")
    out.write("\n" if last else ",\n")
    return count


def _streamed(statement):
    return db.session.execute(statement.execution_options(yield_per=FETCH_BATCH))


def write_document(out: IO[str], users: Iterable[dict], follows: Iterable[dict],
                   messages: Iterable[dict], exported_at: datetime | None = None) -> dict[str, int]:
    """Write a snapshot from row dictionaries (as the format documents them)."""
    out.write("{\n")
    out.write(f' "format": "{SNAPSHOT_FORMAT}",\n "version": {SNAPSHOT_VERSION},\n')
    out.write(f' "exported_at": "{iso_utc(exported_at or datetime.now(timezone.utc))}",\n')
    counts = {"users": _write_array(out, "users", users, last=False)}
    counts["follows"] = _write_array(out, "follows", follows, last=False)
    counts["messages"] = _write_array(out, "messages", messages, last=True)
    out.write("}\n")
    return counts


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
