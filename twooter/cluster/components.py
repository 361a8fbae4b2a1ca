"""The kinds of component a local cluster runs: etcd members, Patroni nodes, HAProxy, app instances,
and what watches them: a PostgreSQL exporter per data node, Prometheus, and rsyslog shipping every
instance's day files to one central folder.

Each kind knows its configuration (rendered from deploy/), its command, the
account it runs as, and when it is ready. A new kind is one more class here
and one more entry in `all_components`.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import ClassVar

import psutil

from ..monitoring import logshipping, prometheus
from . import haproxy, netns, patroni
from .layout import DATABASE_NAME, DATABASE_USER, HOST, MONITOR_USER, ClusterSpec
from .processes import ClusterError, Tracked
from .render import read_env_file, render

# Patroni's timing on one machine, where etcd and every node share loopback:
# a crashed leader's key expires after TTL seconds and a replica takes over on
# its next loop (LOOP_WAIT), so writes stop for at most about TTL + LOOP_WAIT +
# a promotion. RETRY_TIMEOUT bounds how long the leader keeps trying etcd
# before it demotes itself; LOOP_WAIT + 2 * RETRY_TIMEOUT <= TTL keeps that
# demotion ahead of the key's expiry, so two primaries never take writes at
# once. 4 s of retries is ample for etcd on loopback, even on a busy machine.
TTL_SECONDS = 10
LOOP_WAIT_SECONDS = 1
RETRY_TIMEOUT_SECONDS = 4
MAX_CONNECTIONS = 300
APP_THREADS = 8
# Short, so that a test or an operator trying the cluster sees data within seconds.
SCRAPE_INTERVAL = "2s"
SECRET_NAMES = ("superuser", "replication", "app_database", "monitoring")


def postgres_account() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres`; otherwise as oneself."""
    return "postgres" if os.geteuid() == 0 else None


def postgres_bin_dir() -> Path:
    """The newest PostgreSQL server installed by Debian's packages (15 on Debian 12)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise ClusterError("no PostgreSQL server in /usr/lib/postgresql: apt-get install postgresql")
    return versions[-1].parent


def load_or_create_secrets(spec: ClusterSpec) -> dict[str, str]:
    """Passwords and the app's SECRET_KEY, made once per cluster folder (DIR/secrets.json, mode 600).

    A folder made before a password existed (the exporters' "monitoring") gets it added.
    """
    path = spec.folder / "secrets.json"
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8"))
        missing = [name for name in SECRET_NAMES if name not in found]
        if not missing:
            return found
        found.update({name: secrets.token_hex(16) for name in missing})
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(found, handle)
        os.replace(temporary, path)
        return found
    made = {name: secrets.token_hex(16) for name in SECRET_NAMES}
    made["secret_key"] = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(made, handle)
    return made


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def clean_environment(**extra: str) -> dict[str, str]:
    """What a service gets from its unit on a real machine: a plain PATH and locale, and its settings."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", **extra}


class Component:
    """One named process of the cluster."""

    kind: ClassVar[str]
    ready_seconds: ClassVar[float] = 60

    def __init__(self, spec: ClusterSpec, name: str, passwords: dict[str, str]):
        self.spec = spec
        self.name = name
        self.passwords = passwords

    @property
    def home(self) -> Path:
        return self.spec.home(self.name)

    @property
    def log(self) -> Path:
        return self.home / f"{self.kind}.log"

    @property
    def user(self) -> str | None:
        return None

    def prepare(self) -> None:
        """Write this component's configuration into its folder (again, on every start)."""
        self.home.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return clean_environment(HOME=str(self.home))

    def ready(self) -> bool:
        raise NotImplementedError

    def url(self) -> str:
        raise NotImplementedError

    def also_kill(self) -> list[Tracked]:
        """Processes outside the launched one's group that a crash of this machine takes down too."""
        return []


class EtcdMember(Component):
    kind = "etcd"

    def client_address(self) -> str:
        return f"{HOST}:{self.spec.etcd_client_port(self.name)}"

    def values(self) -> dict:
        members = [{"name": name, "initial_cluster_entry": f"{name}=http://{HOST}:{self.spec.etcd_peer_port(name)}"}
                   for name in self.spec.etcd_names()]
        return {"name": self.name, "data_dir": str(self.home / "data"),
                "peer_address": f"{HOST}:{self.spec.etcd_peer_port(self.name)}",
                "client_address": self.client_address(), "members": members,
                # A token of its own per cluster folder: members of another
                # cluster on this machine can never join this one.
                "cluster_token": "twooter-" + hashlib.sha256(str(self.spec.folder).encode()).hexdigest()[:16]}

    def prepare(self) -> None:
        super().prepare()
        (self.home / "etcd.env").write_text(render("etcd/etcd.env.j2", self.values()), encoding="utf-8")

    def command(self) -> list[str]:
        return ["etcd"]

    def environment(self) -> dict[str, str]:
        settings = read_env_file((self.home / "etcd.env").read_text(encoding="utf-8"))
        return {**super().environment(), **settings}

    def ready(self) -> bool:
        with urllib.request.urlopen(f"http://{self.client_address()}/health", timeout=2) as response:
            return json.load(response).get("health") == "true"

    def url(self) -> str:
        return f"http://{self.client_address()}"


