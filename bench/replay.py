"""Replay a generated simulator scenario against the app on SQLite, on PostgreSQL, and a null app.

    .venv/bin/python -m bench.replay [--postgres URL] [--users N] [--actions N] [--seed N]

Each target is a waitress server in its own process, driven sequentially by
this process exactly as the simulator drives it: one connection per request,
`Connection: close`. The null app answers every request at once with an empty
204, so its latencies are the cost of waitress, the socket and the client.
Each server first gets a few warm-up requests that are not measured.
Prints, per action type, the median and p99 latency, and the targets:
tweet/follow/unfollow median at most 3x the null app's and p99 under 10 ms,
a registration under 60 ms.
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.serving import free_port, served, throwaway_postgres_database
from tests.scenario import Action, Outcome, error_counts, generate, replay, send

KINDS = ("register", "register taken", "tweet", "follow", "unfollow")
SERVER_THREADS = 8


def null_app(environ, start_response):
    """The least a WSGI app can do: read the body, answer 204."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("204 No Content", [])
    return [b""]


def app_command(port: int) -> list[str]:
    return [
        sys.executable, "-c", "from twooter.cli import main; main()",
        "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", str(SERVER_THREADS),
    ]


def warm_up(port: int) -> None:
    """Take first-request costs (imports, pool connections, first hash) out of the figures."""
    for _ in range(20):
        send("127.0.0.1", port, "GET", "/latest", None, timeout=10)
    name = f"warm-up {uuid.uuid4().hex[:8]}"
    actions = [Action(0, "register", name, {"username": name, "email": "w@example.org", "pwd": "w"}, 204)]
    actions += [Action(0, "tweet", name, {"content": "warming up"}, 204)] * 20
    for action in actions:
        send("127.0.0.1", port, action.method, action.path, action.body, timeout=10)


def run_target(label: str, command: list[str], env: dict[str, str], port: int, workdir: Path,
               actions, check_status: bool) -> list[Outcome]:
    log = workdir / f"{label.split()[0]}.log"
    with served(command, env, port, log):
        warm_up(port)
        started = time.perf_counter()
        outcomes = replay("127.0.0.1", port, actions, check_status=check_status)
        elapsed = time.perf_counter() - started
    errors = dict(error_counts(outcomes))
    print(f"  {label}: {len(outcomes)} requests in {elapsed:.1f} s, errors {errors or 'none'}", flush=True)
    return outcomes


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def kind_of(outcome: Outcome) -> str:
    """A refused duplicate registration costs no hashing, so it is counted apart."""
    action = outcome.action
    return "register taken" if action.kind == "register" and action.expected_status != 204 else action.kind


def summarise(outcomes: list[Outcome]) -> dict[str, tuple[int, float, float]]:
    table = {}
    for kind in KINDS:
        seconds = [o.seconds for o in outcomes if kind_of(o) == kind]
        if seconds:
            table[kind] = (len(seconds), statistics.median(seconds) * 1000, percentile(seconds, 0.99) * 1000)
    everything = [o.seconds for o in outcomes]
    table["all"] = (len(everything), statistics.median(everything) * 1000, percentile(everything, 0.99) * 1000)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL URL of a role that may create databases (default: $TEST_POSTGRES_URL)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--actions", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--serve-null", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_null:
        import waitress

        waitress.serve(null_app, host="127.0.0.1", port=args.serve_null, threads=SERVER_THREADS, ident="null")
        return 0
    if not args.postgres:
        parser.error("no PostgreSQL: pass --postgres URL or set TEST_POSTGRES_URL")

    scenario = generate(args.seed, args.users, args.actions)
    actions = scenario.actions
    counts = {kind: sum(a.kind == kind for a in actions) for kind in ("register", "tweet", "follow", "unfollow")}
    print(f"scenario: seed {args.seed}, {len(actions)} actions {counts}; waitress {SERVER_THREADS} threads")
    # Latency on a shared machine follows its load; say what it was.
    print("load average at start: {:.2f} {:.2f} {:.2f}; {} cores".format(*os.getloadavg(), os.cpu_count()))
    results: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="twooter-bench-") as folder:
        workdir = Path(folder)
        port = free_port()
        results["null app"] = run_target(
            "null app", [sys.executable, "-m", "bench.replay", "--serve-null", str(port)], {}, port,
            workdir, actions, check_status=False,
        )
        port = free_port()
        env = {
            "DATABASE_URL": f"sqlite:///{workdir / 'sqlite' / 'twooter.sqlite'}",
            "TWOOTER_INSTANCE_PATH": str(workdir / "sqlite"),
        }
        results["app sqlite"] = run_target("app sqlite", app_command(port), env, port, workdir, actions, True)
        with throwaway_postgres_database(args.postgres, prefix="twooter_bench") as database_url:
            port = free_port()
            env = {"DATABASE_URL": database_url, "TWOOTER_INSTANCE_PATH": str(workdir / "postgresql")}
            results["app postgresql"] = run_target(
                "app postgresql", app_command(port), env, port, workdir, actions, True
            )

    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    tables = {label: summarise(outcomes) for label, outcomes in results.items()}
    labels = list(tables)
    print()
    print("| action | count | " + " | ".join(f"{label} median / p99 (ms)" for label in labels) + " |")
    print("|---|---:|" + "---:|" * len(labels))
    for kind in (*KINDS, "all"):
        count = tables[labels[0]][kind][0]
        cells = " | ".join(f"{tables[label][kind][1]:.2f} / {tables[label][kind][2]:.2f}" for label in labels)
        print(f"| {kind} | {count} | {cells} |")

    print()
    print("targets:")
    missed = 0
    null_table = tables["null app"]
    for label in ("app sqlite", "app postgresql"):
        table = tables[label]
        errors = sum(error_counts(results[label]).values())
        checks = [(f"{label}: simulator errors = {errors}", errors == 0)]
        for kind in ("tweet", "follow", "unfollow"):
            ratio = table[kind][1] / null_table[kind][1]
            checks.append((f"{label} {kind}: median {ratio:.2f} x null app (<= 3)", ratio <= 3))
            checks.append((f"{label} {kind}: p99 {table[kind][2]:.2f} ms (< 10)", table[kind][2] < 10))
        checks.append((f"{label} register: median {table['register'][1]:.1f} ms, p99 "
                       f"{table['register'][2]:.1f} ms (< 60)", table["register"][2] < 60))
        for text, ok in checks:
            missed += not ok
            print(f"  {'ok  ' if ok else 'MISS'} {text}")
    command = " ".join(shlex.quote(part) for part in [".venv/bin/python", "-m", "bench.replay", *(argv or sys.argv[1:])])
    print()
    print(f"command: {command}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
