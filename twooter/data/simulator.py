"""The simulator's writes, by username, and its latest action id.

The simulator names users, and sends thousands of these requests: each is one
or two Core statements on the session's connection (no ORM flush), built
once, run inside the request's unit of work together with `latest`.
"""
from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import BigInteger, Text, bindparam, false, select

from ..extensions import db
from ..names import name_key
from .accounts import storable_name
from .tables import LatestAction, Message, User, UTCDateTime, insert_for, utcnow

LATEST_ACTION_ROW = 1


@functools.cache
def _post_by_name_statement():
    messages, users = Message.__table__, User.__table__
    author = select(
        users.c.id,
        bindparam("text", type_=Text),
        bindparam("pub_date", type_=UTCDateTime()),
        false(),
    ).where(users.c.username_key == bindparam("username_key", type_=Text))
    return messages.insert().from_select(["author_id", "text", "pub_date", "flagged"], author)


def post_message_by_name(username: str, text: str, when: datetime | None = None) -> bool:
    """Add a twoot by the user called `username`; False if there is no such user."""
    if not storable_name(username):
        return False
    result = db.session.connection().execute(
        _post_by_name_statement(),
        {"username_key": name_key(username), "text": text, "pub_date": when or utcnow()},
    )
    return result.rowcount == 1


@functools.cache
def _ids_by_name_statement():
    users = User.__table__
    return select(users.c.username_key, users.c.id).where(
        (users.c.username_key == bindparam("first", type_=Text))
        | (users.c.username_key == bindparam("second", type_=Text))
    )


def user_ids_by_name(first: str, second: str) -> dict[str, int]:
    """The ids of the users with these names (one query), keyed by the names as given,
    leaving out names nobody has."""
    wanted = [name for name in (first, second) if storable_name(name)]
    if not wanted:
        return {}
    parameters = {"first": name_key(wanted[0]), "second": name_key(wanted[-1])}
    rows = db.session.connection().execute(_ids_by_name_statement(), parameters)
    ids = dict(rows.all())
    return {name: ids[name_key(name)] for name in wanted if name_key(name) in ids}


@functools.cache
def _record_latest_statement(dialect: str):
    table = LatestAction.__table__
    upsert = insert_for(table, dialect).values(
        id=LATEST_ACTION_ROW, value=bindparam("value", type_=BigInteger)
    )
    return upsert.on_conflict_do_update(index_elements=[table.c.id], set_={"value": upsert.excluded.value})


def record_latest_action(value: int) -> None:
    """Store the simulator's latest action id (a signed 64-bit integer)."""
    connection = db.session.connection()
    connection.execute(_record_latest_statement(connection.dialect.name), {"value": value})


def latest_action() -> int | None:
    """The latest action id recorded, or None before any."""
    return db.session.execute(
        select(LatestAction.value).where(LatestAction.id == LATEST_ACTION_ROW)
    ).scalar_one_or_none()
