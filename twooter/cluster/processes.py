"""Processes started by the cluster command: started in groups of their own, found and stopped by id.

A process is known by its id and its start time together, so that an id the
system has since given to another program is never signalled.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import psutil


class ClusterError(Exception):
    """Something the operator must hear about; the command exits non-zero with this message."""


@dataclass(frozen=True)
class Tracked:
    """One started process: its id and start time (seconds since the epoch, as psutil gives it)."""

    pid: int
    started: float

    def process(self) -> psutil.Process | None:
        """The running process, or None when it has ended (or its id now names another program)."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > 0.01:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except psutil.NoSuchProcess:
            return None

    def alive(self) -> bool:
        return self.process() is not None

    @classmethod
    def of(cls, pid: int) -> "Tracked":
        """The running process `pid`; raises psutil.NoSuchProcess when there is none."""
        return cls(pid, psutil.Process(pid).create_time())


def launch(command: list[str], *, env: dict[str, str], cwd: Path, log: Path, user: str | None = None) -> Tracked:
    """Start `command` in a session (and process group) of its own, output appended to `log`.

    `user` runs it as that account (the caller must be root). The process
    outlives the caller; it is stopped through its Tracked record.
    """
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True, user=user, group=_group_of(user), close_fds=True,
        )
    return Tracked.of(process.pid)


def _group_of(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def kill_group(tracked: Tracked) -> None:
    """SIGKILL the process's whole group (it leads one: see `launch`), if it still runs."""
    process = tracked.process()
    if process is None:
        return
    try:
        os.killpg(os.getpgid(process.pid), signal.SIGKILL)
    except ProcessLookupError:
        pass


def terminate(processes: list[Tracked], *, seconds: float = 30) -> None:
    """SIGTERM every process at once, wait up to `seconds` for all to end, then SIGKILL the groups left."""
    for tracked in processes:
        process = tracked.process()
        if process is not None:
            try:
                process.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
    wait_for(lambda: not any(t.alive() for t in processes), seconds)
    for tracked in processes:
        kill_group(tracked)
    wait_for(lambda: not any(t.alive() for t in processes), 10)


def wait_for(condition: Callable[[], bool], seconds: float, every: float = 0.2) -> bool:
    """Poll `condition` until it holds (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return True
        except Exception:  # a component that is not up yet answers with errors of every kind
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def log_tail(log: Path, lines: int = 20) -> str:
    """The last lines of a component's log, for an error message."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class StateFile:
    """DIR/cluster.json: what `up` was asked for and every process it started, by name."""

    def __init__(self, path: Path):
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict:
        """{"spec": {...}, "components": {name: {"kind", "pid", "started"}}}; ClusterError when absent."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ClusterError(f"{self.path} does not exist: no cluster was started in {self.path.parent}") from None
        except json.JSONDecodeError as error:
            raise ClusterError(f"{self.path}:{error.lineno}: not a cluster state file ({error.msg})") from None

    def write(self, state: dict) -> None:
        # Written whole and renamed, so a command stopped midway leaves the old state.
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)

    def record(self, state: dict, name: str, kind: str, tracked: Tracked, **extra) -> None:
        state["components"][name] = {"kind": kind, **asdict(tracked), **extra}
        self.write(state)
