"""What a request's metrics cost, in-process: the app with metrics on and off, called through WSGI.

    .venv/bin/python -m bench.metrics [--rounds 30] [--per-round 200]

Two apps on SQLite, alike but for TWOOTER_METRICS, answer the simulator's
tweet, follow and unfollow and a GET /public, called directly through the
WSGI interface (no sockets, no server threads). The apps take turns, a
round of requests each, and each request's CPU time of this thread is
measured, so the figures follow the work done rather than the shared
machine's load. Prints the median per action and the ratio on / off; the
socket-level replay (bench.replay --metrics-cost) measures the same with
latency, which on a busy machine is mostly waiting.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from twooter import create_app
from twooter.data import engine as database

ACTIONS = ("tweet", "follow", "unfollow", "public page")


def make_app(folder: Path, metrics_on: bool):
    app = create_app({"INSTANCE_PATH": folder, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'twooter.sqlite'}",
                      "METRICS_ENABLED": metrics_on, "LOG_INSTANCE_NAME": "bench"})
    database.upgrade_to_latest(app)
    return app


def call(app, method: str, path: str, body: dict | None, headers: dict) -> int:
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path.split("?")[0], "QUERY_STRING": path.partition("?")[2],
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(data), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/json",
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }
    status = []
    for _ in app(environ, lambda line, _headers: status.append(line)):
        pass
    return int(status[0].split()[0])


def requests_of(round_number: int, count: int, auth: dict) -> list[tuple[str, str, str, dict | None, dict]]:
    plan = []
    for number in range(count):
        action = ACTIONS[number % len(ACTIONS)]
        if action == "tweet":
            plan.append((action, "POST", f"/msgs/alice?latest={number}", {"content": f"r{round_number} {number}"}, auth))
        elif action == "follow":
            plan.append((action, "POST", "/fllws/alice", {"follow": "bob"}, auth))
        elif action == "unfollow":
            plan.append((action, "POST", "/fllws/alice", {"unfollow": "bob"}, auth))
        else:
            plan.append((action, "GET", "/public", None, {}))
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="twooter-bench-metrics-") as folder:
        apps = {"on": make_app(Path(folder) / "on", True), "off": make_app(Path(folder) / "off", False)}
        auth = {"Authorization": apps["on"].config["SIMULATOR_AUTHORIZATION"]}
        for app in apps.values():
            for name in ("alice", "bob"):
                call(app, "POST", "/register", {"username": name, "email": f"{name}@x.org", "pwd": "p"}, {})
            for request in requests_of(0, 100, auth):  # warm-up, not measured
                call(app, *request[1:])
        seconds: dict[str, dict[str, list[float]]] = {label: {a: [] for a in ACTIONS} for label in apps}
        for round_number in range(1, args.rounds + 1):
            order = ("on", "off") if round_number % 2 else ("off", "on")
            for label in order:
                for action, *request in requests_of(round_number, args.per_round, auth):
                    started = time.thread_time()
                    status = call(apps[label], *request)
                    seconds[label][action].append(time.thread_time() - started)
                    assert status < 400, (label, action, status)
    print(f"{args.rounds} rounds of {args.per_round} requests on each app, in turns; CPU time of the calling thread")
    print()
    print("| action | requests | metrics on, median (ms) | metrics off, median (ms) | on / off |")
    print("|---|---:|---:|---:|---:|")
    for action in ACTIONS:
        on, off = statistics.median(seconds["on"][action]), statistics.median(seconds["off"][action])
        print(f"| {action} | {len(seconds['on'][action])} | {on * 1000:.3f} | {off * 1000:.3f} | {on / off:.3f} |")
    everything = {label: statistics.median([s for values in seconds[label].values() for s in values]) for label in apps}
    print(f"| all | {sum(len(v) for v in seconds['on'].values())} | {everything['on'] * 1000:.3f} | "
          f"{everything['off'] * 1000:.3f} | {everything['on'] / everything['off']:.3f} |")
    command = ".venv/bin/python -m bench.metrics" + "".join(f" {part}" for part in (argv or sys.argv[1:]))
    print()
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
