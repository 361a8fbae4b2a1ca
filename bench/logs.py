"""The /logs viewer on hours of 10,000, 100,000 and 1,000,000 records.

    .venv/bin/python -m bench.logs [--runs 15] [--keep DIR]

Writes day files for three instances (about 90% INFO, with DEBUG, WARN,
ERROR and a few FATAL with tracebacks; each hour between two quieter
neighbour hours in the same file), then measures the server time of the
first page of `/logs/<hour>` as an admin, with every level shown and with
INFO hidden, through the app in this process (no network in the figure).
Then pages through the whole largest hour with INFO hidden and with every
level, sampling the process's resident memory.
"""
from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from twooter import create_app
from twooter.accounts import grant_admin
from twooter.data import engine as database
from twooter.logwriter.files import file_name
from twooter.logwriter.records import Record

SIZES = (10_000, 100_000, 1_000_000)
INSTANCES = ("web1", "web2", "web3")
LEVEL_MIX = [("INFO", 900), ("DEBUG", 50), ("WARN", 38), ("ERROR", 11), ("FATAL", 1)]
LOGGERS = ["twooter.requests", "twooter.simapi", "twooter", "waitress", "twooter.security"]
PATHS = ["/public", "/msgs/alice", "/fllws/bob", "/add_message", "/login", "/carol", "/latest"]
TRACEBACK = ('Traceback (most recent call last):\n  File "/srv/twooter/models.py", line 120, in add_message\n'
             "    db.session.commit()\npsycopg2.OperationalError: server closed the connection | \"unexpectedly\"")


def hour_of_size(size: int) -> datetime:
    # One day per size, so each hour has day files of its own.
    return datetime(2026, 1, 1 + SIZES.index(size), 14, tzinfo=timezone.utc)


def generate(folder: Path, size: int, rng: random.Random) -> None:
    """The hour with `size` records, between neighbours with a tenth as many each."""
    hour = hour_of_size(size)
    levels = [name for name, weight in LEVEL_MIX for _ in range(weight)]
    handles = {name: open(folder / file_name(hour.date(), name), "wb") for name in INSTANCES}
    spans = [(hour - timedelta(hours=1), size // 10), (hour, size), (hour + timedelta(hours=1), size // 10)]
    try:
        for start, count in spans:
            step = 3600.0 / count
            for n in range(count):
                level = rng.choice(levels)
                instance = INSTANCES[n % len(INSTANCES)]
                path = rng.choice(PATHS)
                status = 200 if level in ("INFO", "DEBUG") else rng.choice((400, 404, 500))
                record = Record(
                    time=start + timedelta(seconds=n * step),
                    level=level,
                    logger=rng.choice(LOGGERS),
                    message=f"GET {path} {status} in {rng.random() * 40:.1f} ms | user {rng.randrange(50_000)}",
                    instance=instance,
                    exception=TRACEBACK if level in ("ERROR", "FATAL") and n % 3 == 0 else "",
                    request={"rid": f"{rng.getrandbits(64):016x}", "method": "GET", "path": path,
                             "status": status, "ms": round(rng.random() * 40, 1), "client": "10.0.0.7"},
                )
                handles[instance].write(record.to_line())
    finally:
        for handle in handles.values():
            handle.close()


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def timed_get(client, url: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def page_through(client, url: str) -> tuple[int, int, list[float]]:
    """Follow the 'older records' cursor to the end; (pages, rows, RSS samples in MiB)."""
    import re

    pages = rows = 0
    samples = [rss_mib()]
    while url:
        html = client.get(url, headers={"HX-Request": "true"} if pages else {}).get_data(as_text=True)
        rows += html.count('<details class="log-row')
        more = re.search(r'id="log-more" hx-get="([^"]+)"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
        pages += 1
        if pages % 1000 == 0:
            samples.append(rss_mib())
    samples.append(rss_mib())
    return pages, rows, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="requests per figure (median)")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    arguments = parser.parse_args()
    root = arguments.keep or Path(tempfile.mkdtemp(prefix="twooter-bench-logs-"))
    try:
        instance = root / "instance"
        logs = root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        rng = random.Random(2026)
        print("generating…", file=sys.stderr)
        for size in SIZES:
            if not any(logs.glob(f"{hour_of_size(size).date()}.*")):
                generate(logs, size, rng)
        app = create_app({"INSTANCE_PATH": instance, "LOG_DIR": logs, "LOG_INSTANCE_NAME": "bench",
                          # The generated days lie in the past: keep them as they are.
                          "LOG_COMPRESS_AFTER_DAYS": 0, "LOG_DELETE_AFTER_DAYS": 0,
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'bench.sqlite'}"})
        database.upgrade_to_latest(app)
        client = app.test_client()
        client.post("/register", data={"username": "operator", "email": "a@b.c", "password": "pw", "password2": "pw"})
        with app.app_context():
            grant_admin("operator")
        client.post("/login", data={"username": "operator", "password": "pw"})

        print(f"\n{'records in hour':>16} {'file MiB':>9} {'all levels ms':>14} {'INFO hidden ms':>15} {'chart ms':>9}")
        figures = {}
        for size in SIZES:
            hour = hour_of_size(size)
            url = f"/logs/{hour:%H@%d-%m-%Y}"
            megabytes = sum(p.stat().st_size for p in logs.glob(f"{hour.date()}.*")) / 2**20
            all_levels = timed_get(client, url, arguments.runs)
            info_hidden = timed_get(client, url + "?info=false", arguments.runs)
            started = time.perf_counter()
            client.get(url + "/chart")
            chart = (time.perf_counter() - started) * 1000
            figures[size] = (all_levels, info_hidden)
            print(f"{size:>16,} {megabytes:>9.0f} {all_levels:>14.1f} {info_hidden:>15.1f} {chart:>9.0f}")

        ratio = figures[SIZES[-1]][0] / figures[SIZES[0]][0]
        hidden_100k = figures[100_000][1]
        print(f"\nfirst page, 1,000,000 vs 10,000 records, all levels: {ratio:.2f}x (target <= 1.5x) "
              f"{'PASS' if ratio <= 1.5 else 'FAIL'}")
        print(f"first page, 100,000 records, INFO hidden: {hidden_100k:.1f} ms (target < 250 ms) "
              f"{'PASS' if hidden_100k < 250 else 'FAIL'}")

        largest = f"/logs/{hour_of_size(SIZES[-1]):%H@%d-%m-%Y}"
        for label, url in (("INFO hidden", largest + "?info=false"), ("all levels", largest)):
            started = time.perf_counter()
            pages, rows, samples = page_through(client, url)
            seconds = time.perf_counter() - started
            print(f"paging the 1,000,000-record hour, {label}: {pages:,} pages, {rows:,} rows in {seconds:.0f} s "
                  f"({seconds / pages * 1000:.1f} ms a page); RSS MiB "
                  f"start {samples[0]:.0f}, max {max(samples):.0f}, end {samples[-1]:.0f}")
        print("\ncommand: .venv/bin/python -m bench.logs" + (f" --runs {arguments.runs}" if arguments.runs != 15 else ""))
        return 0
    finally:
        if not arguments.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
