"""One record per request: method, path, status, duration, client and a request id.

The id is made when the request arrives (or taken from a proxy's
X-Request-Id), rides on every record written while the request runs, and
is sent back in the X-Request-Id header, so all lines of one request can be
found together. Failed requests (4xx, 5xx) are written as ERROR with the
reason; an exception that escaped a view is written with its traceback.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from http import HTTPStatus

from flask import Flask, g, request
from werkzeug.wrappers import Response

from . import suspicious
from .levels import DEBUG, ERROR, INFO
from .redact import redact_query

log = logging.getLogger("twooter.requests")
HEADER = "X-Request-Id"
ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# The viewer polls and static files are fetched with every page: routine, not news.
QUIET_BLUEPRINTS = frozenset({"logs"})
QUIET_ENDPOINTS = frozenset({"static"})


def note_failure(reason: str, exception: BaseException | None = None) -> None:
    """Say why the current request fails; its record will carry this (and the traceback)."""
    g.log_reason = reason
    if exception is not None:
        g.log_exception = exception


def note_routine_failure(reason: str) -> None:
    """Say why the current request fails, when the failure is routine (a crawler's
    /robots.txt): its record is INFO, not an ERROR that buries real ones."""
    g.log_reason = reason
    g.log_routine = True


def new_request_id() -> str:
    offered = request.headers.get(HEADER, "")
    return offered if ACCEPTABLE_ID.match(offered) else secrets.token_hex(8)


def start_request() -> None:
    g.log_started = time.perf_counter()
    path = request.path
    if request.query_string:
        path += "?" + redact_query(request.query_string.decode("utf-8", "replace"))
    g.log_request = {
        "rid": new_request_id(),
        "method": request.method,
        "path": path,
        "client": request.remote_addr or "",
    }


def _reason(status: int) -> str:
    reason = g.get("log_reason")
    if reason:
        return reason
    if request.endpoint == "auth.login" and status == 401:
        return suspicious.failed_login_reason(request.form.get("username", ""))
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "failed"


def finish_request(response: Response) -> Response:
    if "log_request" not in g:  # a hook before ours refused the request
        start_request()
    fields = dict(g.log_request)
    fields["status"] = response.status_code
    fields["ms"] = round((time.perf_counter() - g.log_started) * 1000, 1)
    response.headers[HEADER] = fields["rid"]
    summary = f"{fields['method']} {fields['path']} {response.status_code}"
    if response.status_code >= 400:
        reason = _reason(response.status_code)
        level = INFO if g.get("log_routine") else ERROR
        log.log(level, "%s: %s", summary, reason, exc_info=g.get("log_exception"),
                extra={"request_fields": fields})
        if request.endpoint == "auth.login" and response.status_code == 401:
            suspicious.check_failed_logins(request.form.get("username", ""))
    else:
        quiet = request.blueprint in QUIET_BLUEPRINTS or request.endpoint in QUIET_ENDPOINTS
        log.log(DEBUG if quiet else INFO, "%s in %s ms", summary, fields["ms"],
                extra={"request_fields": fields})
    return response


def init_app(app: Flask) -> None:
    # First, so that records of the other hooks (a refused cross-site request) carry the id.
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)
    app.after_request(finish_request)
