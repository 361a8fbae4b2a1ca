"""The application factory: configuration, extensions and blueprints put together."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from . import auth, crossorigin, errors, favicon, framing, headers, health, logwriter, metrics, simapi, timelines
from .data import engine as database
from .data import replica
from .logviewer import routes as log_viewer
from .config import (
    instance_path,
    load_or_create_secret_key,
    settings_from_environment,
    shipped_folder,
)
from .extensions import db, migrate
from .schema import MIGRATIONS_PATH


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment; `test_config` overrides any setting.

    `INSTANCE_PATH` in `test_config` chooses the instance folder, so that
    several apps with their own data can live in one process.
    """
    overrides = dict(test_config or {})
    folder = Path(overrides.pop("INSTANCE_PATH", None) or instance_path()).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    app = Flask(
        "twooter",  # the package: the app's name, and its logger's
        instance_path=str(folder),
        template_folder=str(shipped_folder("templates")),
        static_folder=str(shipped_folder("static")),
    )
    app.config.from_mapping(settings_from_environment(folder))
    app.config.update(overrides)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = load_or_create_secret_key(folder)
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", database.engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )
    replica_url = app.config.get("DATABASE_REPLICA_URL")
    app.config.setdefault("SQLALCHEMY_BINDS", replica.binds(replica_url, database.engine_options(replica_url or "")))

    logwriter.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_PATH))
    database.init_app(app)
    metrics.init_app(app)
    framing.init_app(app)
    replica.init_app(app)
    crossorigin.init_app(app)
    headers.init_app(app)
    favicon.init_app(app)

    app.register_blueprint(errors.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(log_viewer.bp)
    app.register_blueprint(timelines.bp)
    app.register_blueprint(simapi.bp)
    return app
