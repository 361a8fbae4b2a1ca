"""The monitoring engines on the configuration in deploy/: Prometheus, and rsyslog for log shipping.

Each module writes an engine's configuration from its template in deploy/
into a directory of its own and gives the engine's command line (rsyslog's
module also starts it, for tests), so tests and `twooter cluster` run
exactly the configuration a real machine gets. Nothing in the app depends
on this.
"""
from __future__ import annotations

import string
import subprocess
from pathlib import Path

from ..config import shipped_folder

DEPLOY = shipped_folder("deploy")


class _ConfigTemplate(string.Template):
    # `$` belongs to the engines' own syntax (rsyslog's $!metadata, Prometheus's $labels).
    delimiter = "@"


def fill(template: Path, **values: object) -> str:
    """The text of a deploy/ template with its `@{name}` fields filled; KeyError names a missing one."""
    return _ConfigTemplate(template.read_text(encoding="utf-8")).substitute(
        {name: str(value) for name, value in values.items()})


def stop(process: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM the process (by its pid), SIGKILL if it has not ended within `seconds`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=seconds)