class PostgresNode(Component):
    """Patroni and the PostgreSQL server it manages: one data node."""

    kind = "postgres"
    ready_seconds = 120

    @property
    def user(self) -> str | None:
        return postgres_account()

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def restapi_address(self) -> str:
        return f"{HOST}:{self.spec.restapi_port(self.name)}"

    def postgres_address(self) -> str:
        return f"{HOST}:{self.spec.postgres_port(self.name)}"

    def values(self) -> dict:
        return {
            "scope": "twooter", "name": self.name,
            "restapi_address": self.restapi_address(), "postgres_address": self.postgres_address(),
            "etcd_hosts": [f"{HOST}:{self.spec.etcd_client_port(n)}" for n in self.spec.etcd_names()],
            "ttl": TTL_SECONDS, "loop_wait": LOOP_WAIT_SECONDS, "retry_timeout": RETRY_TIMEOUT_SECONDS,
            "strict": self.spec.strict, "max_connections": MAX_CONNECTIONS,
            "data_dir": str(self.data_dir), "bin_dir": str(postgres_bin_dir()),
            "pgpass": str(self.home / "pgpass"), "socket_dir": str(self.home),
            "superuser_password": self.passwords["superuser"],
            "replication_password": self.passwords["replication"],
            # Several servers share this machine's memory and disk.
            "local_parameters": {"shared_buffers": "64MB", "max_wal_size": "256MB"},
            "client_networks": [f"{HOST}/32"],
        }

    def prepare(self) -> None:
        super().prepare()
        config = self.home / "patroni.yml"
        config.write_text(render("patroni/patroni.yml.j2", self.values()), encoding="utf-8")
        config.chmod(0o600)
        if self.user:
            shutil.chown(self.home, self.user, self.user)
            shutil.chown(config, self.user, self.user)
            self.home.chmod(0o700)
            check = subprocess.run(["test", "-w", str(self.home)], user=self.user)
            if check.returncode != 0:
                raise ClusterError(f"{self.home}: the {self.user} account cannot write here; choose a --dir "
                                   f"whose parent folders it may enter (not under a folder of mode 700)")

    def command(self) -> list[str]:
        return ["patroni", str(self.home / "patroni.yml")]

    def ready(self) -> bool:
        return http_ok(f"http://{self.restapi_address()}/health")

    def url(self) -> str:
        return f"postgresql://{self.postgres_address()}"

    def also_kill(self) -> list[Tracked]:
        # Patroni starts the postmaster in a session of its own; a machine
        # crash takes it and its backends down with Patroni.
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            server = psutil.Process(pid)
            # The file outlives a crashed server, and its id may be another program's now.
            if str(self.data_dir) not in " ".join(server.cmdline()):
                return []
            return [Tracked(pid, server.create_time())]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    def role(self, cluster_members: list[dict]) -> str | None:
        for member in cluster_members:
            if member.get("name") == self.name:
                return "leader" if member.get("role") in ("leader", "master", "standby_leader") else "replica"
        return None


class HAProxy(Component):
    kind = "haproxy"

    def values(self) -> dict:
        spec = self.spec
        return {
            "runtime_socket": str(spec.runtime_socket), "log_target": "stderr format raw",
            "edge_address": f"{HOST}:{spec.edge_port}", "primary_address": f"{HOST}:{spec.primary_port}",
            "replica_address": f"{HOST}:{spec.replica_port}", "stats_address": f"{HOST}:{spec.stats_port}",
            "apps": [{"name": n, "address": f"{spec.app_host}:{spec.app_port(n)}"} for n in spec.app_names()],
            "postgres_nodes": [{"name": n, "postgres_address": f"{HOST}:{spec.postgres_port(n)}",
                                "restapi_port": spec.restapi_port(n)} for n in spec.postgres_names()],
        }

    def prepare(self) -> None:
        super().prepare()
        (self.home / "haproxy.cfg").write_text(render("haproxy/haproxy.cfg.j2", self.values()), encoding="utf-8")
        check = subprocess.run(["haproxy", "-c", "-q", "-f", str(self.home / "haproxy.cfg")],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"{self.home / 'haproxy.cfg'}: HAProxy refuses it:\n{check.stdout}{check.stderr}")

    def command(self) -> list[str]:
        # -db: stay in the foreground, one process, so it is tracked by its id.
        return ["haproxy", "-db", "-f", str(self.home / "haproxy.cfg")]

    def ready(self) -> bool:
        return "Name: HAProxy" in haproxy.command(self.spec.runtime_socket, "show info")

    def url(self) -> str:
        return self.spec.edge_url


