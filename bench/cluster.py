"""The local cluster under load: throughput and p99 through the edge with 1, 2 and 3 app instances,
and what each fault costs.

    .venv/bin/python -m bench.cluster [--duration 10] [--instances 1,2,3] [--no-faults]

For each instance count: `twooter cluster up` (etcd ×3, three Patroni nodes,
HAProxy, N instances) on free loopback ports, register the benchmark's users,
then wrk (2 threads, 16 connections) with bench/cluster_mix.lua: 60 % reads
(/public, /msgs), 30 % tweets, 10 % follows, all through the edge.

Faults, on the two-instance cluster, each under the tests' simulator-style
load (4 clients, tests/traffic.py): kill -9 of an instance, a rolling
restart, a switchover, a crash of the leader's node, a crash of the
synchronous standby's node. For each: requests, failures by kind, and how
long writes did not work (from the start of the first failed write to the end
of the last; the longest gap between two acknowledged writes around the fault).
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import requests

from bench.timelines import run_wrk
from tests.cluster import LocalCluster
from tests.scenario import SIMULATOR_AUTHORIZATION
from tests.traffic import Traffic
from twooter.cluster.components import TTL_SECONDS

MIX = Path(__file__).with_name("cluster_mix.lua")
BENCH_USERS = 20


def register_users(edge: str) -> None:
    for number in range(1, BENCH_USERS + 1):
        name = f"bench{number}"
        answer = requests.post(f"{edge}/register", json={"username": name, "email": f"{name}@example.org",
                                                         "pwd": "bench"}, timeout=30)
        if answer.status_code not in (204, 400):
            raise RuntimeError(f"registering {name}: {answer.status_code} {answer.text}")


def throughput(counts: list[int], seconds: int) -> list[tuple[int, float, float, int]]:
    import os

    os.environ["BENCH_USERS"] = str(BENCH_USERS)
    rows = []
    for instances in counts:
        cluster = LocalCluster(instances=instances)
        try:
            cluster.up()
            register_users(cluster.edge_url)
            run_wrk(cluster.edge_url + "/", 2, script=MIX)  # warm every instance's pool
            measured = run_wrk(cluster.edge_url + "/", seconds, script=MIX)
            rows.append((instances, measured.requests_per_second, measured.p99_ms, measured.failures))
            print(f"  {instances} instance(s): {measured.requests_per_second:.0f} req/s, "
                  f"p99 {measured.p99_ms:.1f} ms, {measured.failures} failed", flush=True)
        finally:
            cluster.down()
    return rows


def outage(traffic: Traffic, fault_at: float) -> tuple[float, float]:
    """(seconds from the start of the first failed write to the end of the last, longest gap between
    acknowledged writes from a second before the fault on)."""
    posts = sorted(traffic.posts(), key=lambda r: r.ended)
    failed = [r for r in posts if r.failed and r.ended >= fault_at]
    until_working = max(r.ended for r in failed) - min(r.started for r in failed) if failed else 0.0
    acknowledged = [r.ended for r in posts if r.acknowledged]
    gaps = [b - a for a, b in zip(acknowledged, acknowledged[1:]) if b >= fault_at - 1]
    return until_working, max(gaps, default=0.0)


def failures_by_kind(traffic: Traffic) -> str:
    kinds = Counter(f"{r.method} {r.status or r.error}" for r in traffic.requests if r.failed)
    return ", ".join(f"{kind} ×{count}" for kind, count in sorted(kinds.items())) or "none"


def faults(seconds_after: float) -> list[tuple[str, int, str, float, float]]:
    cluster = LocalCluster(instances=2)
    rows = []
    try:
        cluster.up()

        def measure(name: str, act, after: float, mend=None) -> None:
            with Traffic(*cluster.edge, clients=4, seed=len(rows) + 100) as traffic:
                traffic.run_for(2)
                fault_at = time.monotonic()
                act()
                traffic.run_for(after)
            until, gap = outage(traffic, fault_at)
            rows.append((name, len(traffic.requests), failures_by_kind(traffic), until, gap))
            print(f"  {name}: {rows[-1]}", flush=True)
            if mend:
                mend()
            cluster.wait_until(cluster.healthy, what="the cluster to settle after " + name)

        measure("kill -9 app1", lambda: cluster.run("kill", "app1"), seconds_after,
                lambda: cluster.run("start", "app1"))
        measure("restart-apps", lambda: cluster.run("restart-apps"), 1)
        measure("switchover", lambda: cluster.run("switchover"), seconds_after)
        leader = cluster.leader()
        measure(f"crash of the leader ({leader})", lambda: cluster.run("kill", leader),
                TTL_SECONDS + seconds_after, lambda: cluster.run("start", leader))
        standby = next(c["name"] for c in cluster.status()["components"] if c.get("synchronous"))
        measure(f"crash of the sync standby ({standby})", lambda: cluster.run("kill", standby),
                seconds_after, lambda: cluster.run("start", standby))
    finally:
        cluster.down()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per instance count")
    parser.add_argument("--instances", default="1,2,3", help="instance counts to measure")
    parser.add_argument("--no-faults", action="store_true", help="skip the fault timings")
    arguments = parser.parse_args(argv)
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    counts = [int(n) for n in arguments.instances.split(",")]
    print("throughput through the edge", flush=True)
    rows = throughput(counts, arguments.duration)
    fault_rows = [] if arguments.no_faults else (print("faults", flush=True) or faults(5))

    print("\n| app instances | req/s | p99 ms | failed |\n|---:|---:|---:|---:|")
    for instances, rate, p99, failed in rows:
        print(f"| {instances} | {rate:.0f} | {p99:.1f} | {failed} |")
    if fault_rows:
        print("\n| fault | requests | failed (by kind) | writes failing for (s) | longest write gap (s) |")
        print("|---|---:|---|---:|---:|")
        for name, total, kinds, until, gap in fault_rows:
            print(f"| {name} | {total} | {kinds} | {until:.1f} | {gap:.1f} |")
    print("\n" + shlex.join([".venv/bin/python", "-m", "bench.cluster", *(argv or sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
