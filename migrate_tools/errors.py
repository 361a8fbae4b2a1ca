"""Errors an operator can act on: each names the file (and line) or the target."""
from __future__ import annotations

from pathlib import Path


class MigrationError(Exception):
    """Anything that stops a migration; the message is shown as is."""


class SourceError(MigrationError):
    def __init__(self, path: Path | str, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class TargetError(MigrationError):
    """The PostgreSQL target cannot be used (unreachable, read-only, not empty…)."""


def first_line(error: BaseException) -> str:
    """The first line of an error's text (drivers add detail lines), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
