"""Register, log in and log out; who the current user is."""
from __future__ import annotations

import json

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from . import accounts, simapi, throttle
from .extensions import db
from .logs.requests import note_failure
from .models import User
from .routing import changes_state, local_path_or_none, wants_partial

bp = Blueprint("auth", __name__)


@bp.before_app_request
def load_logged_in_user() -> None:
    user_id = session.get("user_id")
    g.user = db.session.get(User, user_id) if user_id is not None else None
    if user_id is not None and g.user is None:
        # The account is gone (or the database was replaced): forget the stale id.
        session.pop("user_id", None)


@bp.route("/register", methods=["GET", "POST"])
def register() -> Response | str | tuple[str, int]:
    if request.method == "POST" and request.is_json:
        # The simulator registers on this path: a JSON request goes to the API, a form to the page.
        return simapi.register()
    if g.user is not None:
        return redirect(url_for("timelines.my_timeline"))
    error = None
    if request.method == "POST":
        form = request.form
        try:
            accounts.register(
                form.get("username", ""),
                form.get("email", ""),
                form.get("password", ""),
                form.get("password2", ""),
            )
        except accounts.RegistrationError as problem:
            error = str(problem)
        else:
            flash("You were successfully registered and can login now")
            return redirect(url_for("auth.login"))
    page = render_template("register.html", error=error, form=request.form)
    return (page, 400) if error else page


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    next_path = local_path_or_none(request.values.get("next"))
    if g.user is not None:
        return redirect(next_path or url_for("timelines.my_timeline"))
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")
        try:
            user = throttle.login(username, request.form.get("password", ""), request.remote_addr or "")
        except throttle.LoginRefused as refused:
            return _refused_login(refused, username, next_path)
        except accounts.LoginError as problem:
            error = str(problem)
        else:
            session.clear()
            session["user_id"] = user.id
            flash("You were logged in")
            return redirect(next_path or url_for("timelines.my_timeline"))
    page = render_template("login.html", error=error, form=request.form, next_path=next_path)
    return (page, 401) if error else page


def _refused_login(refused: throttle.LoginRefused, username: str, next_path: str | None) -> tuple:
    """429 with Retry-After: the login form saying why, or the error fragment for htmx."""
    note_failure(f"login refused for {json.dumps(username, ensure_ascii=False)}: "
                 f"{refused.scope} locked for {refused.retry_after} s")
    if wants_partial():
        raise TooManyRequests(description=str(refused), retry_after=refused.retry_after)
    page = render_template("login.html", error=str(refused), form=request.form, next_path=next_path)
    return page, 429, {"Retry-After": str(refused.retry_after)}


@bp.route("/logout", methods=["GET", "POST"])
@changes_state
def logout() -> Response:
    session.clear()
    flash("You were logged out")
    return redirect(url_for("timelines.public_timeline"))
