"""The simulator's actions, each one unit of work together with its `latest` action id; no HTTP.

Every function takes `latest` (an int64, or None when the request carried
none) and stores it in the same transaction as the action's own work, so
that a tweet, follow or unfollow costs one commit. Reads with no `latest`
stay reads (no write lock on SQLite). Each raises DatabaseUnavailable when
the database stays away longer than the retry budget.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from . import accounts
from .data import follows as stored_follows
from .data import simulator as stored
from .data import timelines as stored_timelines
from .data.accounts import user_by_name
from .data.unit import reading, writing


def _with_latest(latest: int | None, work: Callable[[], Any], writes: bool) -> Any:
    if latest is None:
        return writing(work) if writes else reading(work)

    def record_then_work():
        stored.record_latest_action(latest)
        return work()

    return writing(record_then_work)


def record_latest(latest: int | None) -> None:
    """Store `latest` on its own (the request was refused before its work)."""
    if latest is not None:
        _with_latest(latest, lambda: None, writes=True)


def latest_action() -> int | None:
    """The latest action id recorded, or None before any."""
    return reading(stored.latest_action)


def register(latest: int | None, username: str, email: str, password: str) -> None:
    """Register a user; raises accounts.RegistrationError (then `latest` is not stored yet)."""
    accounts.register(username, email, password,
                      also=None if latest is None else lambda: stored.record_latest_action(latest))


def messages(latest: int | None, limit: int, username: str | None = None
             ) -> list[tuple[str, datetime, str]] | None:
    """The newest twoots (of one user), as (text, pub_date, author); None if there is no such user."""
    def work():
        if username is None:
            return stored_timelines.latest_messages(limit)
        user = user_by_name(username)
        return None if user is None else stored_timelines.latest_messages(limit, user.id)

    return _with_latest(latest, work, writes=False)


def post(latest: int | None, username: str, content: str) -> bool:
    """Add a twoot by `username` (content already checked); False if there is no such user."""
    return _with_latest(latest, lambda: stored.post_message_by_name(username, content), writes=True)


def followed(latest: int | None, username: str, limit: int) -> list[str] | None:
    """Whom `username` follows; None if there is no such user."""
    def work():
        user = user_by_name(username)
        return None if user is None else stored_follows.followed_names(user.id, limit)

    return _with_latest(latest, work, writes=False)


def change_following(latest: int | None, username: str, other: str, following: bool) -> str | None:
    """Follow or unfollow `other`, idempotently; returns a name nobody has, or None when done.

    Following oneself is accepted and changes nothing.
    """
    def work() -> str | None:
        ids = stored.user_ids_by_name(username, other)
        for name in (username, other):
            if name not in ids:
                return name
        stored_follows.set_following(ids[username], ids[other], following=following)
        return None

    return _with_latest(latest, work, writes=True)
