"""Twooter's tables and column types; the queries live beside them, by feature.

The indexes are those the timelines read in order: ix_messages_public_time
(unflagged twoots, newest first) and ix_messages_author_time (one author's).
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, Text, UniqueConstraint, false
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator

from ..extensions import db


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
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


def insert_for(table, dialect: str):
    """An INSERT into `table` that can say ON CONFLICT, in the database's own flavour."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
