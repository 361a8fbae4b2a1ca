"""Timelines, posting and following: full pages, or htmx partials of the same routes."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from . import follows, inputs, metrics, twoots
from .crossorigin import changes_state
from .data.replica import lag_tolerant
from .data.tables import User
from .routing import user_or_404, wants_partial

bp = Blueprint("timelines", __name__)


def _cursor_from_request() -> twoots.Cursor | None:
    raw = request.args.get("before")
    if not raw:
        return None
    try:
        return twoots.Cursor.decode(raw)
    except ValueError:
        abort(400, description="The 'before' parameter is not a page cursor from this site.")


def _render_timeline(page: twoots.TimelinePage, kind: str, profile_user: User | None = None,
                     followed: bool = False) -> str:
    context = {
        "page": page,
        "kind": kind,
        "profile_user": profile_user,
        "followed": followed,
    }
    if wants_partial():
        return render_template("_twoots.html", **context)
    return render_template("timeline.html", **context)


def _page_size() -> int:
    return current_app.config["TIMELINE_PAGE_SIZE"]


def _require_login() -> User:
    if g.user is None:
        abort(401, description="You have to be logged in to do that.")
    return g.user


@bp.route("/")
def my_timeline() -> Response | str:
    if g.user is None:
        return redirect(url_for("timelines.public_timeline"))
    page = twoots.home_page(g.user, _cursor_from_request(), _page_size())
    return _render_timeline(page, "mine")


@bp.route("/public")
@lag_tolerant
def public_timeline() -> str:
    page = twoots.public_page(_cursor_from_request(), _page_size())
    return _render_timeline(page, "public")


@bp.route("/<username>")
@lag_tolerant
def user_timeline(username: str) -> str:
    profile_user = user_or_404(username)
    followed = g.user is not None and follows.is_following(g.user, profile_user)
    page = twoots.user_page(profile_user, _cursor_from_request(), _page_size())
    return _render_timeline(page, "user", profile_user, followed)


@bp.route("/add_message", methods=["POST"])
def add_message() -> Response | str:
    author = _require_login()
    text = request.form.get("text", "")
    problem = inputs.twoot_problem(text, "A twoot")
    if problem:
        abort(400, description=problem)
    if not text.strip():
        # MiniTwit records nothing for an empty box and says nothing about it.
        return Response(status=204) if wants_partial() else redirect(url_for("timelines.my_timeline"))
    twoot = twoots.post(author, text)
    current_app.logger.info("twoot posted by %s (%d characters)", author.username, len(text))
    metrics.on_commit("twoot", via="web")
    flash("Your message was recorded")
    if wants_partial():
        return render_template("_posted.html", twoot=twoot)
    return redirect(url_for("timelines.my_timeline"))


def _change_follow(username: str, following: bool) -> Response | str:
    follower = _require_login()
    followed = user_or_404(username)
    if following:
        try:
            follows.follow(follower, followed)
        except follows.FollowError as refusal:
            abort(400, description=str(refusal))
        flash(f'You are now following "{followed.username}"')
    else:
        follows.unfollow(follower, followed)
        flash(f'You are no longer following "{followed.username}"')
    # Counted after the unit of work committed the change.
    metrics.on_commit("follow", change="follow" if following else "unfollow", via="web")
    if wants_partial():
        return render_template("_follow_changed.html", profile_user=followed, followed=following)
    return redirect(url_for("timelines.user_timeline", username=followed.username))


@bp.route("/<username>/follow", methods=["GET", "POST"])
@changes_state
def follow_user(username: str) -> Response | str:
    return _change_follow(username, True)


@bp.route("/<username>/unfollow", methods=["GET", "POST"])
@changes_state
def unfollow_user(username: str) -> Response | str:
    return _change_follow(username, False)
