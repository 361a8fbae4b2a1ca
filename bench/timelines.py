"""Timeline throughput at 1,000 and at 1,000,000 twoots, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.timelines [--backends sqlite,postgresql] [--duration 10]

For each kind of database: migrate a throw-away database, seed 50,000 users,
a follow graph and 1,000 twoots; copy it and grow the copy to 1,000,000
twoots. Serve both with `twooter serve` on loopback ports, and load
`GET /public`, `GET /<user>` and a logged-in `GET /` with wrk (16
connections), alternating between the two datasets in short rounds so that
their ratio is measured under the same conditions.

PostgreSQL comes from TEST_POSTGRES_URL (a role that may create databases);
without it only SQLite is measured. Throw-away databases are dropped at the end.

The data is generated, reproducibly (fixed seed):
* follows: each user's out-degree is log-normal (median 30, long tail capped
  at 5,000); whom they follow is drawn by a Zipf law over popularity, so a
  few accounts have most followers;
* twoots: authors drawn by a Zipf law over activity, a ranking independent
  of popularity; times evenly spread and increasing with the id.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from pathlib import Path
from statistics import median
from typing import Iterator

import psycopg2
import requests
import sqlalchemy as sa

from bench import serving
from twooter import create_app, database
from twooter.extensions import db
from twooter.names import name_key
from twooter.passwords import hash_password

USERS = 50_000
SIZES = (1_000, 1_000_000)
CONNECTIONS = 16
PASSWORD = "bench-password"
SEED = 20261128
MEDIAN_FOLLOWS = 30
MAX_FOLLOWS = 5_000
WORDS = (
    "coffee rain tram deploy lunch garden bicycle sunset paper music code river "
    "bread market window coffee again tomorrow weekend ferry pixel harbour night"
).split()
PAGE_SIZE = 30  # the app's default TWOOTER_PAGE_SIZE
ROUNDS = 5  # alternating rounds per endpoint and dataset
TARGET_RATIO = 0.8
TARGET_P99_MS = 100.0


# --- the data ------------------------------------------------------------------

def zipf_cumulative(count: int, exponent: float) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(count)))


@dataclass
class Dataset:
    """Users (ids 1..USERS), who follows whom, and who writes each twoot."""

    follows: list[tuple[int, int]]
    out_degree: list[int]
    authors: list[int]

    @classmethod
    def generate(cls, messages: int) -> "Dataset":
        rng = random.Random(SEED)
        popularity = zipf_cumulative(USERS, 0.8)
        by_popularity = list(range(1, USERS + 1))
        rng.shuffle(by_popularity)
        follows: list[tuple[int, int]] = []
        out_degree = [0] * (USERS + 1)
        for user in range(1, USERS + 1):
            wanted = min(MAX_FOLLOWS, max(1, round(rng.lognormvariate(0, 1.0) * MEDIAN_FOLLOWS)))
            ranks = rng.choices(range(USERS), cum_weights=popularity, k=wanted)
            followed = {by_popularity[rank] for rank in ranks} - {user}
            out_degree[user] = len(followed)
            for other in sorted(followed):
                follows.append((user, other))
        activity = zipf_cumulative(USERS, 1.0)
        by_activity = list(range(1, USERS + 1))
        rng.shuffle(by_activity)
        ranks = rng.choices(range(USERS), cum_weights=activity, k=messages)
        authors = [by_activity[rank] for rank in ranks]
        return cls(follows, out_degree, authors)

    def reader_with_full_page(self, messages: int, page_size: int) -> int:
        """A reader whose home timeline fills a page already among the first `messages` twoots.

        Most readers follow a few dozen accounts, and at 1,000 twoots their
        page is nearly empty: comparing it with a full page at 1,000,000 would
        measure rendering, not the database. Among readers whose page is full
        at both sizes this takes the one with the median number of follows
        (several times the overall median, so the query has more to merge).
        """
        counts = [0] * (USERS + 1)
        for author in self.authors[:messages]:
            counts[author] += 1
        home = counts[:]
        for follower, followed in self.follows:
            home[follower] += counts[followed]
        full = sorted(
            (self.out_degree[user], user) for user in range(1, USERS + 1) if home[user] > page_size
        )
        return full[len(full) // 2][1]

    def most_active(self, messages: int) -> int:
        """The author of most of the first `messages` twoots: a full page at any size."""
        counts = [0] * (USERS + 1)
        for author in self.authors[:messages]:
            counts[author] += 1
        return max(range(1, USERS + 1), key=counts.__getitem__)


def username(user_id: int) -> str:
    return f"user{user_id}"


def twoot_rows(dataset: Dataset, first: int, last: int, start: datetime, step: timedelta):
    """(id, author, text, time) for twoots first..last-1, in time order."""
    for index in range(first, last):
        words = " ".join(WORDS[(index * 7 + k) % len(WORDS)] for k in range(8))
        yield index + 1, dataset.authors[index], f"twoot {index} {words}", start + step * index


# --- seeding -------------------------------------------------------------------

class Seeder:
    """Bulk loads one throw-away database that the app has migrated."""

    def add_users(self, dataset: Dataset, pw_hash: str) -> None: ...
    def add_twoots(self, rows) -> None: ...


class SqliteSeeder(Seeder):
    def __init__(self, path: Path):
        self.path = path

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            # A throw-away file: durability is not needed while loading it.
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("BEGIN")
            yield connection
            connection.execute("COMMIT")
        finally:
            connection.close()

    def add_users(self, dataset: Dataset, pw_hash: str) -> None:
        with self._connection() as connection:
            connection.executemany(
                "INSERT INTO users (id, username, username_key, email, pw_hash, is_admin) VALUES (?, ?, ?, ?, ?, 0)",
                ((u, username(u), name_key(username(u)), f"{username(u)}@example.com", pw_hash)
                 for u in range(1, USERS + 1)),
            )
            connection.executemany(
                "INSERT INTO follows (follower_id, followed_id) VALUES (?, ?)", dataset.follows
            )

    def add_twoots(self, rows) -> None:
        # The app's column type stores naive UTC text in this format.
        with self._connection() as connection:
            connection.executemany(
                "INSERT INTO messages (id, author_id, text, pub_date, flagged) VALUES (?, ?, ?, ?, 0)",
                ((i, a, t, when.strftime("%Y-%m-%d %H:%M:%S.%f")) for i, a, t, when in rows),
            )


class PostgresSeeder(Seeder):
    def __init__(self, url: sa.engine.URL):
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _copy(self, table: str, columns: str, lines, explicit_ids: bool = True) -> None:
        buffer = io.StringIO()
        buffer.writelines(lines)
        buffer.seek(0)
        with closing(psycopg2.connect(self.dsn)) as connection, connection, connection.cursor() as cursor:
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
            if explicit_ids:
                # Rows came with their ids: move the sequence past them for the app's inserts.
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            # What autovacuum would do soon after a load this size.
            cursor.execute(f"ANALYZE {table}")

    def add_users(self, dataset: Dataset, pw_hash: str) -> None:
        self._copy(
            "users",
            "id, username, username_key, email, pw_hash, is_admin",
            (f"{u}\t{username(u)}\t{name_key(username(u))}\t{username(u)}@example.com\t{pw_hash}\tf\n"
             for u in range(1, USERS + 1)),
        )
        self._copy(
            "follows",
            "follower_id, followed_id",
            (f"{a}\t{b}\n" for a, b in dataset.follows),
            explicit_ids=False,
        )

    def add_twoots(self, rows) -> None:
        self._copy(
            "messages",
            "id, author_id, text, pub_date, flagged",
            (f"{i}\t{a}\t{t}\t{when.isoformat()}\tf\n" for i, a, t, when in rows),
        )


def migrate(database_url: str, instance: Path) -> None:
    app = create_app({"INSTANCE_PATH": instance, "SQLALCHEMY_DATABASE_URI": database_url})
    database.upgrade_to_latest(app)
    with app.app_context():
        db.engine.dispose()


class SqliteDatabases:
    """Throw-away SQLite files in a scratch folder."""

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def _path(self, name: str) -> Path:
        return self.workdir / f"{name}.sqlite"

    def create(self, name: str) -> str:
        url = f"sqlite:///{self._path(name)}"
        migrate(url, self.workdir / "migrate")
        return url

    def clone(self, source: str, name: str) -> str:
        # Every connection to the source is closed, so its WAL is folded in.
        shutil.copyfile(self._path(source), self._path(name))
        return f"sqlite:///{self._path(name)}"

    def seeder(self, name: str) -> Seeder:
        return SqliteSeeder(self._path(name))

    def drop_all(self) -> None:
        """The scratch folder goes, and the files with it."""


class PostgresDatabases:
    """Throw-away databases on the server of TEST_POSTGRES_URL, dropped at the end."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.admin_url = sa.make_url(os.environ["TEST_POSTGRES_URL"]).set(drivername="postgresql+psycopg2")
        self.admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"twooter_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []

    def _url(self, name: str) -> sa.engine.URL:
        return self.admin_url.set(database=f"{self.prefix}_{name}")

    def _create(self, name: str, template: str | None = None) -> str:
        statement = f'CREATE DATABASE "{self.prefix}_{name}"'
        if template:
            # A file-level copy: much faster than loading the rows again.
            statement += f' TEMPLATE "{self.prefix}_{template}"'
        with self.admin.connect() as connection:
            connection.exec_driver_sql(statement)
        self.names.append(name)
        return self._url(name).render_as_string(hide_password=False)

    def create(self, name: str) -> str:
        url = self._create(name)
        migrate(url, self.workdir / "migrate")
        return url

    def clone(self, source: str, name: str) -> str:
        return self._create(name, template=source)

    def seeder(self, name: str) -> Seeder:
        return PostgresSeeder(self._url(name))

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.names:
                self._drop(connection, f"{self.prefix}_{name}")
        self.admin.dispose()

    @staticmethod
    def _drop(connection, database: str) -> None:
        # Autovacuum may still be visiting a database just loaded: a plain
        # DROP stops it (FORCE would need the right to signal it), and the
        # benchmark's own servers have stopped by now.
        for _ in range(10):
            try:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}"')
                return
            except sa.exc.DBAPIError as error:
                last_error = error
                time.sleep(1)
        print(f"could not drop database {database}: {last_error}", file=sys.stderr)


