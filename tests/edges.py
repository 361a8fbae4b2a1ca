"""A redundant edge on one machine for tests and the benchmark: namespaces, app instances, load, outcomes.

`EdgeSite` builds the network (twooter.cluster.netns), serves the app from
`twooter serve` processes on the root namespace's address on the bridge,
and starts two edges (twooter.cluster.vip) in front of them. `Load` runs
tests/edge_load.py inside the client namespace; `Outcome` reads what it
recorded and what the database holds.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from tests.servers import ServerProcess
from twooter.cluster import netns, vip
from twooter.config import PROJECT_ROOT, normalise_database_url


class EdgeSite:
    """Two edges sharing a virtual address, in front of `instances` app servers on one database."""

    def __init__(self, app: Flask, folder: Path, instances: int = 2):
        self.app = app
        self.folder = folder
        self.instances = instances
        self._cleanup = ExitStack()
        self.network: netns.EdgeNetwork | None = None
        self.pair: vip.EdgePair | None = None

    def __enter__(self) -> "EdgeSite":
        try:
            self.network = netns.create()
            self._cleanup.callback(netns.remove, self.network)
            servers = [self._cleanup.enter_context(ServerProcess(self.app, host=self.network.host_address))
                       for _ in range(self.instances)]
            self.pair = vip.EdgePair(self.network, self.folder / "edges")
            self._cleanup.callback(self.pair.down)
            self.pair.up([{"name": f"app{index}", "address": f"{server.host}:{server.port}"}
                          for index, server in enumerate(servers, 1)])
        except BaseException:
            self._cleanup.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._cleanup.close()

    @property
    def database_url(self) -> str:
        return self.app.config["SQLALCHEMY_DATABASE_URI"]

    def restore(self) -> None:
        """Every edge running again, exactly one holding the address and the others backups."""
        for name in self.pair.names:
            self.pair.start(name)
        netns.wait_for(lambda: self.pair.active() is not None, vip.START_SECONDS, "one edge to hold the address")
        for name in self.pair.names:
            if name != self.pair.active():
                self.pair.wait_until_backup(name)

    def load(self, **options) -> "Load":
        return Load(self.network.client, self.pair.url, self.folder / "load", self.database_url, **options)


@dataclass(frozen=True)
class Request:
    """One request of the traffic, as tests/edge_load.py recorded it (times: CLOCK_MONOTONIC seconds)."""

    client: int
    method: str
    kind: str
    username: str | None
    text: str | None
    status: int | None
    error: str | None
    started: float
    ended: float

    @property
    def ok(self) -> bool:
        """Answered, and not with a server error: the same line tests/traffic.py draws."""
        return self.status is not None and self.status < 500


class Load:
    """tests/edge_load.py in `client_namespace` against `url`, until the block ends; its files in `folder`.

    `database_url` is where the tweets it posts are counted afterwards.
    """

    def __init__(self, client_namespace: str, url: str, folder: Path, database_url: str, clients: int = 4,
                 seconds: float = 240):
        self.client_namespace = client_namespace
        self.url = url
        self.database_url = database_url
        seed = random.randrange(1, 2**31)  # users and texts of this run only, in a database others share
        folder.mkdir(parents=True, exist_ok=True)
        self.out = folder / f"traffic-{seed}.jsonl"
        self.stop_file = folder / f"traffic-{seed}.stop"
        self._argv = [sys.executable, "-m", "tests.edge_load", url, str(self.out), "--seed", str(seed),
                      "--clients", str(clients), "--seconds", str(seconds), "--stop-file", str(self.stop_file)]
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "Load":
        self._process = subprocess.Popen(netns.in_namespace(self.client_namespace, self._argv),
                                         cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_file.touch()
        try:
            self._process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise AssertionError("the traffic did not stop within 90 s of being told to")

    def requests(self) -> list[Request]:
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8").splitlines()
        return [Request(**json.loads(line)) for line in lines if line.endswith("}")]

    def wait_for_tweets(self, count: int, started_after: float = 0.0, seconds: float = 120) -> None:
        """Return once `count` tweets sent after `started_after` (monotonic) have been acknowledged."""
        def enough() -> bool:
            if self._process.poll() is not None:
                raise AssertionError(f"the traffic ended early with exit code {self._process.returncode}")
            return sum(1 for r in self.requests()
                       if r.kind == "tweet" and r.ok and r.status < 300 and r.started >= started_after) >= count
        netns.wait_for(enough, seconds, f"{count} acknowledged tweets through {self.url}", interval=0.1)


@dataclass
class Outcome:
    """What a fault did to the traffic, and whether the database holds every acknowledged tweet once."""

    requests: list[Request]
    fault_at: float
    stored: Counter  # (username, text) -> rows in the database, for this traffic's users

    @property
    def traffic(self) -> list[Request]:
        """The simulator-style requests, without the probes."""
        return [r for r in self.requests if r.kind != "probe"]

    @property
    def failed(self) -> list[Request]:
        """The traffic's requests that got no answer or a server error."""
        return [r for r in self.traffic if not r.ok]

    @property
    def seconds_without_service(self) -> float | None:
        """How long the probes went unanswered after the fault: 0.0 when none failed, None when none succeeded again.

        From the last answered probe before the first failed one (or the
        fault, if later) to the end of the first answered probe sent after
        the first failed one. Measured on the probes alone, so a fault caused
        a moment after `fault_at` (by a command that takes time to start)
        is timed from when it bit.
        """
        probes = [r for r in self.requests if r.kind == "probe" and r.ended >= self.fault_at]
        failures = [r for r in probes if r.status != 200]
        if not failures:
            return 0.0
        first = min(failures, key=lambda r: r.ended)
        answered = [r for r in self.requests if r.kind == "probe" and r.status == 200]
        before = [r.ended for r in answered if r.ended <= first.ended]
        after = [r.ended for r in answered if r.started >= first.started]
        if not after:
            return None
        return min(after) - max([self.fault_at, *before])

    @property
    def acknowledged(self) -> set[tuple[str, str]]:
        return {(r.username, r.text) for r in self.requests if r.kind == "tweet" and r.ok and r.status < 300}

    @property
    def lost(self) -> set[tuple[str, str]]:
        return {tweet for tweet in self.acknowledged if self.stored[tweet] == 0}

    @property
    def duplicated(self) -> set[tuple[str, str]]:
        return {tweet for tweet, rows in self.stored.items() if rows > 1}

    def summary(self) -> str:
        kinds = Counter(r.error or f"status {r.status}" for r in self.failed)
        seconds = self.seconds_without_service
        return (f"{len(self.traffic)} requests, {len(self.failed)} failed {dict(kinds)}, "
                + (f"{seconds:.2f} s without service" if seconds is not None else "service never came back"))


