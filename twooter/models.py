"""Twooter's tables and the queries that read and change them.

Timelines use keyset pagination on (pub_date, id): every page is one index
range scan, so its cost does not depend on how many twoots exist.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    desc,
    false,
    func,
    literal,
    nulls_last,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship
from sqlalchemy.sql.selectable import ScalarSelect, Select
from sqlalchemy.types import DateTime, TypeDecorator

from .extensions import db
from .names import name_key


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database.

    PostgreSQL keeps it as timestamptz; SQLite has no such type, so the value
    is stored as a naive UTC string and marked UTC again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass a UTC-aware one")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(Text)
    # names.name_key(username): what names are compared and kept unique by.
    username_key: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    pw_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("username", name="uq_users_username"),
        UniqueConstraint("username_key", name="uq_users_username_key"),
    )

    def gravatar_url(self, size: int = 48) -> str:
        digest = hashlib.md5(self.email.strip().lower().encode("utf-8")).hexdigest()
        return f"https://www.gravatar.com/avatar/{digest}?d=identicon&s={size}"


class Message(db.Model):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    pub_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    author: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        Index("ix_messages_author_time", "author_id", pub_date.desc(), id.desc()),
        Index(
            "ix_messages_public_time",
            pub_date.desc(),
            id.desc(),
            postgresql_where=flagged == false(),
            sqlite_where=flagged == false(),
        ),
    )

    @property
    def pub_date_text(self) -> str:
        return self.pub_date.strftime("%Y-%m-%d @ %H:%M")


class Follow(db.Model):
    __tablename__ = "follows"

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    followed_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_follows_followed", "followed_id"),)


class LatestAction(db.Model):
    """The simulator's latest processed action id, shared by every instance."""

    __tablename__ = "latest_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class LoginThrottle(db.Model):
    """Login attempts counted per scope ("account": a name key, "address": a client
    address), shared by every instance; twooter.throttle reads and writes it."""

    __tablename__ = "login_throttle"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_login_throttle_last_failure", "last_failure"),)


# --- users -----------------------------------------------------------------

def user_by_name(username: str) -> User | None:
    if "\x00" in username:
        # No stored name holds NUL, and PostgreSQL refuses it in a query parameter.
        return None
    return db.session.execute(
        select(User).where(User.username_key == name_key(username))
    ).scalar_one_or_none()


def create_user(username: str, email: str, pw_hash: str) -> User:
    user = User(username=username, username_key=name_key(username), email=email, pw_hash=pw_hash)
    db.session.add(user)
    db.session.commit()
    return user


def set_password_hash(user: User, pw_hash: str) -> None:
    user.pw_hash = pw_hash
    db.session.commit()


def grant_admin(username: str) -> bool:
    user = user_by_name(username)
    if user is None:
        return False
    user.is_admin = True
    db.session.commit()
    return True


# --- follows ---------------------------------------------------------------

def follow(follower: User, followed: User) -> None:
    """Idempotent: following twice leaves one pair, with no error."""
    set_following(follower.id, followed.id, following=True)
    db.session.commit()


def unfollow(follower: User, followed: User) -> None:
    set_following(follower.id, followed.id, following=False)
    db.session.commit()


def is_following(follower: User, followed: User) -> bool:
    return (
        db.session.execute(
            select(Follow.follower_id).where(
                Follow.follower_id == follower.id, Follow.followed_id == followed.id
            )
        ).first()
        is not None
    )


def followed_names(user: User, limit: int) -> list[str]:
    rows = db.session.execute(
        select(User.username)
        .join(Follow, Follow.followed_id == User.id)
        .where(Follow.follower_id == user.id)
        .order_by(User.username)
        .limit(limit)
    )
    return list(rows.scalars())


# --- messages and timelines -------------------------------------------------

MAX_TWOOT_LENGTH = 1000


