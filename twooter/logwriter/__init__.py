"""Writing the log: NLog's levels and configuration file on Python's `logging`.

levels.py (TRACE…FATAL, OFF), config.py (the configuration file and its
reload), targets.py and files.py (one file per instance per UTC day),
records.py (a record, and LINE: the byte layout of a file line, which the
viewer in twooter.logviewer reads by), requests.py (a record per request),
redact.py (no secrets in lines), capture.py (console output), suspicious.py.
"""
from __future__ import annotations

from flask import Flask

from . import capture, config, files, levels, requests, settings  # noqa: F401  (levels: registers names)


def init_app(app: Flask) -> None:
    """Apply the logging configuration and hook requests; before blueprints are registered."""
    where = settings.settings_for(app)
    where.folder.mkdir(parents=True, exist_ok=True)
    settings.remember(app, where)
    config.use(where.config_path)
    files.tidy(where.folder, where.compress_after_days, where.delete_after_days)
    requests.init_app(app)

    @app.before_request
    def pick_up_config_changes() -> None:
        config.reload_if_changed(lambda: settings.config_path_for(app))
