"""Where every component of a local cluster lives: names, loopback ports and folders.

All of it follows from the folder, the base port and the counts, which are
kept in the folder's state file, so every later command finds the same places.

Ports, counted from the base port P:
    P+0 edge (HTTP)   P+1 PostgreSQL primary front   P+2 read front   P+3 HAProxy stats and its /metrics
    P+4 Prometheus   P+5 the log collector (RELP)
    P+10.. etcd clients   P+20.. etcd peers   P+30.. PostgreSQL   P+40.. Patroni REST (and its /metrics)
    P+50.. apps   P+90.. PostgreSQL exporters (one per PostgreSQL node)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
ETCD_MEMBERS = 3
MAX_POSTGRES_NODES = 10
MAX_APP_INSTANCES = 40  # P+50..P+89, below the exporters
PORT_SPAN = 100
DATABASE_NAME = "twooter"
DATABASE_USER = "twooter"
MONITOR_USER = "prometheus"  # the PostgreSQL exporters' role (pg_monitor)


@dataclass(frozen=True)
class ClusterSpec:
    """What `up` was asked for: the folder (absolute), the base port and the counts."""

    folder: Path
    base_port: int
    instances: int = 2
    postgres_nodes: int = 3
    strict: bool = False
    # --edge-ha: the edge network's slot (netns.py), and the address the app
    # instances listen on so that edges in other namespaces reach them.
    edge_slot: int | None = None
    app_host: str = HOST

    def __post_init__(self) -> None:
        if not 1 <= self.instances <= MAX_APP_INSTANCES:
            raise ValueError(f"--instances must be 1 to {MAX_APP_INSTANCES}, not {self.instances}")
        if not 2 <= self.postgres_nodes <= MAX_POSTGRES_NODES:
            raise ValueError(f"--postgres-nodes must be 2 to {MAX_POSTGRES_NODES}, not {self.postgres_nodes}")
        if not 1024 <= self.base_port <= 65535 - PORT_SPAN:
            raise ValueError(f"--base-port must be 1024 to {65535 - PORT_SPAN}, not {self.base_port}")

    def to_json(self) -> dict:
        return {**asdict(self), "folder": str(self.folder)}

    @classmethod
    def from_json(cls, data: dict) -> "ClusterSpec":
        return cls(**{**data, "folder": Path(data["folder"])})

    # Names ------------------------------------------------------------------
    def etcd_names(self) -> list[str]:
        return [f"etcd{i}" for i in range(1, ETCD_MEMBERS + 1)]

    def postgres_names(self) -> list[str]:
        return [f"pg{i}" for i in range(1, self.postgres_nodes + 1)]

    def app_names(self) -> list[str]:
        return [f"app{i}" for i in range(1, self.instances + 1)]

    # Ports ------------------------------------------------------------------
    @property
    def edge_port(self) -> int:
        return self.base_port

    @property
    def primary_port(self) -> int:
        return self.base_port + 1

    @property
    def replica_port(self) -> int:
        return self.base_port + 2

    @property
    def stats_port(self) -> int:
        return self.base_port + 3

    def etcd_client_port(self, name: str) -> int:
        return self.base_port + 10 + _index(name)

    def etcd_peer_port(self, name: str) -> int:
        return self.base_port + 20 + _index(name)

    def postgres_port(self, name: str) -> int:
        return self.base_port + 30 + _index(name)

    def restapi_port(self, name: str) -> int:
        return self.base_port + 40 + _index(name)

    def app_port(self, name: str) -> int:
        return self.base_port + 50 + _index(name)

    @property
    def prometheus_port(self) -> int:
        return self.base_port + 4

    @property
    def collector_port(self) -> int:
        return self.base_port + 5

    def exporter_port(self, node: str) -> int:
        """The port of the PostgreSQL exporter of data node `node` (pg2 -> P+91)."""
        return self.base_port + 90 + _index(node)

    # Addresses ----------------------------------------------------------------
    @property
    def edge_url(self) -> str:
        return f"http://{HOST}:{self.edge_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{HOST}:{self.prometheus_port}"

    def database_url(self, password: str, port: int | None = None) -> str:
        """The app's database through HAProxy's primary front (or `port`)."""
        return f"postgresql://{DATABASE_USER}:{password}@{HOST}:{port or self.primary_port}/{DATABASE_NAME}"

    # Folders ------------------------------------------------------------------
    def home(self, name: str) -> Path:
        """The folder of one component: its configuration, data and log."""
        return self.folder / name

    @property
    def state_file(self) -> Path:
        return self.folder / "cluster.json"

    @property
    def central_logs(self) -> Path:
        """Where the log collector writes every instance's day files, and what every viewer reads."""
        return self.folder / "logs"

    @property
    def runtime_socket(self) -> Path:
        return self.home("haproxy") / "admin.sock"


def _index(name: str) -> int:
    """etcd2 -> 1: the position of a numbered component, from 0."""
    digits = name.lstrip("abcdefghijklmnopqrstuvwxyz")
    return int(digits) - 1
