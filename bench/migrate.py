"""migrate_tools against pgloader on an original-MiniTwit SQLite database, plus
memory scaling and an MSSQL-era dump of the same size.

    .venv/bin/python -m bench.migrate [--scale 1.0] [--skip-pgloader] [--rounds 3]

Generates the sources (50,000 users, 1,000,000 messages, 500,000 follower
rows at scale 1), migrates each into a fresh empty PostgreSQL database, and
prints wall time and peak resident memory of the migrating process (GNU
time's %M; Debian package `time`). The full SQLite file also goes once
through the staged path, as a merge of several sources would. The admin URL comes
from TEST_POSTGRES_URL (as `bash tests/run` exports it) or BENCH_POSTGRES_URL.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from migrate_tools.samples.writers import werkzeug_pbkdf2, write_minitwit_sqlite, write_tsql_dump

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN = "postgresql://twooter:twooter@127.0.0.1:5432/postgres"
WORDS = ("twoot follow timeline minitwit hello world python flask postgres sqlite message "
         "user public private coffee morning evening deploy release bug fix ünïcødé 🐦 it's \"quoted\"").split()


@dataclass
class Sizes:
    users: int
    messages: int
    follows: int

    @property
    def rows(self) -> int:
        return self.users + self.messages + self.follows


def community(sizes: Sizes, seed: int = 7):
    """Deterministic users, follower rows (duplicates included, as MiniTwit allows) and messages."""
    rng = random.Random(seed)
    pw_hash = werkzeug_pbkdf2("password", "benchsalt", iterations=1000)
    users = [(i, f"user{i}", f"user{i}@example.com", pw_hash) for i in range(1, sizes.users + 1)]
    follows = [(rng.randint(1, sizes.users), rng.randint(1, sizes.users)) for _ in range(sizes.follows)]
    start = datetime(2012, 1, 1, tzinfo=timezone.utc).timestamp()

    def messages():
        picker = random.Random(seed + 1)
        for i in range(1, sizes.messages + 1):
            text = " ".join(picker.choices(WORDS, k=picker.randint(4, 16)))
            yield (i, picker.randint(1, sizes.users), text,
                   datetime.fromtimestamp(start + i * 37, timezone.utc), int(picker.random() < 0.01))

    return users, follows, messages


@contextmanager
def empty_database(admin_url: str):
    admin = sa.create_engine(sa.make_url(admin_url).set(drivername="postgresql+psycopg2"),
                             isolation_level="AUTOCOMMIT")
    name = f"bench_migrate_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def measured(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one command, as GNU time reports them; it must succeed."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as figures:
        started = time.perf_counter()
        finished = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", figures.name, *command], cwd=PROJECT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        elapsed = time.perf_counter() - started
        if finished.returncode != 0:
            sys.stdout.write(finished.stdout.decode(errors="replace")[-3000:])
            raise SystemExit(f"failed ({finished.returncode}): {' '.join(command)}")
        peak_kib = int(figures.read().split()[-1])
    return elapsed, peak_kib / 1024


def migrate_tools(source: Path, admin_url: str) -> tuple[float, float]:
    with empty_database(admin_url) as target:
        return measured([sys.executable, "-m", "migrate_tools", str(source), "--to", target, "--quiet"])


# The same file through the staged path, which several sources or a
# non-empty target take (the command line has no switch for it).
STAGED = """
import sys
from migrate_tools.pipeline import migrate
sys.exit(0 if migrate([sys.argv[1]], sys.argv[2], allow_direct=False).ok else 1)
"""


def migrate_tools_staged(source: Path, admin_url: str) -> tuple[float, float]:
    with empty_database(admin_url) as target:
        return measured([sys.executable, "-c", STAGED, str(source), target])


def pgloader(source: Path, admin_url: str, workdir: Path) -> tuple[float, float]:
    with empty_database(admin_url) as target:
        command_file = workdir / "minitwit.load"
        command_file.write_text(
            f"LOAD DATABASE\n  FROM sqlite://{source}\n  INTO {target}\n"
            "  WITH include drop, create tables, create indexes, reset sequences\n"
            "  CAST type string to text;\n"
        )
        return measured(["pgloader", "--quiet", str(command_file)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 50k users, 1M messages, 500k follows")
    parser.add_argument("--skip-pgloader", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of the full SQLite file per tool")
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL") or DEFAULT_ADMIN
    full = Sizes(int(50_000 * args.scale), int(1_000_000 * args.scale), int(500_000 * args.scale))
    small = Sizes(full.users // 10, full.messages // 10, full.follows // 10)
    workdir = Path(tempfile.mkdtemp(prefix="bench_migrate_"))
    try:
        print(f"generating sources in {workdir} …", flush=True)
        sources = {}
        for label, sizes in (("small", small), ("full", full)):
            users, follows, messages = community(sizes)
            path = workdir / f"minitwit-{label}.db"
            write_minitwit_sqlite(path, users, follows, messages())
            sources[label] = path
        users, follows, messages = community(full)
        dump = workdir / "mssql-full.sql"
        write_tsql_dump(dump, users, follows, messages(), encoding="utf-16")

        # Generating wrote hundreds of MiB; let the kernel write them back now,
        # not during the first timed run.
        os.sync()
        have_pgloader = shutil.which("pgloader") is not None and not args.skip_pgloader
        full_label = f"MiniTwit SQLite, {full.rows:,} rows"
        # The tools take turns, and which goes first alternates by round, so
        # that both meet the same drifts of the shared machine's load and the
        # server's checkpoints left by the run before.
        rounds: list[dict[str, tuple[float, float]]] = []
        for number in range(args.rounds):
            timed = {}
            order = ["migrate_tools", "pgloader"] if have_pgloader else ["migrate_tools"]
            for tool in order if number % 2 == 0 else reversed(order):
                if tool == "pgloader":
                    timed[tool] = pgloader(sources["full"], admin_url, workdir)
                else:
                    timed[tool] = migrate_tools(sources["full"], admin_url)
            rounds.append(timed)
            ratio = f", ratio {timed['migrate_tools'][0] / timed['pgloader'][0]:.2f}" if have_pgloader else ""
            print(f"round {number + 1}: " + ", ".join(f"{tool} {seconds:.1f} s" for tool, (seconds, _) in timed.items())
                  + ratio, flush=True)
        results = []
        for tool in ("pgloader", "migrate_tools") if have_pgloader else ("migrate_tools",):
            seconds = statistics.median(timed[tool][0] for timed in rounds)
            results.append((tool, full_label, seconds, max(timed[tool][1] for timed in rounds)))
        results.append(("migrate_tools", f"MiniTwit SQLite, {small.rows:,} rows", *migrate_tools(sources["small"], admin_url)))
        results.append(("migrate_tools, staged path", full_label, *migrate_tools_staged(sources["full"], admin_url)))
        size_mb = dump.stat().st_size / 2**20
        results.append(("migrate_tools", f"MSSQL dump UTF-16 ({size_mb:,.0f} MiB), {full.rows:,} rows",
                        *migrate_tools(dump, admin_url)))

        print()
        print(f"| tool | source | wall time (s; median of {args.rounds} rounds for the full SQLite file) | peak RSS (MiB) |")
        print("|---|---|---:|---:|")
        for tool, source, seconds, rss in results:
            print(f"| {tool} | {source} | {seconds:.1f} | {rss:.0f} |")
        by = {(tool, source): (seconds, rss) for tool, source, seconds, rss in results}
        ours_full = by[("migrate_tools", full_label)]
        ours_small = by[("migrate_tools", f"MiniTwit SQLite, {small.rows:,} rows")]
        print()
        if have_pgloader:
            ratios = sorted(timed["migrate_tools"][0] / timed["pgloader"][0] for timed in rounds)
            ratio = statistics.median(ratios)
            print(f"time: migrate_tools / pgloader = {ratio:.2f} (median of rounds {', '.join(f'{r:.2f}' for r in ratios)}; "
                  f"target <= 1.00: {'met' if ratio <= 1 else 'NOT met'})")
        else:
            print("pgloader: not installed (apt-get install pgloader), comparison skipped")
        memory = ours_full[1] / ours_small[1]
        print(f"memory: peak RSS at {full.rows:,} rows / at {small.rows:,} rows = {memory:.2f} "
              f"(target <= 1.50: {'met' if memory <= 1.5 else 'NOT met'})")
        # Other work on the machine slows both tools, but not equally (pgloader runs several
        # threads and connections, migrate_tools one transaction): say how busy it was.
        print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{n:.1f}" for n in os.getloadavg()))
        print(f"command: .venv/bin/python -m bench.migrate {' '.join(sys.argv[1:])}".rstrip())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
