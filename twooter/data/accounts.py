"""Users: looked up by name or id, created, their password hash and admin flag changed.

Changes run inside the caller's unit of work (`data.unit`) and never commit.
"""
from __future__ import annotations

from sqlalchemy import insert, select, update

from ..extensions import db
from ..names import name_key
from .tables import User


def storable_name(username: str) -> bool:
    # No stored name holds NUL, and PostgreSQL refuses it in a query parameter.
    return "\x00" not in username


def user_by_name(username: str) -> User | None:
    """The user whose name is `username` under the name rules (names.name_key), or None."""
    if not storable_name(username):
        return None
    return db.session.execute(
        select(User).where(User.username_key == name_key(username))
    ).scalar_one_or_none()


def signed_in_user(user_id: int) -> User | None:
    """The user with this id, detached from the session, or None (the account is gone).

    Detached, so that a rollback later in the request cannot expire what the
    pages show of them, and showing it never needs the database again.
    """
    user = db.session.get(User, user_id)
    if user is not None:
        db.session.expunge(user)
    return user


def create_user(username: str, email: str, pw_hash: str) -> int:
    """Insert a user and return the new id.

    Raises sqlalchemy.exc.IntegrityError when the name is taken (the unique
    constraint on its name_key decides, so two concurrent registrations cannot both win).
    """
    return db.session.execute(
        insert(User)
        .values(username=username, username_key=name_key(username), email=email, pw_hash=pw_hash)
        .returning(User.id)
    ).scalar_one()


def replace_password_hash(user_id: int, old_hash: str, new_hash: str) -> bool:
    """Store `new_hash` if the stored one is still `old_hash`; False if it changed meanwhile."""
    result = db.session.execute(
        update(User).where(User.id == user_id, User.pw_hash == old_hash).values(pw_hash=new_hash)
    )
    return result.rowcount == 1


def grant_admin(username: str) -> bool:
    """Set the admin flag; False when there is no such user."""
    if not storable_name(username):
        return False
    result = db.session.execute(
        update(User).where(User.username_key == name_key(username)).values(is_admin=True)
    )
    return result.rowcount == 1
