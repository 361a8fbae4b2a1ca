"""Where records go: the log folder and instance name of the app at hand.

Logging is process-wide but apps are not: tests build many apps in one
process, each with its own instance folder. A record written inside an
app's context goes to that app's folder; one written outside any (a server
thread starting up) goes to the folder of the app set up last.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, has_app_context

EXTENSION = "twooter_logs"
PACKAGE_FOLDER = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE_FOLDER / "logging.json"
OVERRIDE_NAME = "logging.json"


@dataclass(frozen=True)
class LogSettings:
    """Where this app writes its records (`folder`) and which folder its /logs viewer reads (`view_folder`)."""

    folder: Path
    instance: str
    compress_after_days: int
    delete_after_days: int
    config_path: Path
    # The writer's own folder unless LOG_VIEW_DIR names another: the central
    # folder that rsyslog fills with every instance's files.
    view_folder: Path


def default_instance_name() -> str:
    return socket.gethostname() or "twooter"


def settings_for(app: Flask) -> LogSettings:
    from .files import safe_instance_name

    config = app.config
    instance_folder = Path(app.instance_path)
    folder = Path(config.get("LOG_DIR") or instance_folder / "logs").resolve()
    return LogSettings(
        folder=folder,
        instance=safe_instance_name(config.get("LOG_INSTANCE_NAME") or default_instance_name()),
        compress_after_days=int(config.get("LOG_COMPRESS_AFTER_DAYS", 7)),
        delete_after_days=int(config.get("LOG_DELETE_AFTER_DAYS", 30)),
        config_path=config_path_for(app),
        view_folder=Path(config.get("LOG_VIEW_DIR") or folder).resolve(),
    )


def config_path_for(app: Flask) -> Path:
    """LOG_CONFIG if set, else instance/logging.json if there is one, else the shipped default."""
    override = Path(app.instance_path) / OVERRIDE_NAME
    chosen = app.config.get("LOG_CONFIG") or (override if override.exists() else DEFAULT_CONFIG)
    return Path(chosen).resolve()


_last: LogSettings | None = None


def remember(app: Flask, settings: LogSettings) -> None:
    global _last
    app.extensions[EXTENSION] = settings
    _last = settings


def current() -> LogSettings | None:
    if has_app_context():
        found = current_app.extensions.get(EXTENSION)
        if found is not None:
            return found
    return _last


def of(app: Flask) -> LogSettings:
    return app.extensions[EXTENSION]