def stored_tweets(database_url: str, usernames: set[str]) -> Counter:
    """How many rows each (username, text) of these users has in the messages table."""
    if not usernames:
        return Counter()
    engine = sa.create_engine(normalise_database_url(database_url))
    query = sa.text("SELECT u.username, m.text, count(*) FROM messages m JOIN users u ON u.id = m.author_id "
                    "WHERE u.username IN :names GROUP BY u.username, m.text").bindparams(
        sa.bindparam("names", expanding=True))
    try:
        with engine.connect() as connection:
            rows = connection.execute(query, {"names": sorted(usernames)}).all()
    finally:
        engine.dispose()
    return Counter({(username, text): count for username, text, count in rows})


def outcome_of(load: Load, fault_at: float) -> Outcome:
    requests = load.requests()
    users = {r.username for r in requests if r.username}
    return Outcome(requests, fault_at, stored_tweets(load.database_url, users))


def needs_root_and_ip_netns() -> str | None:
    """Why the edge tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "the edge tests need root (network namespaces)"
    for command in ("ip", "haproxy", "keepalived"):
        if subprocess.run(["sh", "-c", f"command -v {command}"], capture_output=True).returncode != 0:
            return f"the edge tests need {command} (bash tests/run installs it)"
    return None


def wait_until_moved(pair: vip.EdgePair, before: str, seconds: float = 60) -> str:
    """The edge that holds the address once it has left `before`."""
    netns.wait_for(lambda: pair.active() not in (None, before), seconds, f"the address to leave {before}")
    return pair.active()


# --- the three faults, as the tests and the benchmark cause them -------------------------

@dataclass
class FaultRun:
    """One fault under load: which edge held the address before and after, and what the load saw."""

    fault: str
    before: str
    after: str | None
    outcome: Outcome


def address_moves_under_traffic(load: Load, active, cause) -> tuple[str, str, Outcome]:
    """Under `load`, `cause(active())` a fault of the active edge; (before, after, outcome).

    `active()` names the edge holding the address (None while none does).
    Returns once another edge holds the address and tweets sent after the
    fault have been acknowledged again.
    """
    with load:
        before = active()
        load.wait_for_tweets(10)
        fault_at = time.monotonic()
        cause(before)
        netns.wait_for(lambda: active() not in (None, before), 60, f"the address to leave {before}")
        load.wait_for_tweets(10, started_after=fault_at)
    return before, active(), outcome_of(load, fault_at)


def kill_active_haproxy(site: EdgeSite) -> FaultRun:
    """kill -9 the active edge's HAProxy under load."""
    return FaultRun("kill -9 HAProxy", *address_moves_under_traffic(site.load(), site.pair.active,
                                                                   site.pair.kill_haproxy))


def lose_active_edge(site: EdgeSite) -> FaultRun:
    """Lose the active edge machine under load (cable out, every process killed)."""
    return FaultRun("edge machine lost", *address_moves_under_traffic(site.load(), site.pair.active, site.pair.stop))


def bring_back_first_edge(site: EdgeSite) -> FaultRun:
    """The first edge (highest priority) is lost, then comes back under load and becomes a backup.

    Watches for ten advert intervals after it is a backup: an edge that
    preempted would have taken the address by then. `before` is the edge
    that held the address when it came back, `after` the one holding it at the end.
    """
    pair = site.pair
    first = pair.names[0]
    if pair.active() != first:
        # Give the address to the first edge: lose the active one, then bring it back as a backup.
        holder = pair.active()
        pair.stop(holder)
        wait_until_moved(pair, holder)
        site.restore()
    pair.stop(first)
    holder = wait_until_moved(pair, first)
    with site.load() as load:
        load.wait_for_tweets(10)
        back_at = time.monotonic()
        pair.start(first)
        pair.wait_until_backup(first)
        backup_at = time.monotonic()
        netns.wait_for(lambda: time.monotonic() > backup_at + 10 * pair.advert_int, 60, "ten advert intervals")
        load.wait_for_tweets(20, started_after=backup_at)
    return FaultRun("edge comes back", holder, pair.active(), outcome_of(load, back_at))