@contextmanager
def throwaway_databases(backend: str, workdir: Path) -> Iterator[SqliteDatabases | PostgresDatabases]:
    databases = SqliteDatabases(workdir) if backend == "sqlite" else PostgresDatabases(workdir)
    try:
        yield databases
    finally:
        databases.drop_all()


# --- serving and measuring ---------------------------------------------------------

@contextmanager
def served(database_url: str, workdir: Path, threads: int) -> Iterator[str]:
    """`twooter serve` in its own process, until the block ends; yields its base URL."""
    port = serving.free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    environment = {
        "DATABASE_URL": database_url,
        "TWOOTER_INSTANCE_PATH": str(workdir / "instance"),
        "SECRET_KEY": uuid.uuid4().hex,
    }
    command = [
        str(Path(sys.executable).parent / "twooter"), "serve",
        "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads),
    ]
    with serving.served(command, environment, port, workdir / "serve.log"):
        yield f"http://127.0.0.1:{port}"


def session_cookie(base: str, user: str) -> str:
    visitor = requests.Session()
    response = visitor.post(f"{base}/login", data={"username": user, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    if "You were logged in" not in response.text:
        raise RuntimeError(f"could not log in as {user}")
    # That page showed the flash; the cookie it leaves is the steady one.
    return f"session={visitor.cookies['session']}"


@dataclass
class Measurement:
    requests_per_second: float
    p99_ms: float
    failures: int


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, seconds: int, cookie: str | None = None, script: Path | None = None,
            connections: int = CONNECTIONS) -> Measurement:
    """wrk against `url` (optionally driven by a Lua `script`): throughput, p99 and failed requests."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    throughput = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
    failures = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        failures += sum(int(n) for n in socket_errors.groups())
    return Measurement(throughput, float(value) * UNIT_MS[unit], failures)


@dataclass
class Target:
    """One running server (one dataset) and a reader logged in to it."""

    base: str
    cookie: str



def measure(
    targets: dict[int, Target], endpoints: dict[str, tuple[str, bool]], seconds: int
) -> dict[int, dict[str, Measurement]]:
    """Each endpoint on every dataset, in alternating short rounds.

    Other work on the machine comes and goes; alternating the datasets
    round by round exposes both to the same conditions, so their ratio holds
    even when the absolute figures drift. Throughput is the mean over the
    rounds, p99 the median of the rounds' p99.
    """
    results: dict[int, dict[str, Measurement]] = {size: {} for size in targets}
    round_seconds = max(1, seconds // ROUNDS)
    for label, (path, logged_in) in endpoints.items():
        for target in targets.values():
            run_wrk(target.base + path, 2, target.cookie if logged_in else None)  # warm caches and the pool
        rounds: dict[int, list[Measurement]] = {size: [] for size in targets}
        for _ in range(ROUNDS):
            for size, target in targets.items():
                cookie = target.cookie if logged_in else None
                rounds[size].append(run_wrk(target.base + path, round_seconds, cookie))
        for size, runs in rounds.items():
            results[size][label] = Measurement(
                sum(run.requests_per_second for run in runs) / len(runs),
                median(run.p99_ms for run in runs),
                sum(run.failures for run in runs),
            )
    return results


def timed(label: str):
    @contextmanager
    def block():
        started = time.monotonic()
        yield
        print(f"  {label}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return block()


def bench_backend(backend: str, dataset: Dataset, pw_hash: str, seconds: int, threads: int) -> dict:
    print(f"{backend}:", file=sys.stderr, flush=True)
    small, large = SIZES
    start = datetime.now(timezone.utc) - timedelta(days=365)
    step = timedelta(days=365) / large
    reader, author = dataset.reader_with_full_page(small, PAGE_SIZE), dataset.most_active(small)
    with tempfile.TemporaryDirectory(prefix="twooter-bench-") as scratch:
        workdir = Path(scratch)
        with throwaway_databases(backend, workdir) as databases:
            urls = {small: databases.create("small")}
            seeder = databases.seeder("small")
            with timed(f"seed {USERS} users, {len(dataset.follows)} follows, {small} twoots"):
                seeder.add_users(dataset, pw_hash)
                seeder.add_twoots(twoot_rows(dataset, 0, small, start, step))
            with timed(f"copy, and add twoots {small + 1}..{large}"):
                urls[large] = databases.clone("small", "large")
                databases.seeder("large").add_twoots(twoot_rows(dataset, small, large, start, step))
            with ExitStack() as servers:
                targets = {}
                for size, url in urls.items():
                    base = servers.enter_context(served(url, workdir / str(size), threads))
                    targets[size] = Target(base, session_cookie(base, username(reader)))
                endpoints = {
                    "GET /public": ("/public", False),
                    "GET /<user>": (f"/{username(author)}", False),
                    "GET / (logged in)": ("/", True),
                }
                with timed("measure"):
                    return measure(targets, endpoints, seconds)


def short(count: int) -> str:
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def print_report(all_results: dict, dataset: Dataset, seconds: int, threads: int, command: str) -> bool:
    small, large = SIZES
    reader, author = dataset.reader_with_full_page(small, PAGE_SIZE), dataset.most_active(small)
    print(
        f"{USERS:,} users, {len(dataset.follows):,} follows; /<user> is {username(author)} "
        f"(the most active author), / is {username(reader)} "
        f"(follows {dataset.out_degree[reader]}); wrk {CONNECTIONS} connections, {seconds} s per cell "
        f"in {ROUNDS} alternating rounds; "
        f"`twooter serve --threads {threads}`\n"
    )
    print(f"| database | endpoint | req/s at {small:,} | p99 ms at {small:,} | req/s at {large:,} "
          f"| p99 ms at {large:,} | ratio {short(large)}/{short(small)} |")
    print("|---|---|---:|---:|---:|---:|---:|")
    met = True
    for backend, results in all_results.items():
        for label in results[small]:
            a, b = results[small][label], results[large][label]
            ratio = b.requests_per_second / a.requests_per_second
            met &= ratio >= TARGET_RATIO and max(a.p99_ms, b.p99_ms) < TARGET_P99_MS
            met &= a.failures == 0 and b.failures == 0
            failures = f" ({a.failures + b.failures} failed)" if a.failures or b.failures else ""
            print(f"| {backend} | `{label}` | {a.requests_per_second:.0f} | {a.p99_ms:.1f} "
                  f"| {b.requests_per_second:.0f} | {b.p99_ms:.1f} | {ratio:.2f}{failures} |")
    print(f"\ntargets: ratio >= {TARGET_RATIO}, p99 < {TARGET_P99_MS:.0f} ms: {'met' if met else 'MISSED'}")
    print(f"command: {command}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_backends = "sqlite,postgresql" if os.environ.get("TEST_POSTGRES_URL") else "sqlite"
    parser.add_argument("--backends", default=default_backends, help="comma-separated: sqlite,postgresql")
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint and dataset")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads of `twooter serve`")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    for name in backends:
        if name not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {name!r}")
    if "postgresql" in backends and not os.environ.get("TEST_POSTGRES_URL"):
        parser.error("postgresql needs TEST_POSTGRES_URL (a role that may create databases)")
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    arguments = argv if argv is not None else sys.argv[1:]
    command = shlex.join([".venv/bin/python", "-m", "bench.timelines", *arguments])

    with timed("generate users, follow graph and twoot authors"):
        dataset = Dataset.generate(SIZES[-1])
    pw_hash = hash_password(PASSWORD)  # one argon2id hash, shared by every seeded user
    results = {
        backend: bench_backend(backend, dataset, pw_hash, args.duration, args.threads)
        for backend in backends
    }
    return 0 if print_report(results, dataset, args.duration, args.threads, command) else 1


if __name__ == "__main__":
    sys.exit(main())
