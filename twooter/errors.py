"""Error responses: a page for people, a fragment for htmx, JSON for API clients.

No response ever carries a traceback; unexpected exceptions become a plain
500. A database that stays away longer than the retry budget is a 503 with
Retry-After. Every handler rolls the session back first, so that the error
page works whatever state the failure left the transaction in.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.wrappers import Response

from .data.unit import DatabaseUnavailable
from .extensions import db
from .logwriter.requests import note_failure
from .routing import wants_partial
from .simapi import is_api_path

bp = Blueprint("errors", __name__)

JSON_BLUEPRINTS = frozenset({"simapi"})


def wants_json() -> bool:
    if request.blueprint in JSON_BLUEPRINTS or request.is_json or is_api_path(request.path):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(error: HTTPException) -> Response | tuple:
    code = error.code or 500
    reason = error.description or error.name
    if "log_reason" not in g:
        note_failure(reason)
    if wants_json():
        response = jsonify({"status": code, "error_msg": reason})
        response.status_code = code
    elif wants_partial():
        response = current_app.make_response(
            (render_template("_error.html", code=code, name=error.name, reason=reason), code)
        )
        # Show the reason where flashes go, whatever the request was aiming at.
        response.headers["HX-Retarget"] = "#flashes"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = current_app.make_response(
            (render_template("error.html", code=code, name=error.name, reason=reason), code)
        )
    for header, value in error.get_headers():
        if header.lower() != "content-type":
            response.headers.setdefault(header, value)
    return response


def _clean_session() -> None:
    # A failed statement leaves PostgreSQL's transaction unusable until rolled back.
    try:
        db.session.rollback()
    except Exception:  # the connection itself is gone: the pool replaces it
        db.session.close()


@bp.app_errorhandler(HTTPException)
def handle_http_error(error: HTTPException):
    _clean_session()
    return error_response(error)


@bp.app_errorhandler(DatabaseUnavailable)
def handle_database_unavailable(error: DatabaseUnavailable):
    _clean_session()
    note_failure(f"database unavailable: {error}")
    wait = error.retry_after
    return error_response(ServiceUnavailable(
        description=f"The database is briefly unavailable. Please try again in {wait} seconds.",
        retry_after=wait,
    ))


@bp.app_errorhandler(Exception)
def handle_unexpected_error(error: Exception):
    _clean_session()
    # The request's own ERROR record carries the traceback: one record for one failure.
    note_failure(f"unhandled {type(error).__name__}: {error}", error)
    return error_response(InternalServerError(description="Something went wrong on our side."))
