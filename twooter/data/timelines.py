"""Twoots and the timelines that show them.

Timelines use keyset pagination on (pub_date, id): every page is one index
range scan, so its cost does not depend on how many twoots exist. A page
cursor is parsed and range-checked here, before any value reaches a driver.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import (
    Integer,
    bindparam,
    desc,
    false,
    func,
    insert,
    literal,
    nulls_last,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import ScalarSelect, Select

from ..extensions import db
from .tables import Follow, Message, User, UTCDateTime, utcnow

MAX_TWOOT_LENGTH = 1000
# Ids are 32-bit integers on PostgreSQL; the same bound holds on SQLite, so
# that a cursor means the same on both.
MAX_ROW_ID = 2**31 - 1
# Microseconds since 1970 of the last instant `datetime` can hold (9999-12-31).
_MAX_CURSOR_MICROS = 253_402_300_799_999_999
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CURSOR = re.compile(r"([0-9]{1,18})-([0-9]{1,10})")


def add_message(author_id: int, text: str, when: datetime | None = None) -> int:
    """Insert a twoot and return its id."""
    return db.session.execute(
        insert(Message)
        .values(author_id=author_id, text=text, pub_date=when or utcnow(), flagged=False)
        .returning(Message.id)
    ).scalar_one()


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: strictly older than (pub_date, id)."""

    pub_date: datetime
    message_id: int

    def encode(self) -> str:
        """`<microseconds since 1970>-<id>`, exact (no float on the way)."""
        micros = (self.pub_date - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}-{self.message_id}"

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """The cursor `encode` wrote as `text`.

        Raises ValueError for anything else, including numbers no twoot can
        carry: a time outside what `datetime` holds, an id beyond MAX_ROW_ID.
        """
        match = _CURSOR.fullmatch(text)
        if match is None:
            raise ValueError(f"not a page cursor: {text!r}")
        micros, message_id = int(match[1]), int(match[2])
        if micros > _MAX_CURSOR_MICROS or message_id > MAX_ROW_ID:
            raise ValueError(f"not a page cursor: {text!r}")
        return cls(_EPOCH + timedelta(microseconds=micros), message_id)


@dataclass(frozen=True)
class TimelinePage:
    twoots: list[Message]
    next_cursor: Cursor | None


def _newest_first(query: Select, twoot, older_than, limit) -> Select:
    """`query` narrowed to unflagged twoots before the (pub_date, id) pair `older_than`
    (None: from the newest), newest first, at most `limit`."""
    query = query.where(twoot.flagged == false())
    if older_than is not None:
        query = query.where(tuple_(twoot.pub_date, twoot.id) < older_than)
    return query.order_by(twoot.pub_date.desc(), twoot.id.desc()).limit(limit)


def _as_page(query: Select, limit: int, parameters: dict | None = None) -> TimelinePage:
    """Run a query for `limit + 1` twoots; the extra one only says whether more exist."""
    twoots = list(db.session.execute(query, parameters).scalars())
    if len(twoots) > limit:
        last = twoots[limit - 1]
        return TimelinePage(twoots[:limit], Cursor(last.pub_date, last.id))
    return TimelinePage(twoots, None)


def _page(conditions: Iterable, before: Cursor | None, limit: int) -> TimelinePage:
    older_than = None if before is None else tuple_(before.pub_date, before.message_id)
    query = _newest_first(select(Message).where(*conditions), Message, older_than, limit + 1)
    return _as_page(query, limit)


def public_timeline(before: Cursor | None, limit: int) -> TimelinePage:
    """Everyone's unflagged twoots, newest first, `limit` to a page."""
    return _page((), before, limit)


def user_timeline(author_id: int, before: Cursor | None, limit: int) -> TimelinePage:
    """One author's unflagged twoots, newest first."""
    return _page((Message.author_id == author_id,), before, limit)


# Earlier than any twoot: the bound that bounds nothing.
_BEFORE_ALL_TWOOTS = datetime(1, 1, 1, tzinfo=timezone.utc)


