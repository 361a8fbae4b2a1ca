"""/logs: an hour of records from every instance, filtered in place with htmx.

`/logs/<hh>@<dd>-<mm>-<yyyy>` answers the whole page, or with HX-Request the
filtered view (or, with a cursor, the next rows). The filter state is the
query string, so the same URL works with or without JavaScript.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from ..logwriter import files, settings
from ..logwriter.levels import RECORD_LEVELS
from . import browse
from .query import BadHour, BadQuery, Query, format_hour, hour_of, parse_hour
from ..routing import wants_partial

bp = Blueprint("logs", __name__, url_prefix="/logs")

TAIL_POLL = "every 2s"


@bp.before_request
def admins_only():
    if g.user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not g.user.is_admin:
        abort(403, description="The logs are for administrators only.")
    return None


def _folder() -> Path:
    return settings.of(current_app).view_folder


def _query(hour_text: str) -> Query:
    """The hour in the path (404 if it is none) and the filters in the query string (400 if unusable)."""
    try:
        hour = parse_hour(hour_text)
    except BadHour as problem:
        abort(404, description=str(problem))
    return _filters(hour)


def _filters(hour: datetime) -> Query:
    try:
        return Query.from_args(hour, request.args)
    except BadQuery as problem:
        abort(400, description=str(problem))


def _cursor(name: str) -> dict[str, int] | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return browse.decode_cursor(raw)
    except ValueError:
        abort(400, description=f"The {name!r} parameter is not a log position from this page.")


def url_maker(query: Query):
    """`hour_url(...)` for templates: this view's URL, on another endpoint or hour, or changed."""

    def hour_url(endpoint: str = "logs.hour", hour: str | None = None, cursor: str | None = None,
                 after: str | None = None, toggle: str | None = None, **changes) -> str:
        if toggle:
            changes["hidden"] = query.hidden ^ {toggle}
        params = query.args(**changes)
        if cursor:
            params["cursor"] = cursor
        if after is not None:
            params["after"] = after
        return url_for(endpoint, hour=hour or format_hour(query.hour), **params)

    return hour_url


def _is_current(query: Query) -> bool:
    return hour_of(datetime.now(timezone.utc)) == query.hour


@bp.route("")
@bp.route("/")
def newest():
    hour = browse.newest_hour(_folder()) or hour_of(datetime.now(timezone.utc))
    # Only the filters carry over, checked: url_for would take `_external` and the like as its own.
    return redirect(url_for("logs.hour", hour=format_hour(hour), **_filters(hour).args()))


@bp.route("/<hour>")
def hour(hour: str):
    query = _query(hour)
    cursor = _cursor("cursor")
    page = browse.read_page(_folder(), query, cursor)
    context = {
        "query": query,
        "page": page,
        "levels": list(RECORD_LEVELS),
        "instances": browse.instances(_folder(), query.hour.date()),
        "hour_url": url_maker(query),
        "hour_text": format_hour(query.hour),
        "encode_cursor": browse.encode_cursor,
        "tailing": _is_current(query) and cursor is None,
        "previous_hour": format_hour(query.hour - timedelta(hours=1)),
        "next_hour": format_hour(query.hour + timedelta(hours=1)),
        "tail_poll": TAIL_POLL,
        # Counting the hour's levels reads the whole hour: they come with the chart, which loads after the page.
        "level_counts": None,
    }
    if wants_partial():
        if cursor is not None:
            return render_template("_log_rows.html", **context)
        response = current_app.make_response(render_template("_log_view.html", oob=True, **context))
        # The canonical URL, without the empty fields a form sends.
        response.headers["HX-Push-Url"] = url_maker(query)()
        return response
    return render_template("logs.html", **context)


@bp.route("/<hour>/new")
def new_records(hour: str):
    """Records written since the page (or the last poll) was rendered: tail mode."""
    query = _query(hour)
    after = _cursor("after") or {}
    entries, cursor = browse.read_new(_folder(), query, after)
    if not entries and cursor == after and _is_current(query):
        return Response(status=204)
    return render_template(
        "_log_new.html",
        query=query,
        entries=entries,
        tail_cursor=cursor,
        tailing=_is_current(query),
        tail_poll=TAIL_POLL,
        hour_url=url_maker(query),
        encode_cursor=browse.encode_cursor,
    )


@lru_cache(maxsize=64)
def _counts(folder: Path, query: Query, signature: tuple) -> dict:
    # `signature` (file names and sizes) makes a grown file a new cache entry.
    return browse.minute_counts(folder, query)


@bp.route("/<hour>/chart")
def chart(hour: str):
    query = _query(hour)
    folder = _folder()
    signature = tuple(
        (info.path.name, _size(info.path)) for info in files.log_files(folder, query.hour.date())
    )
    counts = _counts(folder, Query(hour=query.hour, instance=query.instance), signature)
    partial = wants_partial()
    page = render_template(
        "_log_chart.html",
        query=query,
        counts=counts,
        levels=list(reversed(RECORD_LEVELS)),
        most=max([sum(counter.values()) for counter in counts.values()] + [1]),
        hour_url=url_maker(query),
        # In the page, the level toggles take the hour's counts from here (out of band).
        level_counts=browse.level_totals(counts) if partial else None,
    )
    if partial:
        return page
    return Response(page, mimetype="image/svg+xml")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


@bp.route("/<hour>/raw")
def raw(hour: str):
    """The file lines of the records shown, oldest first, as a download."""
    query = _query(hour)
    lines = browse.raw_lines(_folder(), query)
    name = f"logs-{query.hour:%Y-%m-%d-%H}.jsonl"
    return Response(
        stream_with_context(lines),
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
