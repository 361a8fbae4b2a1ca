"""Prometheus from deploy/prometheus/: configuration into a directory, its command line, and queries."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from . import DEPLOY as DEPLOY_ROOT, fill

DEPLOY = DEPLOY_ROOT / "prometheus"
JOBS = ("twooter", "haproxy", "patroni", "postgres")


def write_config(directory: Path, targets: Mapping[str, Sequence[str]], scrape_interval: str = "15s",
                 evaluation_interval: str | None = None) -> Path:
    """Write prometheus.yml, alerts.yml and targets/<job>.json into `directory`; the path of prometheus.yml.

    `targets` maps a job (twooter, haproxy, patroni, postgres) to `host:port`
    addresses; jobs left out scrape nothing. Intervals are Prometheus
    durations ("1s", "15s"). ValueError for an unknown job.
    """
    unknown = set(targets) - set(JOBS)
    if unknown:
        raise ValueError(f"unknown scrape job(s) {sorted(unknown)}; known: {', '.join(JOBS)}")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(fill(DEPLOY / "prometheus.yml", scrape_interval=scrape_interval,
                           evaluation_interval=evaluation_interval or scrape_interval), encoding="utf-8")
    shutil.copyfile(DEPLOY / "alerts.yml", directory / "alerts.yml")
    (directory / "targets").mkdir(exist_ok=True)
    for job in JOBS:
        addresses = list(targets.get(job, ()))
        groups = [{"targets": addresses}] if addresses else []
        partial = directory / "targets" / f".{job}.json"
        partial.write_text(json.dumps(groups), encoding="utf-8")
        partial.replace(directory / "targets" / f"{job}.json")  # whole, for a Prometheus that watches
    return config


def command(directory: Path, listen: str, binary: str = "prometheus") -> list[str]:
    """The command line of Prometheus on the configuration in `directory`, data in directory/data.

    `listen` is host:port for its web API.
    """
    return [binary, f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address={listen}"]


def query(url: str, expression: str, timeout: float = 30) -> list[dict]:
    """The instant vector (or scalar, as one element) an expression gives now; RuntimeError on a query error."""
    address = url + "/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:  # a bad expression: 400 with the reason in the body
        answer = json.load(error)
    if answer.get("status") != "success":
        raise RuntimeError(f"{expression}: {answer.get('error')}")
    data = answer["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]
