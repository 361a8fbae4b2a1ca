"""The `twooter` command: serve the app, manage users, export data, and Flask's own commands (`db …`)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from . import accounts, create_app, logwriter
from .data import engine as database
from .cluster.commands import cluster


@click.group(cls=FlaskGroup, create_app=create_app)
def main() -> None:
    """Twooter: a MiniTwit-family microblog."""


main.add_command(cluster)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads.")
@with_appcontext
def serve(host: str, port: int, threads: int) -> None:
    """Apply pending migrations, then serve with waitress."""
    from .serving import make_server

    app = current_app._get_current_object()
    # From here on, console output and a crash of the process are in the log too.
    logwriter.capture.install()
    where = logwriter.settings.of(app)
    app.logger.info("starting instance %s on %s:%d (%d threads); logs in %s, configured by %s",
                    where.instance, host, port, threads, where.folder, where.config_path)
    database.upgrade_to_latest(app)
    # Behind a load balancer the client's address (request records, login
    # throttling) is the one the proxy puts in X-Forwarded-For, taken only
    # from the proxies named and dropped from anyone else.
    server = make_server(app, host, port, threads, trusted_proxies=tuple(app.config["TRUSTED_PROXY"].split()))
    server.print_listen("Serving on http://{}:{}")
    server.run()


@main.command("make-admin")
@click.argument("username")
@with_appcontext
def make_admin(username: str) -> None:
    """Grant USERNAME the admin flag (needed for the log viewer)."""
    if not accounts.grant_admin(username):
        raise click.ClickException(f"there is no user called {username!r}")
    click.echo(f"{username} is now an admin")


@main.command("export")
@click.argument("output", type=click.File("w", encoding="utf-8", lazy=True), default="-")
@with_appcontext
def export(output) -> None:
    """Write the whole database as a JSON snapshot to OUTPUT (default: stdout)."""
    from .export import write_snapshot

    counts = write_snapshot(output)
    summary = ", ".join(f"{count} {table}" for table, count in counts.items())
    click.echo(f"exported {summary}", err=True)
