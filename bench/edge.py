"""Seconds without service when an edge fails: two HAProxy edges sharing a virtual address (keepalived).

    .venv/bin/python -m bench.edge [--rounds 3] [--database sqlite|postgresql]

Builds what tests/test_edge_ha.py builds (two edges in network namespaces,
a client namespace, two `twooter serve` instances in the root namespace on
one database; needs root), then, for each round, under a simulator-style
load from the client namespace (4 clients, each request on its own
connection, 20 s timeout, tests/traffic.py) and a probe of GET /health
(1 s timeout, every 50 ms): kill -9 of the active edge's HAProxy; loss of
the active edge machine (its cable pulled, every process in it killed); the
first edge coming back. Prints, per fault and round, the traffic's requests
and its failed ones by kind, the seconds without service (from the last
answered probe before the first unanswered one to the first answered probe
after it), whether the address moved, and acknowledged tweets lost or stored
twice; then the medians and this command.

PostgreSQL comes from TEST_POSTGRES_URL (as `bash tests/run` exports it).
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from tests.edges import EdgeSite, FaultRun, bring_back_first_edge, kill_active_haproxy, lose_active_edge
from tests.servers import PostgresDatabase, build_app

FAULTS = (kill_active_haproxy, lose_active_edge, bring_back_first_edge)


def row(round_number: int, run: FaultRun) -> str:
    outcome = run.outcome
    kinds = Counter(request.error or f"status {request.status}" for request in outcome.failed)
    failed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "0"
    seconds = outcome.seconds_without_service
    moved = "yes" if run.after != run.before else "no"
    probes = len(outcome.requests) - len(outcome.traffic)
    return (f"| {run.fault} | {round_number} | {len(outcome.traffic)} / {probes} | {failed} "
            f"| {'-' if seconds is None else f'{seconds:.2f}'} | {moved} "
            f"| {len(outcome.lost)} / {len(outcome.duplicated)} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="postgresql")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench.edge needs root (network namespaces)")
    runs: list[tuple[int, FaultRun]] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-edge-")))
        postgres = stack.enter_context(PostgresDatabase.created()) if options.database == "postgresql" else None
        app = build_app(options.database, folder / "instance", postgres)
        site = stack.enter_context(EdgeSite(app, folder))
        for round_number in range(1, options.rounds + 1):
            for fault in FAULTS:
                site.restore()
                run = fault(site)
                runs.append((round_number, run))
                print(f"round {round_number}: {run.fault}: {run.outcome.summary()}", file=sys.stderr)
    print(f"Edge faults, {options.database}, {options.rounds} rounds, advert interval "
          f"{site.pair.advert_int:g} s, keepalived check every 1 s\n")
    print("| fault | round | requests / probes | failed requests | seconds without service | address moved "
          "| acknowledged lost / duplicated |")
    print("|---|---:|---:|---|---:|---|---|")
    for round_number, run in runs:
        print(row(round_number, run))
    print()
    for name in dict.fromkeys(run.fault for _, run in runs):
        of_kind = [run for _, run in runs if run.fault == name]
        seconds = [run.outcome.seconds_without_service for run in of_kind
                   if run.outcome.seconds_without_service is not None]
        failed = [len(run.outcome.failed) for run in of_kind]
        print(f"{name}: median {statistics.median(seconds):.2f} s without service (max {max(seconds):.2f}), "
              f"median {statistics.median(failed):g} failed requests")
    print(f"\n.venv/bin/python -m bench.edge {shlex.join(argv if argv is not None else sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
