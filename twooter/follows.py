"""Following and unfollowing: the work behind the follow buttons, no HTTP.

Nobody follows themselves: the pages refuse it with a reason, the
simulator's API accepts it and changes nothing (its contract answers 204).
"""
from __future__ import annotations

from .data import follows as stored
from .data.tables import User
from .data.unit import reading, writing

CANNOT_FOLLOW_YOURSELF = "You cannot follow yourself."


class FollowError(ValueError):
    """Why a follow was refused, worded for the person following."""


def follow(follower: User, followed: User) -> None:
    """Follow, idempotently. Raises FollowError for oneself, DatabaseUnavailable."""
    if follower.id == followed.id:
        raise FollowError(CANNOT_FOLLOW_YOURSELF)
    writing(lambda: stored.set_following(follower.id, followed.id, following=True))


def unfollow(follower: User, followed: User) -> None:
    """Unfollow, idempotently. Raises DatabaseUnavailable."""
    writing(lambda: stored.set_following(follower.id, followed.id, following=False))


def is_following(follower: User, followed: User) -> bool:
    """True when `follower` follows `followed` (never for oneself)."""
    return reading(lambda: stored.is_following(follower.id, followed.id))
