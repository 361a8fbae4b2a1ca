"""Where the schema's migrations live, the lock that takes upgrades one at a time,
and the error a revision stops with.

Both the app's start-up upgrade and migrate_tools use them; this module
imports nothing else of the app, so tools can use it without loading the app.
"""
from __future__ import annotations

import click

from .config import shipped_folder

MIGRATIONS_PATH = shipped_folder("migrations")

# A PostgreSQL advisory lock id. Any fixed number works; it only has to be
# the same for every instance and for migrate_tools.
MIGRATION_LOCK_ID = 0x7477_6F6F


class UpgradeRefused(click.ClickException):
    """A revision found data it must not change on its own; the message says what to do.

    A ClickException so that `twooter serve` and `twooter db upgrade` print
    the reason and exit non-zero instead of a traceback; the revision's
    transaction is rolled back, so the database stays at its old revision.
    """
