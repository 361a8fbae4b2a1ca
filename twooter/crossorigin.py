"""Cross-site request forgery protection from the browser's own headers.

Modern browsers say where a request comes from (``Sec-Fetch-Site``, and
``Origin`` on older ones). A request that carries neither comes from a
non-browser client — a test suite, the simulator, curl — which cannot be
tricked into sending a user's cookie, so it needs no token.

Safe methods pass, except the legacy GET routes that change state
(logout, follow, unfollow): those are checked like a POST.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, current_app, has_request_context, request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_ORIGIN_REASON = "Cross-origin request refused: this action must come from Twooter's own pages."


def changes_state(view):
    """Mark a view that changes state even when reached with GET (legacy routes).

    Only this check reads the mark; whether a transaction writes is said by
    the code that writes (data.unit.writing).
    """
    view.changes_state = True
    return view


def request_changes_state() -> bool:
    """True for any request this check guards: unsafe methods, and views marked changes_state."""
    if not has_request_context():
        return True
    if request.method not in SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "changes_state", False)


def is_cross_origin() -> bool:
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if origin and origin in current_app.config.get("TRUSTED_ORIGINS", ()):
        return False
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    if not origin:
        return False
    # An opaque origin ("null") cannot be ours.
    return urlsplit(origin).netloc != request.host


def refuse_cross_origin_requests() -> None:
    if not request_changes_state():
        return
    if is_cross_origin():
        current_app.logger.warning(
            "cross-origin %s %s refused (Sec-Fetch-Site=%s, Origin=%s)",
            request.method,
            request.path,
            request.headers.get("Sec-Fetch-Site"),
            request.headers.get("Origin"),
        )
        abort(403, description=CROSS_ORIGIN_REASON)


def init_app(app: Flask) -> None:
    app.before_request(refuse_cross_origin_requests)
