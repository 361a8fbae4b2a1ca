"""Twooter's tables and the queries that read and change them.

Timelines use keyset pagination on (pub_date, id): every page is one index
range scan, so its cost does not depend on how many twoots exist.
"""
from __future__ import annotations

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
    delete,
    false,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator

from .extensions import db


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
    email: Mapped[str] = mapped_column(Text)
    pw_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (UniqueConstraint("username", name="uq_users_username"),)

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


# --- users -----------------------------------------------------------------

def user_by_name(username: str) -> User | None:
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def create_user(username: str, email: str, pw_hash: str) -> User:
    user = User(username=username, email=email, pw_hash=pw_hash)
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

def _insert_ignoring_duplicates(model, values: dict):
    dialect = db.session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(model).values(**values)
    return statement.on_conflict_do_nothing()


def follow(follower: User, followed: User) -> None:
    """Idempotent: following twice leaves one pair, with no error."""
    db.session.execute(
        _insert_ignoring_duplicates(
            Follow, {"follower_id": follower.id, "followed_id": followed.id}
        )
    )
    db.session.commit()


def unfollow(follower: User, followed: User) -> None:
    db.session.execute(
        delete(Follow).where(
            Follow.follower_id == follower.id, Follow.followed_id == followed.id
        )
    )
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


def _page(conditions: Iterable, before: Cursor | None, limit: int) -> TimelinePage:
    query = select(Message).where(Message.flagged == false(), *conditions)
    if before is not None:
        query = query.where(
            tuple_(Message.pub_date, Message.id) < tuple_(before.pub_date, before.message_id)
        )
    query = query.order_by(Message.pub_date.desc(), Message.id.desc()).limit(limit + 1)
    twoots = list(db.session.execute(query).scalars())
    if len(twoots) > limit:
        last = twoots[limit - 1]
        return TimelinePage(twoots[:limit], Cursor(last.pub_date, last.id))
    return TimelinePage(twoots, None)


def public_timeline(before: Cursor | None, limit: int) -> TimelinePage:
    return _page((), before, limit)


def user_timeline(author: User, before: Cursor | None, limit: int) -> TimelinePage:
    return _page((Message.author_id == author.id,), before, limit)


def home_timeline(reader: User, before: Cursor | None, limit: int) -> TimelinePage:
    followed = select(Follow.followed_id).where(Follow.follower_id == reader.id)
    return _page(
        (or_(Message.author_id == reader.id, Message.author_id.in_(followed)),), before, limit
    )