class AppInstance(Component):
    kind = "app"

    @property
    def log_dir(self) -> Path:
        """Where this instance writes its day files (its forwarder ships them from here)."""
        return self.home / "instance" / "logs"

    def metrics_allow(self) -> str:
        """Who may read /metrics: loopback, and with --edge-ha the instances' own address.

        Prometheus reaches the instances on the address they listen on, and a
        connection to one of this machine's own addresses comes from that address.
        """
        allowed = "127.0.0.0/8 ::1/128"
        return allowed if self.spec.app_host == HOST else f"{allowed} {self.spec.app_host}/32"

    def trusted_proxies(self) -> str:
        """Whose X-Forwarded-For names the client: the cluster's HAProxy, and with --edge-ha both edges."""
        if self.spec.edge_slot is None:
            return HOST
        network = netns.EdgeNetwork(self.spec.edge_slot)
        return " ".join([HOST, *(network.edge_address(edge) for edge in network.edges)])

    def values(self) -> dict:
        password = self.passwords["app_database"]
        return {"database_url": self.spec.database_url(password),
                "replica_database_url": self.spec.database_url(password, self.spec.replica_port),
                "secret_key": self.passwords["secret_key"], "instance_name": self.name,
                "instance_path": str(self.home / "instance"), "log_dir": str(self.log_dir),
                "listen_host": self.spec.app_host, "trusted_proxy": self.trusted_proxies(),
                "listen_port": self.spec.app_port(self.name), "metrics_allow": self.metrics_allow(),
                # Every instance's /logs shows every instance: the folder the collector writes.
                "log_view_dir": str(self.spec.central_logs)}

    def prepare(self) -> None:
        super().prepare()
        (self.home / "twooter.env").write_text(render("twooter/twooter.env.j2", self.values()), encoding="utf-8")
        (self.home / "twooter.env").chmod(0o600)

    def settings(self) -> dict[str, str]:
        return read_env_file((self.home / "twooter.env").read_text(encoding="utf-8"))

    def command(self) -> list[str]:
        settings = self.settings()
        return [sys.executable, "-m", "twooter", "serve", "--host", settings["TWOOTER_LISTEN"],
                "--port", settings["TWOOTER_PORT"], "--threads", str(APP_THREADS)]

    def environment(self) -> dict[str, str]:
        return {**super().environment(), **self.settings()}

    def ready(self) -> bool:
        return http_ok(f"{self.url()}/health")

    def url(self) -> str:
        return f"http://{self.spec.app_host}:{self.spec.app_port(self.name)}"


class Companion(Component):
    """A component that serves one other (a node's exporter, an instance's forwarder): named after it."""

    suffix: ClassVar[str]
    config_name: ClassVar[str]

    def __init__(self, spec: ClusterSpec, of: str, passwords: dict[str, str]):
        super().__init__(spec, f"{of}-{self.suffix}", passwords)
        self.of = of

    @property
    def config(self) -> Path:
        return self.home / self.config_name


class PostgresExporter(Companion):
    """prometheus-postgres-exporter for one data node, connected to that node's server directly."""

    kind = "postgres-exporter"
    suffix = "exporter"
    config_name = "prometheus-postgres-exporter.env"

    def address(self) -> str:
        return f"{HOST}:{self.spec.exporter_port(self.of)}"

    def values(self) -> dict:
        # Not through a front: the exporter must see its own node, whatever its role.
        server = f"{HOST}:{self.spec.postgres_port(self.of)}"
        return {"data_source_name": f"postgresql://{MONITOR_USER}:{self.passwords['monitoring']}@{server}"
                                    f"/postgres?sslmode=disable",
                "listen_address": self.address()}

    def prepare(self) -> None:
        super().prepare()
        self.config.write_text(render("postgres-exporter/prometheus-postgres-exporter.env.j2", self.values()),
                               encoding="utf-8")
        self.config.chmod(0o600)

    def settings(self) -> dict[str, str]:
        return read_env_file(self.config.read_text(encoding="utf-8"))

    def command(self) -> list[str]:
        # As Debian's unit runs it: `prometheus-postgres-exporter $ARGS`.
        return ["prometheus-postgres-exporter", *self.settings()["ARGS"].split()]

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "DATA_SOURCE_NAME": self.settings()["DATA_SOURCE_NAME"]}

    def ready(self) -> bool:
        return http_ok(f"{self.url()}/")  # its landing page: /metrics would wait on the server

    def url(self) -> str:
        return f"http://{self.address()}"


