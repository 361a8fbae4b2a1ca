"""What a request asks for: a partial or a page, where to go next, whom its path names."""
from __future__ import annotations

from typing import NoReturn
from urllib.parse import urlsplit

from flask import abort, request

from . import accounts
from .data.tables import User


def wants_partial() -> bool:
    """htmx asks for a fragment; a history restore asks for the whole page."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def local_path_or_none(target: str | None) -> str | None:
    """Accept only a path on this site, so `next=` cannot send users elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ch in target for ch in "\r\n\t\\"):
        return None
    return target


def no_such_user(username: str) -> NoReturn:
    """Answer 404, naming the user the path asked for."""
    abort(404, description=f"There is no user called {username!r}.")


def user_or_404(username: str) -> User:
    """The user named in the URL; a 404 that names them when there is none."""
    user = accounts.user_named(username)
    if user is None:
        no_such_user(username)
    return user
