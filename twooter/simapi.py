"""The traffic simulator's JSON API, served beside the pages on the same host and port.

Every endpoint but ``GET /latest`` records the ``latest`` query parameter as
the latest processed action id, in the unit of work of the request's own
work, or in one of its own when the request is refused first: one commit
either way.

The expected ``Authorization`` header comes from ``TWOOTER_SIMULATOR_AUTH``
(default: Basic for ``simulator:super_safe!``), or from the app setting
``SIMULATOR_AUTHORIZATION``.
"""
from __future__ import annotations

import functools
import hmac
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable

from flask import Blueprint, abort, current_app, g, jsonify, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import accounts, inputs, metrics, simulator
from .crossorigin import changes_state
from .data.replica import lag_tolerant
from .routing import no_such_user

log = logging.getLogger(__name__)

bp = Blueprint("simapi", __name__)

DEFAULT_AUTHORIZATION = "Basic c2ltdWxhdG9yOnN1cGVyX3NhZmUh"
UNAUTHORIZED_REASON = "You are not authorized to use this resource!"
OPENAPI_FILE = Path(__file__).with_name("simapi_openapi.json")

# First path segments that belong to this API; errors under them are JSON.
API_SEGMENTS = frozenset({"latest", "msgs", "fllws"})
DEFAULT_LIST_LENGTH = 100
# Longer lists are cut to this many entries, so one request cannot ask for a whole table.
MAX_LIST_LENGTH = 10_000
# The id is stored as a 64-bit integer on both databases.
LATEST_RANGE = (-(2**63), 2**63 - 1)
MAX_BODY_BYTES = 64 * 1024
# Bounded, so that int() never meets a number too long to convert.
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")


@bp.record_once
def _read_credentials_setting(state) -> None:
    state.app.config.setdefault(
        "SIMULATOR_AUTHORIZATION", os.environ.get("TWOOTER_SIMULATOR_AUTH", DEFAULT_AUTHORIZATION)
    )


def is_api_path(path: str) -> bool:
    return path.lstrip("/").split("/", 1)[0] in API_SEGMENTS


# --- parsing the request -------------------------------------------------------

def _integer_arg(name: str, low: int, high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    value = int(raw) if _INTEGER.fullmatch(raw) else None
    if value is None or value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f"of {low} or more"
        shown = raw if len(raw) <= 50 else raw[:50] + "…"
        abort(400, description=f"'{name}' must be an integer {allowed}, not {shown!r}.")
    return value


def _list_length() -> int:
    requested = _integer_arg("no", 0)
    return DEFAULT_LIST_LENGTH if requested is None else min(requested, MAX_LIST_LENGTH)


def _json_object() -> dict[str, Any]:
    # The simulator always sends JSON, whatever Content-Type it names.
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        abort(400, description="The request body must be a JSON object.")
    return body


def _text_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        abort(400, description=f"'{name}' must be a string.")
    problem = inputs.unstorable_text(value, f"'{name}'")
    if problem:
        abort(400, description=problem)
    return value


def _require_simulator() -> None:
    expected = current_app.config["SIMULATOR_AUTHORIZATION"].encode("utf-8")
    # Werkzeug decodes headers as Latin-1, so this round trip is lossless.
    given = request.headers.get("Authorization", "").encode("latin-1")
    if not hmac.compare_digest(given, expected):
        log.warning(
            "wrong or missing simulator credentials on %s %s from %s",
            request.method,
            request.path,
            request.remote_addr,
        )
        abort(403, description=UNAUTHORIZED_REASON)


def simulator_endpoint(needs_credentials: bool) -> Callable:
    """Record `latest` whatever the view then answers, and check the credentials.

    The view passes `latest` to its action in twooter.simulator, which
    stores it in the action's own unit of work; a request refused before
    that stores it on its own. Every endpoint is marked as changing state for
    the cross-site check, since any may record `latest`.
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def run(*args, **kwargs):
            request.max_content_length = MAX_BODY_BYTES
            latest = _integer_arg("latest", *LATEST_RANGE)
            g.simulator_latest_stored = False
            try:
                if needs_credentials:
                    _require_simulator()
                return view(latest, *args, **kwargs)
            except HTTPException:
                if not g.simulator_latest_stored:
                    # A refusal still keeps the recorded id.
                    simulator.record_latest(latest)
                raise

        return changes_state(run)

    return decorate


# --- endpoints -------------------------------------------------------------------

def _done(result: Any) -> Any:
    """The action ran, so `latest` is stored whatever the view answers now."""
    g.simulator_latest_stored = True
    return result


@bp.get("/latest")
def latest() -> Response:
    value = simulator.latest_action()
    return jsonify({"latest": -1 if value is None else value})


@simulator_endpoint(needs_credentials=False)
def register(latest: int | None) -> tuple[str, int]:
    """POST /register with a JSON body; auth.register hands JSON requests here."""
    body = _json_object()
    username, email, password = (_text_field(body, name) for name in ("username", "email", "pwd"))
    try:
        _done(simulator.register(latest, username or "", email or "", password or ""))
    except accounts.RegistrationError as problem:
        abort(400, description=str(problem))
    metrics.on_commit("registration", via="api")
    return "", 204


def _message_records(rows) -> list[dict]:
    """The simulator's shape of a twoot: content, pub_date in Unix seconds, user."""
    return [{"content": text, "pub_date": int(pub_date.timestamp()), "user": username}
            for text, pub_date, username in rows]


@bp.get("/msgs")
@simulator_endpoint(needs_credentials=True)
@lag_tolerant
def public_messages(latest: int | None) -> Response:
    limit = _list_length()
    return jsonify(_message_records(_done(simulator.messages(latest, limit))))


@bp.route("/msgs/<username>", methods=["GET", "POST"])
@simulator_endpoint(needs_credentials=True)
@lag_tolerant
def user_messages(latest: int | None, username: str) -> Response | tuple[str, int]:
    if request.method == "GET":
        rows = _done(simulator.messages(latest, _list_length(), username))
        if rows is None:
            no_such_user(username)
        return jsonify(_message_records(rows))
    content = _text_field(_json_object(), "content")
    if content is None or not content.strip():
        abort(400, description="'content' must be a non-empty string.")
    problem = inputs.twoot_problem(content, "A message")
    if problem:
        abort(400, description=problem)
    if not _done(simulator.post(latest, username, content)):
        no_such_user(username)
    log.info("message posted by %s (%d characters)", username, len(content))
    metrics.on_commit("twoot", via="api")
    return "", 204


@bp.route("/fllws/<username>", methods=["GET", "POST"])
@simulator_endpoint(needs_credentials=True)
@lag_tolerant
def follows(latest: int | None, username: str) -> Response | tuple[str, int]:
    if request.method == "GET":
        names = _done(simulator.followed(latest, username, _list_length()))
        if names is None:
            no_such_user(username)
        return jsonify({"follows": names})
    body = _json_object()
    to_follow, to_unfollow = _text_field(body, "follow"), _text_field(body, "unfollow")
    if (to_follow is None) == (to_unfollow is None):
        abort(400, description="Give exactly one of 'follow' or 'unfollow', with a username.")
    other = to_follow if to_follow is not None else to_unfollow
    unknown = _done(simulator.change_following(latest, username, other, following=to_follow is not None))
    if unknown is not None:
        no_such_user(unknown)
    metrics.on_commit("follow", change="follow" if to_follow is not None else "unfollow", via="api")
    return "", 204


@bp.get("/openapi.json")
def openapi() -> Response:
    return send_file(OPENAPI_FILE, mimetype="application/json", max_age=0)
