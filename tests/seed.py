"""Test data written the way the app writes it: each change in a unit of work of its own.

Call these inside an app context.
"""
from __future__ import annotations

from datetime import datetime

from twooter.data import accounts, follows, timelines
from sqlalchemy import update

from twooter.data.tables import Message, User
from twooter.extensions import db
from twooter.data.unit import writing


def user(username: str, email: str | None = None, pw_hash: str = "x") -> User:
    """A new user, as the accounts table holds it."""
    writing(lambda: accounts.create_user(username, email or f"{username}@example.com", pw_hash))
    return accounts.user_by_name(username)


def twoot(author: User, text: str, when: datetime | None = None) -> int:
    """A new twoot by `author`; returns its id."""
    return writing(lambda: timelines.add_message(author.id, text, when))


def flag(twoot_id: int) -> None:
    """Hide a twoot from every timeline, as a moderator would."""
    writing(lambda: db.session.execute(update(Message).where(Message.id == twoot_id).values(flagged=True)))


def follow(follower: User, followed: User) -> None:
    writing(lambda: follows.set_following(follower.id, followed.id, following=True))


def admin(username: str) -> bool:
    return writing(lambda: accounts.grant_admin(username))
