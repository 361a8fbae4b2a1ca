"""Servers for benchmarks: a command in its own process, until the block ends."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.servers import free_port, throwaway_postgres_database

__all__ = ["free_port", "served", "throwaway_postgres_database"]


def _wait_until_listening(port: int, process: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start within {seconds:.0f} s; see {log}")


@contextmanager
def served(command: list[str], env: dict[str, str], port: int, log: Path,
           start_seconds: float = 120) -> Iterator[None]:
    """Run `command` (a server that listens on `port` once ready), output to `log`."""
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_until_listening(port, process, log, start_seconds)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
