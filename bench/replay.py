"""Replay a generated simulator scenario against the app on SQLite, on PostgreSQL, and a null app.

    .venv/bin/python -m bench.replay [--postgres URL] [--users N] [--actions N] [--seed N] [--metrics-cost]

Each target is a waitress server in its own process, driven by this process
exactly as the simulator drives it: one request at a time, one connection
per request, `Connection: close`; the targets take turns, 100 actions each. The null app answers every request at once with an empty
204, so its latencies are the cost of waitress, the socket and the client.
The "floor" servers are references, not contenders: the same writes done by
a bare Flask app with one transaction each on SQLite or PostgreSQL (no ORM,
no logging, no checks), i.e. the least the fixed stack costs here.
Each server first gets a few warm-up requests that are not measured.
After the scenario every server answers 1,000 requests that do no data work
(the app's GET /health, the floor's GET /latest), in turns as well: what
each request pipeline costs before any database is touched.
Prints, per action type, the median and p99 latency, and the targets:
tweet/follow/unfollow median at most 1.5x the floor's on the same database
and p99 under 10 ms, a registration under 60 ms, and no answer slower than
the simulator's 0.3 s timeout (the replayer itself waits longer, so a slow
answer is still checked for its status and counted here rather than lost).

With --metrics-cost the targets are the null app and the app on each
database twice, with /metrics and its counting on and off
(TWOOTER_METRICS=off), and the table ends with what metrics cost: each
action's median with them over the median without, in the same run.
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
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

from bench.serving import free_port, served, throwaway_postgres_database
from tests.scenario import SIMULATOR_BUDGET, Action, Outcome, error_counts, generate, replay, send, slower_than

KINDS = ("register", "register taken", "tweet", "follow", "unfollow")
SERVER_THREADS = 8
BLOCK = 100
# After the scenario, each target answers this many requests that do no
# data work, in turns of PROBE_BLOCK: what its request pipeline costs alone.
PROBES = 1000
PROBE_BLOCK = 50
PIPELINE = "no data work"


def null_app(environ, start_response):
    """The least a WSGI app can do: read the body, answer 204."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("204 No Content", [])
    return [b""]


FLOOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id {key}, username TEXT UNIQUE NOT NULL, email TEXT);
CREATE TABLE IF NOT EXISTS messages (id {key}, author_id INTEGER NOT NULL REFERENCES users (id), text TEXT,
                                     pub_date TIMESTAMP);
