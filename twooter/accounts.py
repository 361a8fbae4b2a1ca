"""Registering users and checking their credentials, for the web pages and the API alike.

Passwords are hashed and verified outside any transaction: argon2id takes
tens of milliseconds, and on SQLite a writing transaction holds the
database's one write lock for as long as it lasts.
"""
from __future__ import annotations

from typing import Callable

from flask import current_app
from sqlalchemy.exc import IntegrityError

from . import inputs, names
from .data import accounts as stored
from .data.tables import User
from .data.unit import finish_reading, reading, writing
from .passwords import hash_password, needs_upgrade, verify_password

# Names that are not routes today but are commonly fetched at a site's root.
EXTRA_RESERVED_NAMES = frozenset({"favicon.ico", "robots.txt", "admin", "api", "metrics", "health"})
NAME_TAKEN = "The username is already taken"


class RegistrationError(ValueError):
    """The reason a registration was refused, worded for the person registering."""


class LoginError(ValueError):
    """Why a login failed: "Invalid username" or "Invalid password"."""


def reserved_names() -> set[str]:
    """First path segments the app routes itself; a user named so would be unreachable."""
    reserved = set(EXTRA_RESERVED_NAMES)
    for rule in current_app.url_map.iter_rules():
        first = rule.rule.lstrip("/").split("/", 1)[0]
        if first and "<" not in first:
            reserved.add(first)
    return reserved


def is_reserved(username: str) -> bool:
    """Whether `username` is, by name key, one of `reserved_names()` (needs an app context)."""
    return names.is_among(username, reserved_names())


def registration_problem(
    username: str | None, email: str | None, password: str | None, password2: str | None = None
) -> str | None:
    """The first thing wrong with a registration, in MiniTwit's words, or None. Reads the users table.

    The username is judged in its canonical form by `names.name_problem`, and
    is taken when any user's name has the same key (case, Unicode form).
    """
    if not username or not username.strip():
        return "You have to enter a username"
    if not email or "@" not in email:
        return "You have to enter a valid email address"
    if not password:
        return "You have to enter a password"
    if password2 is not None and password != password2:
        return "The two passwords do not match"
    for value, label in ((email, "The email address"), (password, "The password")):
        problem = inputs.unstorable_text(value, label)
        if problem:
            return problem
    problem = names.name_problem(names.canonical(username), reserved_names())
    if problem:
        return problem
    if stored.user_by_name(username) is not None:
        return NAME_TAKEN
    return None


def register(username: str, email: str, password: str, password2: str | None = None,
             also: Callable[[], None] | None = None) -> int:
    """Create the user, named in the canonical form, and return its id, or raise
    RegistrationError saying why not.

    `also` runs in the same unit of work as the insert (the simulator's
    `latest`). Raises DatabaseUnavailable when the database stays away.
    """
    problem = reading(lambda: registration_problem(username, email, password, password2))
    if problem:
        raise RegistrationError(problem)
    finish_reading()
    pw_hash = hash_password(password)

    def create() -> int:
        if also is not None:
            also()
        return stored.create_user(names.canonical(username), email, pw_hash)

    try:
        return writing(create)
    except IntegrityError:
        # Another request registered the same name between the check and the insert.
        raise RegistrationError(NAME_TAKEN) from None


def authenticate(username: str, password: str) -> User:
    """Return the user whose password this is, upgrading a legacy hash on the way.

    Raises LoginError, or DatabaseUnavailable when the database stays away.
    """
    user = reading(lambda: stored.user_by_name(username or ""))
    finish_reading()
    if user is None:
        raise LoginError("Invalid username")
    if not verify_password(user.pw_hash, password or ""):
        raise LoginError("Invalid password")
    if needs_upgrade(user.pw_hash):
        old_hash, new_hash = user.pw_hash, hash_password(password)
        # Only if nobody changed it meanwhile: the newer hash wins.
        writing(lambda: stored.replace_password_hash(user.id, old_hash, new_hash))
    return user


def signed_in_user(user_id: int) -> User | None:
    """The user a session cookie names, or None when that account is gone."""
    return reading(lambda: stored.signed_in_user(user_id))


def user_named(username: str) -> User | None:
    """The user called `username`, or None."""
    return reading(lambda: stored.user_by_name(username))


def grant_admin(username: str) -> bool:
    """Give the user the admin flag; False when there is no such user."""
    return writing(lambda: stored.grant_admin(username))