def add_message(author: User, text: str, when: datetime | None = None) -> Message:
    message = Message(author_id=author.id, text=text, pub_date=when or utcnow())
    db.session.add(message)
    db.session.commit()
    return message


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: strictly older than (pub_date, id)."""

    pub_date: datetime
    message_id: int

    def encode(self) -> str:
        micros = int(self.pub_date.timestamp() * 1_000_000)
        return f"{micros}-{self.message_id}"

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """Raise ValueError for anything that is not a cursor this app wrote."""
        micros, _, message_id = text.partition("-")
        if not micros.isdigit() or not message_id.isdigit():
            raise ValueError(f"not a page cursor: {text!r}")
        when = datetime.fromtimestamp(int(micros) / 1_000_000, tz=timezone.utc)
        return cls(when, int(message_id))


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
    return _page((), before, limit)


def user_timeline(author: User, before: Cursor | None, limit: int) -> TimelinePage:
    return _page((Message.author_id == author.id,), before, limit)


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


def home_timeline(reader: User, before: Cursor | None, limit: int) -> TimelinePage:
    """The reader's own and followed users' twoots, newest first."""
    statement = _home_timeline_statement(db.session.get_bind().dialect.name, before is not None)
    parameters = {"reader_id": reader.id, "limit": limit + 1}
    if before is not None:
        parameters.update(before_date=before.pub_date, before_id=before.message_id)
    return _as_page(statement, limit, parameters)


def latest_messages(limit: int, author: User | None = None) -> list[dict]:
    """The newest unflagged twoots as plain records: content, Unix seconds, author name.

    One range scan of ix_messages_public_time, or of ix_messages_author_time
    for one author, joined to users by primary key.
    """
    query = select(Message.text, Message.pub_date, User.username).join(
        User, User.id == Message.author_id
    )
    if author is not None:
        query = query.where(Message.author_id == author.id)
    query = _newest_first(query, Message, None, limit)
    return [
        {"content": text, "pub_date": int(pub_date.timestamp()), "user": username}
        for text, pub_date, username in db.session.execute(query)
    ]


# --- the simulator's writes, by username ---------------------------------------
# The simulator names users, and sends thousands of these requests: each is one
# or two Core statements on the session's connection (no ORM unit of work),
# built once, and left to the caller to commit together with `latest`.

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
    """Add a twoot by the user called `username`, uncommitted; False if there is no such user."""
    if "\x00" in username:  # as in user_by_name
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
    # No stored name holds NUL, and PostgreSQL refuses it in a query parameter.
    wanted = [name for name in (first, second) if "\x00" not in name]
    if not wanted:
        return {}
    parameters = {"first": name_key(wanted[0]), "second": name_key(wanted[-1])}
    rows = db.session.connection().execute(_ids_by_name_statement(), parameters)
    ids = dict(rows.all())
    return {name: ids[name_key(name)] for name in wanted if name_key(name) in ids}


def _insert_into(table, dialect: str):
    """An INSERT that can say ON CONFLICT, in the database's own flavour."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


@functools.cache
def _following_statements(dialect: str):
    follows = Follow.__table__
    pair = {"follower_id": bindparam("follower_id", type_=Integer),
            "followed_id": bindparam("followed_id", type_=Integer)}
    insert = _insert_into(follows, dialect).values(**pair)
    remove = delete(follows).where(
        follows.c.follower_id == pair["follower_id"], follows.c.followed_id == pair["followed_id"]
    )
    return insert.on_conflict_do_nothing(), remove


def set_following(follower_id: int, followed_id: int, following: bool) -> None:
    """Follow or unfollow by user ids, idempotently, uncommitted."""
    connection = db.session.connection()
    insert, remove = _following_statements(connection.dialect.name)
    connection.execute(insert if following else remove,
                       {"follower_id": follower_id, "followed_id": followed_id})


# --- the simulator's latest action id -----------------------------------------

LATEST_ACTION_ROW = 1


@functools.cache
def _record_latest_statement(dialect: str):
    table = LatestAction.__table__
    upsert = _insert_into(table, dialect).values(
        id=LATEST_ACTION_ROW, value=bindparam("value", type_=BigInteger)
    )
    return upsert.on_conflict_do_update(index_elements=[table.c.id], set_={"value": upsert.excluded.value})


def record_latest_action(value: int) -> None:
    """Store the simulator's latest action id, in the caller's transaction.

    Not committed here: the id commits with the request's own work, so that a
    write costs one commit.
    """
    connection = db.session.connection()
    connection.execute(_record_latest_statement(connection.dialect.name), {"value": value})


def latest_action() -> int | None:
    return db.session.execute(
        select(LatestAction.value).where(LatestAction.id == LATEST_ACTION_ROW)
    ).scalar_one_or_none()