CREATE TABLE IF NOT EXISTS follows (follower_id INTEGER, followed_id INTEGER, PRIMARY KEY (follower_id, followed_id));
CREATE TABLE IF NOT EXISTS latest (id INTEGER PRIMARY KEY, value BIGINT);
"""


def flask_floor_app(database: str):
    """What the fixed stack costs at the least: Flask routes the request, one commit stores it.

    `database` is an SQLite file or a PostgreSQL URL (where the write and the
    `latest` upsert go as one statement, one round trip). No ORM, no logging,
    no credential or input checks, no hashing, no pool checks: a floor that any
    Flask app on waitress and that database sits above on this machine,
    measured beside the app so that the 3x target can be read against it.
    """
    import sqlite3
    import threading

    import psycopg2
    from flask import Flask, jsonify, request

    on_postgres = database.startswith("postgresql")

    def connect():
        if on_postgres:
            connection = psycopg2.connect(database)
            connection.autocommit = True
            return connection
        connection = sqlite3.connect(database, isolation_level=None, timeout=30)
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    setup = connect()
    if on_postgres:
        with setup.cursor() as cursor:
            cursor.execute(FLOOR_SCHEMA.format(key="SERIAL PRIMARY KEY"))
    else:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.executescript(FLOOR_SCHEMA.format(key="INTEGER PRIMARY KEY"))
    setup.close()
    app = Flask("flask_floor")
    local = threading.local()
    mark = "%s" if on_postgres else "?"

    upsert_latest = (f"INSERT INTO latest (id, value) VALUES (1, {mark}) "
                     "ON CONFLICT (id) DO UPDATE SET value = excluded.value")

    def write(sql: str, parameters: tuple) -> None:
        """The request's write and the `latest` upsert, atomically, with one commit."""
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = connect()
        latest = request.args.get("latest")
        sql = sql.replace("?", mark)
        with closing(connection.cursor()) as cursor:
            if on_postgres:
                # One statement in autocommit: a single round trip to the server.
                if latest is not None:
                    sql, parameters = f"WITH latest AS ({upsert_latest}) {sql}", (int(latest), *parameters)
                cursor.execute(sql, parameters)
                return
            cursor.execute("BEGIN IMMEDIATE")
            if latest is not None:
                cursor.execute(upsert_latest, (int(latest),))
            cursor.execute(sql, parameters)
            cursor.execute("COMMIT")

    user_id = "(SELECT id FROM users WHERE username = ?)"

    @app.get("/latest")
    def latest():
        return jsonify({"latest": -1})

    @app.post("/register")
    def register():
        body = request.get_json(force=True)
        write("INSERT INTO users (username, email) VALUES (?, ?) ON CONFLICT DO NOTHING",
              (body["username"], body["email"]))
        return "", 204

    @app.post("/msgs/<name>")
    def tweet(name):
        body = request.get_json(force=True)
        write("INSERT INTO messages (author_id, text, pub_date) SELECT id, ?, CURRENT_TIMESTAMP "
              "FROM users WHERE username = ?", (body["content"], name))
        return "", 204

    @app.post("/fllws/<name>")
    def follow(name):
        body = request.get_json(force=True)
        if "follow" in body:
            write(f"INSERT INTO follows VALUES ({user_id}, {user_id}) ON CONFLICT DO NOTHING", (name, body["follow"]))
        else:
            write(f"DELETE FROM follows WHERE follower_id = {user_id} AND followed_id = {user_id}",
                  (name, body["unfollow"]))
        return "", 204

    return app


def app_command(port: int) -> list[str]:
    return [
        sys.executable, "-c", "from twooter.cli import main; main()",
        "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", str(SERVER_THREADS),
    ]


def _libpq_url(url: str) -> str:
    """An SQLAlchemy URL as psycopg2 takes it."""
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def warm_up(port: int) -> None:
    """Take first-request costs (imports, pool connections, first hash) out of the figures."""
    for _ in range(20):
        send("127.0.0.1", port, "GET", "/latest", None, timeout=10)
    name = f"warm-up {uuid.uuid4().hex[:8]}"
    actions = [Action(0, "register", name, {"username": name, "email": "w@example.org", "pwd": "w"}, 204)]
    actions += [Action(0, "tweet", name, {"content": "warming up"}, 204)] * 20
    for action in actions:
        send("127.0.0.1", port, action.method, action.path, action.body, timeout=10)


@dataclass(frozen=True)
class Target:
    label: str
    command: list[str]
    env: dict[str, str]
    port: int
    check_status: bool
    # A request that touches no database: the app's GET /health, the floor's GET /latest.
    pipeline_path: str = "/health"


@dataclass(frozen=True)
class Probe:
    """A request of no data work, in the shape of a scenario action for `replay`."""

    path: str
    kind: str = PIPELINE
    method: str = "GET"
    body: None = None
    expected_status: int = 200


