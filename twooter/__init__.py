"""Twooter: a MiniTwit-family microblog.

Importing the package loads nothing heavy: tools such as migrate_tools use
its light modules (the schema's paths and lock, the snapshot format) without
Flask. `create_app` is loaded on first use.
"""
from __future__ import annotations

from typing import Any

from .schema import MIGRATIONS_PATH

__all__ = ["MIGRATIONS_PATH", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
