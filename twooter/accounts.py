"""Registering users and checking their credentials, for the web pages and the API alike."""
from __future__ import annotations

from flask import current_app
from sqlalchemy.exc import IntegrityError

from . import models, names
from .extensions import db
from .passwords import hash_password, needs_upgrade, verify_password

# Names that are not routes today but are commonly fetched at a site's root.
EXTRA_RESERVED_NAMES = frozenset({"favicon.ico", "robots.txt", "admin", "api", "metrics", "health"})


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
    """The first thing wrong with a registration, in MiniTwit's words, or None.

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
    problem = names.name_problem(names.canonical(username), reserved_names())
    if problem:
        return problem
    if models.user_by_name(username) is not None:
        return "The username is already taken"
    return None


def register(username: str, email: str, password: str, password2: str | None = None) -> models.User:
    """Create the user, named in the canonical form, or raise RegistrationError saying why not."""
    problem = registration_problem(username, email, password, password2)
    if problem:
        raise RegistrationError(problem)
    # End the transaction the checks opened before hashing: on SQLite it holds
    # the write lock, and no other request should wait out tens of milliseconds
    # of argon2id.
    db.session.commit()
    pw_hash = hash_password(password)
    try:
        return models.create_user(names.canonical(username), email, pw_hash)
    except IntegrityError:
        # Another request registered the same name between the check and the insert.
        db.session.rollback()
        raise RegistrationError("The username is already taken") from None


def authenticate(username: str, password: str) -> models.User:
    """Return the user whose password this is, upgrading a legacy hash on the way."""
    user = models.user_by_name(username or "")
    if user is None:
        raise LoginError("Invalid username")
    if not verify_password(user.pw_hash, password or ""):
        raise LoginError("Invalid password")
    if needs_upgrade(user.pw_hash):
        models.set_password_hash(user, hash_password(password))
    return user