def replay_in_turns(targets: list[Target], actions, workdir: Path) -> dict[str, list[Outcome]]:
    """Replay the scenario on every target, a block of actions at a time, target after target.

    The machine is shared and its load drifts within seconds: taking turns
    every BLOCK actions lets every target meet the same stretches of time,
    so their ratios hold even when the absolute figures move. Within a block a
    server stays warm, as it is under the simulator's steady traffic (sending
    each action to each server in turn would wake a cold process every time
    and measure that instead). Which target goes first rotates per block.
    """
    outcomes: dict[str, list[Outcome]] = {target.label: [] for target in targets}
    with ExitStack() as servers:
        for target in targets:
            log = workdir / f"{target.label.replace(' ', '-')}.log"
            servers.enter_context(served(target.command, target.env, target.port, log))
        for target in targets:
            warm_up(target.port)
        started = time.perf_counter()
        for turn, first in enumerate(range(0, len(actions), BLOCK)):
            block = actions[first:first + BLOCK]
            for offset in range(len(targets)):
                target = targets[(turn + offset) % len(targets)]
                outcomes[target.label] += replay("127.0.0.1", target.port, block, check_status=target.check_status)
        elapsed = time.perf_counter() - started
        for turn in range(PROBES // PROBE_BLOCK):
            for offset in range(len(targets)):
                target = targets[(turn + offset) % len(targets)]
                probes = [Probe(target.pipeline_path)] * PROBE_BLOCK
                outcomes[target.label] += replay("127.0.0.1", target.port, probes, check_status=target.check_status)
    print(f"  {len(actions)} actions on each of {len(targets)} targets, in turns of {BLOCK}: {elapsed:.1f} s; "
          f"then {PROBES} requests of no data work each", flush=True)
    for target in targets:
        errors = dict(error_counts(outcomes[target.label]))
        slow = slower_than(outcomes[target.label])
        print(f"  {target.label}: errors {errors or 'none'}; {slow} answers slower than {SIMULATOR_BUDGET} s",
              flush=True)
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
    for kind in (*KINDS, PIPELINE):
        seconds = [o.seconds for o in outcomes if kind_of(o) == kind]
        if seconds:
            table[kind] = (len(seconds), statistics.median(seconds) * 1000, percentile(seconds, 0.99) * 1000)
    everything = [o.seconds for o in outcomes if o.action.kind != PIPELINE]
    table["all"] = (len(everything), statistics.median(everything) * 1000, percentile(everything, 0.99) * 1000)
    return table


def print_latency_table(results: dict[str, list[Outcome]]) -> dict[str, dict[str, tuple[int, float, float]]]:
    """Print the load at the end and each target's median / p99 per action; the summaries by target."""
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    tables = {label: summarise(outcomes) for label, outcomes in results.items()}
    labels = list(tables)
    print()
    print("| action | count | " + " | ".join(f"{label} median / p99 (ms)" for label in labels) + " |")
    print("|---|---:|" + "---:|" * len(labels))
    for kind in (*KINDS, "all", PIPELINE):
        if kind not in tables[labels[0]]:
            continue
        count = tables[labels[0]][kind][0]
        cells = " | ".join(f"{tables[label][kind][1]:.2f} / {tables[label][kind][2]:.2f}" for label in labels)
        print(f"| {kind} | {count} | {cells} |")
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL URL of a role that may create databases (default: $TEST_POSTGRES_URL)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--actions", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also replay against the app in this source tree (e.g. `git archive REV` "
                             "unpacked), on both databases, to compare two versions in one run")
    parser.add_argument("--metrics-cost", action="store_true",
                        help="compare the app with metrics on and off instead of against the floors")
    parser.add_argument("--serve-null", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", nargs=2, metavar=("PORT", "DATABASE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_null or args.serve_floor:
        import waitress

        if args.serve_null:
            port, app = args.serve_null, null_app
        else:
            port, app = int(args.serve_floor[0]), flask_floor_app(args.serve_floor[1])
        waitress.serve(app, host="127.0.0.1", port=port, threads=SERVER_THREADS, ident="bench")
        return 0
    if not args.postgres:
        parser.error("no PostgreSQL: pass --postgres URL or set TEST_POSTGRES_URL")

    scenario = generate(args.seed, args.users, args.actions)
    actions = scenario.actions
    counts = {kind: sum(a.kind == kind for a in actions) for kind in ("register", "tweet", "follow", "unfollow")}
    print(f"scenario: seed {args.seed}, {len(actions)} actions {counts}; waitress {SERVER_THREADS} threads")
    # Latency on a shared machine follows its load; say what it was.
    print("load average at start: {:.2f} {:.2f} {:.2f}; {} cores".format(*os.getloadavg(), os.cpu_count()))
    with tempfile.TemporaryDirectory(prefix="twooter-bench-") as folder, ExitStack() as databases:
        workdir = Path(folder)
        app_database, floor_database = (
            databases.enter_context(throwaway_postgres_database(args.postgres, prefix="twooter_bench"))
            for _ in range(2)
        )
        bench_server = [sys.executable, "-m", "bench.replay"]
        ports = [free_port() for _ in range(7)]
        if args.metrics_cost:
            return metrics_cost(args, argv, actions, workdir, app_database, floor_database)
        targets = [
            Target("null app", [*bench_server, "--serve-null", str(ports[0])], {}, ports[0], False, "/latest"),
            Target("floor sqlite", [*bench_server, "--serve-floor", str(ports[1]), str(workdir / "floor.sqlite")],
                   {}, ports[1], False, "/latest"),
            Target("app sqlite", app_command(ports[2]), {
                "DATABASE_URL": f"sqlite:///{workdir / 'sqlite' / 'twooter.sqlite'}",
                "TWOOTER_INSTANCE_PATH": str(workdir / "sqlite"),
            }, ports[2], True),
            Target("floor postgresql", [*bench_server, "--serve-floor", str(ports[3]), _libpq_url(floor_database)],
                   {}, ports[3], False, "/latest"),
            Target("app postgresql", app_command(ports[4]), {
                "DATABASE_URL": app_database, "TWOOTER_INSTANCE_PATH": str(workdir / "postgresql"),
            }, ports[4], True),
        ]
        if args.baseline:
            baseline_database = databases.enter_context(
                throwaway_postgres_database(args.postgres, prefix="twooter_bench"))
            tree = {"PYTHONPATH": str(args.baseline.resolve())}
            targets += [
                Target("baseline sqlite", app_command(ports[5]), {
                    **tree, "DATABASE_URL": f"sqlite:///{workdir / 'baseline-sqlite' / 'twooter.sqlite'}",
                    "TWOOTER_INSTANCE_PATH": str(workdir / "baseline-sqlite"),
                }, ports[5], True),
                Target("baseline postgresql", app_command(ports[6]), {
                    **tree, "DATABASE_URL": baseline_database,
                    "TWOOTER_INSTANCE_PATH": str(workdir / "baseline-postgresql"),
                }, ports[6], True),
            ]
        results = replay_in_turns(targets, actions, workdir)

    tables = print_latency_table(results)
    labels = list(tables)

    print()
    print("targets:")
    missed = 0
    null_table = tables["null app"]
    for label in ("app sqlite", "app postgresql"):
        table = tables[label]
        errors = sum(error_counts(results[label]).values())
        slow = slower_than(results[label])
        checks = [(f"{label}: simulator errors = {errors}", errors == 0),
                  (f"{label}: answers slower than the simulator's {SIMULATOR_BUDGET} s = {slow} "
                   f"of {len(results[label])}", slow == 0)]
        floor_table = tables[label.replace("app", "floor")]
        for kind in ("tweet", "follow", "unfollow"):
            ratio = table[kind][1] / floor_table[kind][1]
            checks.append((f"{label} {kind}: median {ratio:.2f} x its floor (<= 1.5); "
                           f"{table[kind][1] / null_table[kind][1]:.2f} x null app", ratio <= 1.5))
            checks.append((f"{label} {kind}: p99 {table[kind][2]:.2f} ms (< 10)", table[kind][2] < 10))
        checks.append((f"{label} register: median {table['register'][1]:.1f} ms, p99 "
                       f"{table['register'][2]:.1f} ms (< 60)", table["register"][2] < 60))
        for text, ok in checks:
            missed += not ok
            print(f"  {'ok  ' if ok else 'MISS'} {text}")
    for label in ("floor sqlite", "floor postgresql"):
        floor = ", ".join(f"{kind} {tables[label][kind][1] / null_table[kind][1]:.2f} x"
                          for kind in ("tweet", "follow", "unfollow"))
        print(f"  (reference, no target) {label} median: {floor} null app")
    for database in ("sqlite", "postgresql"):
        app, floor = tables[f"app {database}"][PIPELINE][1], tables[f"floor {database}"][PIPELINE][1]
        tweet = tables[f"floor {database}"]["tweet"][1]
        print(f"  (reference, no target) app {database} {PIPELINE} (GET /health): {app:.2f} ms, "
              f"{app / floor:.2f} x the floor's GET /latest, {app / tweet:.2f} x the floor's tweet")
    for database in ("sqlite", "postgresql") if args.baseline else ():
        app, baseline, floor = (tables[f"{who} {database}"] for who in ("app", "baseline", "floor"))
        compared = ", ".join(
            f"{kind} {app[kind][1] / baseline[kind][1]:.2f} x baseline "
            f"(baseline {baseline[kind][1] / floor[kind][1]:.2f} x floor)"
            for kind in ("tweet", "follow", "unfollow"))
        print(f"  (comparison) app {database} median: {compared}")
    command = " ".join(shlex.quote(part) for part in [".venv/bin/python", "-m", "bench.replay", *(argv or sys.argv[1:])])
    print()
    print(f"command: {command}")
    return 1 if missed else 0


def metrics_cost(args, argv, actions, workdir: Path, first_database: str, second_database: str) -> int:
    """The app with and without metrics, on SQLite and PostgreSQL, in turns; print the medians' ratios."""
    bench_server = [sys.executable, "-m", "bench.replay"]
    ports = [free_port() for _ in range(5)]
    off = {"TWOOTER_METRICS": "off"}

    def app_on(label: str, port: int, database_url: str, folder: str, extra: dict) -> Target:
        return Target(label, app_command(port), {"DATABASE_URL": database_url,
                                                 "TWOOTER_INSTANCE_PATH": str(workdir / folder), **extra},
                      port, True)

    targets = [
        Target("null app", [*bench_server, "--serve-null", str(ports[0])], {}, ports[0], False, "/latest"),
        app_on("sqlite metrics", ports[1], f"sqlite:///{workdir / 'on' / 'twooter.sqlite'}", "on", {}),
        app_on("sqlite no metrics", ports[2], f"sqlite:///{workdir / 'off' / 'twooter.sqlite'}", "off", off),
        app_on("postgresql metrics", ports[3], first_database, "pg-on", {}),
        app_on("postgresql no metrics", ports[4], second_database, "pg-off", off),
    ]
    results = replay_in_turns(targets, actions, workdir)
    tables = print_latency_table(results)
    labels = list(tables)
    print()
    print("| action | SQLite: median with / without metrics | PostgreSQL: median with / without metrics |")
    print("|---|---:|---:|")
    for kind in (*KINDS, "all"):
        ratios = [tables[f"{db} metrics"][kind][1] / tables[f"{db} no metrics"][kind][1]
                  for db in ("sqlite", "postgresql")]
        print(f"| {kind} | {ratios[0]:.3f} | {ratios[1]:.3f} |")
    errors = {label: sum(error_counts(results[label]).values()) for label in labels[1:]}
    print()
    print(f"simulator errors: {errors}")
    command = " ".join(shlex.quote(part) for part in [".venv/bin/python", "-m", "bench.replay", *(argv or sys.argv[1:])])
    print()
    print(f"command: {command}")
    return 1 if any(errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
