"""Where the schema's migrations live, and the lock that takes upgrades one at a time.

Both the app's start-up upgrade and migrate_tools use them; this module
imports nothing else, so tools can use it without loading the app.
"""
from __future__ import annotations

from .config import shipped_folder

MIGRATIONS_PATH = shipped_folder("migrations")

# A PostgreSQL advisory lock id. Any fixed number works; it only has to be
# the same for every instance and for migrate_tools.
MIGRATION_LOCK_ID = 0x7477_6F6F
