"""What login throttling costs a login, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.login [--postgres URL] [--rounds N] [--per-round N]

In-process, on a real database file or server: the same wrong password is
checked by `accounts.authenticate` alone (no throttle), through
`throttle.login` with limits too high to lock (every attempt counted: two
claims, the stale-row sweep, commits), and through `throttle.login` on a
locked name (refused before the password is checked). The three take turns
in rounds, so their ratio is taken under the same load. Prints the median
and p90 per attempt and each median's ratio to the unthrottled check.
PostgreSQL is measured when --postgres or TEST_POSTGRES_URL is given.
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import sqlalchemy as sa

from bench.serving import throwaway_postgres_database
from twooter import accounts, create_app, database, throttle
from twooter.extensions import db

NEVER = 10**9
KINDS = ("authenticate alone", "throttled, counted", "throttled, refused")


def _app(url: str, instance: Path, **settings):
    app = create_app({"INSTANCE_PATH": instance, "SQLALCHEMY_DATABASE_URI": url, **settings})
    database.upgrade_to_latest(app)
    return app


def _attempt(app, kind: str) -> None:
    with app.app_context():
        try:
            if kind == "authenticate alone":
                accounts.authenticate("bencher", "wrong")
            elif kind == "throttled, counted":
                throttle.login("bencher", "wrong", "192.0.2.1")
            else:
                throttle.login("locked", "wrong", "192.0.2.2")
        except (accounts.LoginError, throttle.LoginRefused):
            pass
        finally:
            db.session.remove()


def measure(url: str, folder: Path, rounds: int, per_round: int) -> dict[str, list[float]]:
    counting = _app(url, folder / "counting", LOGIN_FAILURES_PER_ACCOUNT=NEVER, LOGIN_FAILURES_PER_ADDRESS=NEVER)
    locking = _app(url, folder / "locking", LOGIN_FIRST_LOCK_SECONDS=86_400, LOGIN_LONGEST_LOCK_SECONDS=86_400)
    with counting.app_context():
        for table in ("login_throttle", "follows", "messages", "users"):
            db.session.execute(sa.text(f"DELETE FROM {table}"))
        db.session.commit()
        accounts.register("bencher", "b@example.com", "right")
        accounts.register("locked", "l@example.com", "right")
    for _ in range(5):  # the default five failures lock "locked"
        _attempt(locking, "throttled, refused")
    apps = {"authenticate alone": counting, "throttled, counted": counting, "throttled, refused": locking}
    for kind in KINDS:  # warm-up, not measured
        _attempt(apps[kind], kind)
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(rounds):
        for kind in KINDS:
            for _ in range(per_round):
                started = time.perf_counter()
                _attempt(apps[kind], kind)
                times[kind].append((time.perf_counter() - started) * 1000)
    for app in (counting, locking):
        with app.app_context():
            db.engine.dispose()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=40)
    args = parser.parse_args(argv)
    command = " ".join(shlex.quote(part) for part in [".venv/bin/python", "-m", "bench.login", *(argv or sys.argv[1:])])
    print("load average at start: {:.2f} {:.2f} {:.2f}; {} cores".format(*os.getloadavg(), os.cpu_count()))
    results = {}
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        results["sqlite"] = measure(f"sqlite:///{folder}/bench.sqlite", Path(folder) / "sqlite",
                                    args.rounds, args.per_round)
        if args.postgres:
            url = stack.enter_context(throwaway_postgres_database(args.postgres, prefix="twooter_bench_login"))
            results["postgresql"] = measure(url, Path(folder) / "postgresql", args.rounds, args.per_round)
    print()
    print("| database | login attempt | attempts | median ms | p90 ms | median / authenticate alone |")
    print("|---|---|---:|---:|---:|---:|")
    for name, times in results.items():
        base = statistics.median(times["authenticate alone"])
        for kind in KINDS:
            values = times[kind]
            p90 = statistics.quantiles(values, n=10)[-1]
            median = statistics.median(values)
            print(f"| {name} | {kind} | {len(values)} | {median:.2f} | {p90:.2f} | {median / base:.2f} |")
    print()
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