def _home_cutoff(authors, older_than, limit) -> ScalarSelect:
    """A time no page twoot is older than: the `limit`-th newest of the authors' newest twoots.

    Those `limit` newest twoots already fill the page, so nothing older can
    be on it. Authors who have been quiet since then are skipped at once.
    None (so no bound) when fewer than `limit` authors have twoots at all.
    """
    author = authors.alias("heads_of")
    newest_time = _newest_first(
        select(Message.pub_date).where(Message.author_id == author.c.author_id).correlate(author),
        Message,
        older_than,
        1,
    ).scalar_subquery()
    heads = (
        select(newest_time.label("head"))
        .select_from(author)
        .order_by(nulls_last(desc("head")))  # by the label, so each author is probed once
        .limit(limit)
        .subquery("heads")
    )
    return (
        select(func.min(heads.c.head))
        .having(func.count(heads.c.head) == limit)
        .correlate(None)
        .scalar_subquery()
    )


@functools.cache
def _home_timeline_statement(dialect: str, paged: bool) -> Select:
    """The home timeline query with its values as parameters.

    Each author contributes at most one page, read from the top of its
    ix_messages_author_time range and no older than the cutoff above; only
    the newest of those (ids and times) are kept, and only they are read in
    full. So a page costs at most (number followed) x (page size) index
    entries, and usually little more than one probe per author, whatever the
    table holds. A time-ordered scan filtered by author would instead read
    every twoot newer than the page, and `author_id IN (...)` all the
    authors' twoots; both grow with the table.

    Built once per database kind and kind of page: composing this statement
    costs more than running it.
    """
    reader_id = bindparam("reader_id", type_=Integer)
    limit = bindparam("limit", type_=Integer)
    older_than = (
        tuple_(bindparam("before_date", type_=UTCDateTime()), bindparam("before_id", type_=Integer))
        if paged
        else None
    )
    authors = union(
        select(Follow.followed_id.label("author_id")).where(Follow.follower_id == reader_id),
        select(reader_id.label("author_id")),
    ).cte("authors")
    cutoff = func.coalesce(
        _home_cutoff(authors, older_than, limit), literal(_BEFORE_ALL_TWOOTS, UTCDateTime())
    )
    of_author = (Message.author_id == authors.c.author_id, Message.pub_date >= cutoff)
    if dialect == "postgresql":
        candidates = _newest_first(
            select(Message.id, Message.pub_date).where(*of_author), Message, older_than, limit
        ).lateral("candidates")
        newest_ids = select(candidates.c.id).select_from(authors).join(candidates, true())
        newest_ids = newest_ids.order_by(candidates.c.pub_date.desc(), candidates.c.id.desc())
    else:
        # SQLite has no LATERAL: a correlated IN list on the primary key
        # makes it look up each author's page by rowid, one author at a time.
        per_author = _newest_first(
            select(Message.id).where(*of_author).correlate(authors), Message, older_than, limit
        )
        candidate = aliased(Message)
        newest_ids = select(candidate.id).select_from(authors).join(
            candidate, candidate.id.in_(per_author)
        )
        newest_ids = newest_ids.order_by(candidate.pub_date.desc(), candidate.id.desc())
    return (
        select(Message)
        .where(Message.id.in_(newest_ids.limit(limit)))
        .order_by(Message.pub_date.desc(), Message.id.desc())
        .limit(limit)
    )


def home_timeline(reader_id: int, before: Cursor | None, limit: int) -> TimelinePage:
    """The reader's own and followed users' twoots, newest first."""
    statement = _home_timeline_statement(db.session.get_bind().dialect.name, before is not None)
    parameters = {"reader_id": reader_id, "limit": limit + 1}
    if before is not None:
        parameters.update(before_date=before.pub_date, before_id=before.message_id)
    return _as_page(statement, limit, parameters)


def latest_messages(limit: int, author_id: int | None = None) -> list[tuple[str, datetime, str]]:
    """The newest unflagged twoots as (text, pub_date, author name), newest first.

    One range scan of ix_messages_public_time, or of ix_messages_author_time
    for one author, joined to users by primary key.
    """
    query = select(Message.text, Message.pub_date, User.username).join(
        User, User.id == Message.author_id
    )
    if author_id is not None:
        query = query.where(Message.author_id == author_id)
    query = _newest_first(query, Message, None, limit)
    return [tuple(row) for row in db.session.execute(query)]
