"""The cluster tests' simulator-style traffic (tests/traffic.py), run as a process of its own, recorded to a file.

    python -m tests.edge_load URL OUT --seed N [--clients 4] [--seconds 240] [--stop-file PATH]

Made to run inside a client network namespace (`ip netns exec NS python -m
tests.edge_load ...`), where the test process cannot send from. Every
finished request is appended to OUT as one JSON line within a tenth of a
second: {"client", "method", "kind", "username", "text", "status", "error",
"started", "ended"}, times in seconds of CLOCK_MONOTONIC, which every process
of the machine shares; `text` is a tweet's content. Beside the traffic, a
probe asks GET /health with a 1 s timeout, 20 times a second (kind "probe",
client 0): the traffic's clients wait up to 20 s for an answer, as the
simulator's would, so they cannot tell when service came back; the probe can. The seed makes the users
and texts of this run its own. The traffic stops when the stop file appears,
after `--seconds`, or when the scenario is done, whichever comes first.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from tests.scenario import send
from tests.traffic import Request, Traffic

FLUSH_SECONDS = 0.1
PROBE_PATH = "/health"
PROBE_TIMEOUT = 1.0  # short, so one probe stuck on a lost machine does not hide the moment service is back
PROBE_PAUSE = 0.05


def probe(host: str, port: int, should_stop, record) -> None:
    """GET /health again and again on fresh connections: when the service answers, to a tenth of a second or so."""
    while not should_stop():
        started = time.monotonic()
        status, _, error = send(host, port, "GET", PROBE_PATH, None, timeout=PROBE_TIMEOUT)
        record(Request(0, "GET", PROBE_PATH, "probe", status, error, started, time.monotonic()))
        time.sleep(PROBE_PAUSE)


def line(request: Request) -> str:
    action = request.action
    return json.dumps({
        "client": request.client, "method": request.method, "kind": request.kind,
        "username": action.username if action else None,
        "text": action.body.get("content") if action and request.kind == "tweet" else None,
        "status": request.status, "error": request.error, "started": request.started, "ended": request.ended,
    }, ensure_ascii=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--actions", type=int, default=40_000, help="the scenario's length, all clients together")
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--stop-file")
    options = parser.parse_args(argv)
    where = urlsplit(options.url)
    deadline = time.monotonic() + options.seconds
    written = 0
    probes: deque[Request] = deque()  # append and popleft are safe between two threads
    stopping = threading.Event()
    with open(options.out, "a", encoding="utf-8") as out, \
            Traffic(where.hostname, where.port or 80, clients=options.clients, actions=options.actions,
                    seed=options.seed, pause=0.02) as traffic:
        prober = threading.Thread(target=probe, args=(where.hostname, where.port or 80, stopping.is_set,
                                                      probes.append), daemon=True)
        prober.start()
        while True:
            done = not traffic.running() or time.monotonic() > deadline or (
                options.stop_file and os.path.exists(options.stop_file))
            finished = traffic.requests[written:]  # appended under the traffic's lock; a slice is a copy
            finished_probes = [probes.popleft() for _ in range(len(probes))]
            for request in finished + finished_probes:
                out.write(line(request) + "\n")
            out.flush()
            written += len(finished)
            if done:
                break
            time.sleep(FLUSH_SECONDS)
        stopping.set()
        prober.join()
    with open(options.out, "a", encoding="utf-8") as out:  # what the last requests in flight got
        for request in traffic.requests[written:]:
            out.write(line(request) + "\n")


if __name__ == "__main__":
    main()
