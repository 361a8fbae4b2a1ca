"""A local cluster for tests: `twooter cluster up` in a folder and port range of its own, always torn down."""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil
import psycopg2
import requests

from tests.scenario import SIMULATOR_AUTHORIZATION
from tests.servers import TWOOTER_COMMAND, unavailable
from tests.twooter_client import TwooterClient

ENGINES = ("etcd", "patroni", "haproxy", "prometheus", "prometheus-postgres-exporter", "rsyslogd")
PORT_SPAN = 100


# Below the kernel's ephemeral range (32768 and up), where client sockets and
# other tests' `bind(port 0)` land, and apart from 20000-29999 (manual runs).
PORT_RANGE = (10000, 20000)


def free_port_block() -> int:
    """A base port whose 100 ports are all free on 127.0.0.1 (the cluster's layout needs that many)."""
    for _ in range(200):
        base = random.randrange(PORT_RANGE[0], PORT_RANGE[1] - PORT_SPAN, PORT_SPAN)
        probes = []
        try:
            for port in range(base, base + PORT_SPAN):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError("no block of 100 free ports on 127.0.0.1")


class LocalCluster:
    """The `twooter cluster` command on a folder of its own, as an operator runs it."""

    up_options: tuple[str, ...] = ()  # more options for `cluster up` (a subclass's)

    def __init__(self, instances: int = 2, postgres_nodes: int = 3):
        missing = [engine for engine in ENGINES if shutil.which(engine) is None]
        if missing:
            unavailable(f"{', '.join(missing)} not installed; `bash tests/run` installs them")
        self.folder = _new_folder()
        self.base_port = free_port_block()
        self.instances, self.postgres_nodes = instances, postgres_nodes
        self.started_pids: dict[int, float] = {}

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(TWOOTER_COMMAND), "cluster", args[0], "--dir", str(self.folder), *args[1:]],
                              capture_output=True, text=True, timeout=timeout)
        if args[0] not in ("down", "status") and (self.folder / "cluster.json").exists():
            self.remember_pids()
        if check and done.returncode != 0:
            raise AssertionError(f"twooter cluster {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def __enter__(self) -> "LocalCluster":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.down()

    def up(self, attempts: int = 3) -> None:
        """`cluster up`; on another block of ports when one was taken by someone else meanwhile."""
        for attempt in range(attempts):
            done = self.run("up", *self.up_options, "--instances", str(self.instances), "--postgres-nodes",
                            str(self.postgres_nodes), "--base-port", str(self.base_port), timeout=400, check=False)
            if done.returncode == 0:
                return
            if "in use" not in done.stdout + done.stderr or attempt == attempts - 1:
                raise AssertionError(f"twooter cluster up exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
            # What the failed start wrote (etcd's members, Patroni's data) names the old ports.
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = _new_folder()
            self.base_port = free_port_block()

    def remember_pids(self) -> None:
        """Every process the cluster runs now, so teardown can make sure none outlives it."""
        state = json.loads((self.folder / "cluster.json").read_text())
        for record in state["components"].values():
            self.started_pids[record["pid"]] = record["started"]
            for child in _descendants(record["pid"]):
                self.started_pids[child.pid] = child.create_time()
        # Patroni's postmasters run in sessions of their own, outside its tree.
        for pidfile in self.folder.glob("pg*/data/postmaster.pid"):
            try:
                server = psutil.Process(int(pidfile.read_text().split()[0]))
                self.started_pids[server.pid] = server.create_time()
                for child in server.children(recursive=True):
                    self.started_pids[child.pid] = child.create_time()
            except (OSError, ValueError, IndexError, psutil.Error):
                pass

    def down(self) -> None:
        try:
            if (self.folder / "cluster.json").exists():
                self.run("down", timeout=300, check=False)
        finally:
            # Whatever `down` missed (a test that broke it) goes by id; nothing else is touched.
            for pid, started in self.started_pids.items():
                try:
                    process = psutil.Process(pid)
                    if abs(process.create_time() - started) < 0.01:
                        process.kill()
                except psutil.NoSuchProcess:
                    pass
            shutil.rmtree(self.folder, ignore_errors=True)

    @contextmanager
    def mended(self, *names: str) -> Iterator[None]:
        """Whatever the test does or asserts, leave the cluster whole: start `names` again if they
        are not running, and wait until every component is healthy, so later tests find it whole."""
        try:
            yield
        finally:
            for name in names:
                if not self.component(name)["running"]:
                    self.run("start", name, check=False)
            self.wait_until(self.healthy, what=f"the cluster to be whole again after {', '.join(names)}")

    # Looking -----------------------------------------------------------------------
    def status(self) -> dict:
        return json.loads(self.run("status", "--json").stdout)

    def component(self, name: str) -> dict:
        return next(c for c in self.status()["components"] if c["name"] == name)

    def leader(self) -> str | None:
        leaders = [c["name"] for c in self.status()["components"] if c["kind"] == "postgres" and c["role"] == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_until(self, condition, seconds: float = 120, what: str = "the cluster to settle") -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"waited {seconds} s for {what}; status: {json.dumps(self.status(), indent=1)}")

    def healthy(self) -> bool:
        """Every component runs, one leader, every other data node a streaming replica, every app in rotation."""
        found = self.status()["components"]
        postgres = [c for c in found if c["kind"] == "postgres"]
        apps = [c for c in found if c["kind"] == "app"]
        return (all(c["running"] for c in found)
                and Counter(c["role"] for c in postgres) == Counter({"leader": 1, "replica": len(postgres) - 1})
                and all(c["state"] in ("running", "streaming") for c in postgres)
                and all(c["edge_state"] == "UP" for c in apps))

    def prometheus_targets(self) -> dict[str, str]:
        """Every target the cluster's Prometheus scrapes: {scrape URL: "up" | "down" | "unknown"}."""
        answer = requests.get(self.status()["prometheus"] + "/api/v1/targets", timeout=30).json()
        return {target["scrapeUrl"]: target["health"] for target in answer["data"]["activeTargets"]}

    def admin(self, name: str, scratch: Path) -> TwooterClient:
        """A person signed in at the edge with the admin flag, granted as an operator does (`twooter make-admin`).

        `scratch` is a folder for the command's own instance folder and log.
        """
        client = TwooterClient(self.edge_url)
        client.register_and_login(name, "operator-pass")
        environment = {**os.environ, "DATABASE_URL": self.status()["database_url"],
                       "TWOOTER_INSTANCE_PATH": str(scratch / "instance"), "TWOOTER_LOG_DIR": str(scratch / "logs")}
        done = subprocess.run([str(TWOOTER_COMMAND), "make-admin", name], env=environment, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return client

    @property
    def edge(self) -> tuple[str, int]:
        return "127.0.0.1", self.base_port

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.base_port}"

    def front_url(self, database: str = "twooter", front: str = "primary", user: str = "twooter") -> str:
        """A libpq URL through HAProxy's primary (writes) or read front."""
        passwords = json.loads((self.folder / "secrets.json").read_text())
        password = passwords["app_database" if user == "twooter" else "superuser"]
        port = self.base_port + (1 if front == "primary" else 2)
        return f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database owned by the app's role, made through the primary's front; its URL."""
        connection = psycopg2.connect(self.front_url("postgres", user="postgres"), connect_timeout=10)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}" OWNER twooter')
        finally:
            connection.close()
        return self.front_url(name)

    def query(self, sql: str, parameters: tuple = (), database: str = "twooter", front: str = "primary") -> list[tuple]:
        """Read a database of the cluster through one of HAProxy's fronts."""
        connection = psycopg2.connect(self.front_url(database, front), connect_timeout=10)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters)
                return cursor.fetchall()
        finally:
            connection.close()

    def stored_tweets(self) -> Counter:
        """How many times each (author, text) is in the messages table."""
        rows = self.query("SELECT u.username, m.text FROM messages m JOIN users u ON u.id = m.author_id")
        return Counter(rows)

    def answers(self, path: str) -> int:
        """The status of GET `path` at the edge, as the simulator asks it."""
        return requests.get(self.edge_url + path, headers={"Authorization": SIMULATOR_AUTHORIZATION},
                            timeout=10).status_code


def _new_folder() -> Path:
    # Under /tmp, not pytest's folder (mode 700): the postgres account must reach its data.
    folder = Path(tempfile.mkdtemp(prefix="twooter-cluster-", dir="/tmp"))
    folder.chmod(0o755)
    return folder


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
