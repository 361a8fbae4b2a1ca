"""Who follows whom: the pairs, read and changed by user id.

Nobody is their own follower: a stored pair of one user with themselves
(older data may hold one) is never listed, and none is ever added.
"""
from __future__ import annotations

import functools

from sqlalchemy import bindparam, delete, select
from sqlalchemy.types import Integer

from ..extensions import db
from .tables import Follow, User, insert_for


@functools.cache
def _following_statements(dialect: str):
    follows = Follow.__table__
    pair = {"follower_id": bindparam("follower_id", type_=Integer),
            "followed_id": bindparam("followed_id", type_=Integer)}
    insert = insert_for(follows, dialect).values(**pair)
    remove = delete(follows).where(
        follows.c.follower_id == pair["follower_id"], follows.c.followed_id == pair["followed_id"]
    )
    return insert.on_conflict_do_nothing(), remove


def set_following(follower_id: int, followed_id: int, following: bool) -> None:
    """Follow or unfollow by user ids, idempotently; following oneself changes nothing."""
    if following and follower_id == followed_id:
        return
    connection = db.session.connection()
    insert, remove = _following_statements(connection.dialect.name)
    connection.execute(insert if following else remove,
                       {"follower_id": follower_id, "followed_id": followed_id})


def is_following(follower_id: int, followed_id: int) -> bool:
    """True when the first user follows the second (never for one user with themselves)."""
    if follower_id == followed_id:
        return False
    row = db.session.execute(
        select(Follow.follower_id).where(
            Follow.follower_id == follower_id, Follow.followed_id == followed_id
        )
    ).first()
    return row is not None


def followed_names(follower_id: int, limit: int) -> list[str]:
    """The names the user follows, alphabetically, at most `limit` of them."""
    rows = db.session.execute(
        select(User.username)
        .join(Follow, Follow.followed_id == User.id)
        .where(Follow.follower_id == follower_id, Follow.followed_id != follower_id)
        .order_by(User.username)
        .limit(limit)
    )
    return list(rows.scalars())
