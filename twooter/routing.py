"""What a request asks for: a partial or a page, a change or a read, where to go next, whom it names."""
from __future__ import annotations

from typing import NoReturn
from urllib.parse import urlsplit

from flask import abort, current_app, has_request_context, request

from . import accounts, models
from .logs.requests import note_routine_failure

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def changes_state(view):
    """Mark a view that changes state even when reached with GET (legacy routes)."""
    view.changes_state = True
    return view


def request_changes_state() -> bool:
    """True outside requests (CLI work) and for any request that may write."""
    if not has_request_context():
        return True
    if request.method not in SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "changes_state", False)


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
    """404 "There is no user called …", or for a reserved name a plain 404 that claims no lookup.

    Browsers and crawlers ask for /favicon.ico, /robots.txt and the like on
    every site; that is routine, so its record is not an ERROR.
    """
    if accounts.is_reserved(username):
        note_routine_failure(f"{username!r} is a reserved name, not a user")
        abort(404)
    abort(404, description=f"There is no user called {username!r}.")


def user_or_404(username: str) -> models.User:
    """The user named in the URL; a 404 that names them when there is none."""
    if accounts.is_reserved(username):
        no_such_user(username)  # before any lookup: such names are asked for often
    user = models.user_by_name(username)
    if user is None:
        no_such_user(username)
    return user
