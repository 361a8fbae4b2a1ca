"""A simulator-style load on one URL, small enough to run inside a client network namespace.

    python -m tests.edge_load URL OUT --tag TAG [--workers 4] [--seconds 120] [--requests 20000]
                              [--pause 0.02] [--stop-file PATH]

Each worker registers a user of its own, then in turn posts a twoot with a
text no other request uses ("TAG wK nI") and reads `/msgs`; every request
goes on its own connection (`Connection: close`) with a 5 s timeout, as the
simulator sends them. Each request is one JSON line in OUT as soon as it
ends: {"worker", "kind", "text", "started", "ended", "status", "error"},
times in seconds of CLOCK_MONOTONIC, which every process of the machine
shares. The load stops when the stop file appears, after `--seconds`, or
after `--requests` requests in all, whichever comes first.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from urllib.parse import quote, urlsplit

from tests.scenario import send

TIMEOUT = 5.0
EXPECTED = {"register": 204, "tweet": 204, "read": 200}


class Recorder:
    """Appends one line per request to OUT, whole lines only, from any worker."""

    def __init__(self, path: str, limit: int):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._left = limit

    def take(self) -> bool:
        """One more request may be sent (False once the count is spent)."""
        with self._lock:
            self._left -= 1
            return self._left >= 0

    def write(self, record: dict) -> None:
        with self._lock:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def run_worker(number: int, host: str, port: int, tag: str, recorder: Recorder, should_stop, pause: float) -> None:
    user = f"{tag} w{number}"
    path_user = quote(user, safe="")
    sequence = 0
    registered = False
    while not should_stop() and recorder.take():
        sequence += 1
        latest = number * 1_000_000 + sequence
        text = None
        if not registered:
            kind, method, path = "register", "POST", f"/register?latest={latest}"
            body = {"username": user, "email": f"w{number}@{tag.replace(' ', '-')}.example", "pwd": "edge load"}
        elif sequence % 4 == 0:
            kind, method, path, body = "read", "GET", f"/msgs?no=5&latest={latest}", None
        else:
            kind, method, path = "tweet", "POST", f"/msgs/{path_user}?latest={latest}"
            text = f"{tag} w{number} n{sequence}"
            body = {"content": text}
        started = time.monotonic()
        status, _, error = send(host, port, method, path, body, timeout=TIMEOUT)
        ended = time.monotonic()
        if error is None and status != EXPECTED[kind]:
            # A second registration after an ambiguous first one is answered "taken": the user exists.
            if not (kind == "register" and status == 400):
                error = f"status {status}"
        if kind == "register" and error is None:
            registered = True
        recorder.write({"worker": number, "kind": kind, "text": text, "started": started, "ended": ended,
                        "status": status, "error": error})
        time.sleep(pause)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--tag", required=True, help="starts every user name and twoot text of this run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds each worker waits between requests")
    parser.add_argument("--stop-file")
    options = parser.parse_args(argv)
    where = urlsplit(options.url)
    deadline = time.monotonic() + options.seconds

    def should_stop() -> bool:
        return time.monotonic() > deadline or bool(options.stop_file and os.path.exists(options.stop_file))

    recorder = Recorder(options.out, options.requests)
    workers = [
        threading.Thread(target=run_worker, name=f"worker {number}", daemon=True,
                         args=(number, where.hostname, where.port or 80, options.tag, recorder, should_stop,
                               options.pause))
        for number in range(1, options.workers + 1)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    recorder.close()


if __name__ == "__main__":
    main()
