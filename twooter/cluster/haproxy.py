"""HAProxy's runtime API on its admin socket: server states, drains, and live session counts."""
from __future__ import annotations

import csv
import io
import socket
from pathlib import Path

TIMEOUT_SECONDS = 5


def command(runtime_socket: Path, line: str) -> str:
    """Send one runtime API command, return HAProxy's whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(TIMEOUT_SECONDS)
        connection.connect(str(runtime_socket))
        connection.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def servers(runtime_socket: Path) -> dict[tuple[str, str], dict[str, str]]:
    """`show stat` for servers: {(backend, server): {"status": "UP"|"DOWN"|"DRAIN"|"MAINT"…, "scur": "0", …}}."""
    answer = command(runtime_socket, "show stat").lstrip("# ")
    rows = csv.DictReader(io.StringIO(answer))
    return {(row["pxname"], row["svname"]): row for row in rows
            if row.get("svname") not in ("FRONTEND", "BACKEND", None)}


def set_state(runtime_socket: Path, backend: str, server: str, state: str) -> None:
    """`set server BACKEND/SERVER state ready|drain|maint`; ValueError with HAProxy's words if refused."""
    answer = command(runtime_socket, f"set server {backend}/{server} state {state}").strip()
    if answer:
        raise ValueError(f"HAProxy refused 'set server {backend}/{server} state {state}': {answer}")
