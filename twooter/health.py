"""GET /health: is this instance able to take requests? Touches no database.

A load balancer asks every instance every second or so. The answer depends
on this process alone, so that a database switching over does not make every
instance look dead at once (the app answers 503 for that itself, per request).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .logs import settings as log_settings

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """200 `{"status": "ok", "instance": NAME}`; HEAD gets the same status with no body."""
    instance = log_settings.of(current_app).instance
    response = jsonify(status="ok", instance=instance)
    response.headers["Cache-Control"] = "no-store"
    return response