class LogCollector(Component):
    """rsyslogd receiving every instance's records over RELP into the central folder (DIR/logs)."""

    kind = "log-collector"

    @property
    def config(self) -> Path:
        return self.home / "collector.conf"

    def prepare(self) -> None:
        super().prepare()
        logshipping.write_collector_config(self.home, HOST, self.spec.collector_port, self.spec.central_logs)
        _check_rsyslog(self.config)

    def command(self) -> list[str]:
        return logshipping.rsyslogd_command(self.config)

    def ready(self) -> bool:
        with socket.create_connection((HOST, self.spec.collector_port), timeout=2):
            return True

    def url(self) -> str:
        return f"relp://{HOST}:{self.spec.collector_port}"


class LogForwarder(Companion):
    """rsyslogd shipping one app instance's day files, unchanged, to the collector."""

    kind = "log-forwarder"
    suffix = "forwarder"
    config_name = "forwarder.conf"

    @property
    def log_dir(self) -> Path:
        return AppInstance(self.spec, self.of, self.passwords).log_dir

    @property
    def pid_file(self) -> Path:
        return self.home / "rsyslogd.pid"

    def prepare(self) -> None:
        super().prepare()
        self.log_dir.mkdir(parents=True, exist_ok=True)  # imfile watches a folder that exists
        logshipping.write_forwarder_config(self.home, self.log_dir, self.of, HOST, self.spec.collector_port)
        _check_rsyslog(self.config)
        # rsyslogd writes it once its configuration is loaded; one left by a killed forwarder says nothing.
        self.pid_file.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return logshipping.rsyslogd_command(self.config)

    def ready(self) -> bool:
        return self.pid_file.exists()

    def url(self) -> str:
        return f"relp://{HOST}:{self.spec.collector_port}"


class Prometheus(Component):
    """Debian's Prometheus on deploy/prometheus/: every instance directly, HAProxy, Patroni, the exporters."""

    kind = "prometheus"

    def targets(self) -> dict[str, list[str]]:
        """The scrape targets by job (host:port); the app instances on their own addresses, not the edge."""
        spec = self.spec
        return {
            "twooter": [f"{spec.app_host}:{spec.app_port(name)}" for name in spec.app_names()],
            "haproxy": [f"{HOST}:{spec.stats_port}"],
            "patroni": [f"{HOST}:{spec.restapi_port(name)}" for name in spec.postgres_names()],
            "postgres": [f"{HOST}:{spec.exporter_port(name)}" for name in spec.postgres_names()],
        }

    def prepare(self) -> None:
        super().prepare()
        prometheus.write_config(self.home, self.targets(), scrape_interval=SCRAPE_INTERVAL)

    def command(self) -> list[str]:
        return prometheus.command(self.home, f"{HOST}:{self.spec.prometheus_port}")

    def ready(self) -> bool:
        return http_ok(f"{self.url()}/-/ready")

    def url(self) -> str:
        return self.spec.prometheus_url


def _check_rsyslog(config: Path) -> None:
    try:
        logshipping.check_config(config)
    except RuntimeError as error:
        raise ClusterError(f"rsyslogd refuses {error}") from None


def all_components(spec: ClusterSpec, passwords: dict[str, str]) -> list[Component]:
    """Every component, in the order `up` starts them (and `down` stops them in reverse)."""
    return [
        *(EtcdMember(spec, name, passwords) for name in spec.etcd_names()),
        *(PostgresNode(spec, name, passwords) for name in spec.postgres_names()),
        HAProxy(spec, "haproxy", passwords),
        *(AppInstance(spec, name, passwords) for name in spec.app_names()),
        *(PostgresExporter(spec, name, passwords) for name in spec.postgres_names()),
        LogCollector(spec, "log-collector", passwords),
        *(LogForwarder(spec, name, passwords) for name in spec.app_names()),
        Prometheus(spec, "prometheus", passwords),
    ]


def create_app_database(node: PostgresNode) -> None:
    """The app's role and database, and the exporters' role, on the new primary, once (as the superuser).

    The exporters' role holds pg_monitor only: it reads statistics, never data.
    """
    import psycopg2

    host, port = node.postgres_address().split(":")
    connection = psycopg2.connect(host=host, port=int(port), user="postgres", dbname="postgres",
                                  password=node.passwords["superuser"], connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DATABASE_USER,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE ROLE {DATABASE_USER} LOGIN PASSWORD %s", (node.passwords["app_database"],))
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MONITOR_USER,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE ROLE {MONITOR_USER} LOGIN PASSWORD %s IN ROLE pg_monitor",
                               (node.passwords["monitoring"],))
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {DATABASE_NAME} OWNER {DATABASE_USER}")
    finally:
        connection.close()


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
            return True
        except OSError:
            return False
