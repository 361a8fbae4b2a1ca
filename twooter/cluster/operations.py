"""What `twooter cluster` does: start the topology, tell its state, break and mend it, stop it.

Every function takes the cluster's folder and raises ClusterError with a
message for the operator when it cannot do what was asked.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from . import edge_ha, haproxy, patroni
from .components import (
    AppInstance,
    Component,
    EtcdMember,
    HAProxy,
    LogCollector,
    LogForwarder,
    PostgresExporter,
    PostgresNode,
    Prometheus,
    all_components,
    create_app_database,
    http_ok,
    load_or_create_secrets,
    port_is_free,
)
from .layout import ClusterSpec
from .processes import ClusterError, StateFile, Tracked, kill_group, launch, log_tail, terminate, wait_for

Echo = Callable[[str], None]
DRAIN_SECONDS = 30
EDGE_BACKEND = "apps"


class Cluster:
    """A cluster folder: its spec, passwords, components and the processes started for them."""

    def __init__(self, spec: ClusterSpec, state: dict):
        self.spec = spec
        self.state = state
        self.state_file = StateFile(spec.state_file)
        self.passwords = load_or_create_secrets(spec)
        self.components = {c.name: c for c in all_components(spec, self.passwords)}

    @classmethod
    def open(cls, folder: Path) -> "Cluster":
        state = StateFile(Path(folder).resolve() / "cluster.json").read()
        return cls(ClusterSpec.from_json(state["spec"]), state)

    def component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise ClusterError(f"there is no component {name!r}; there are {', '.join(self.components)}") from None

    def tracked(self, name: str) -> Tracked | None:
        record = self.state["components"].get(name)
        return Tracked(record["pid"], record["started"]) if record else None

    def running_component(self, name: str) -> tuple[Component, Tracked]:
        """The component `name` and its process; ClusterError when it is unknown or not running."""
        component = self.component(name)
        tracked = self.tracked(name)
        if tracked is None or not tracked.alive():
            raise ClusterError(f"{name} is not running")
        return component, tracked

    def running(self, name: str) -> bool:
        tracked = self.tracked(name)
        return tracked is not None and tracked.alive()

    def of_kind(self, kind: type) -> list:
        return [c for c in self.components.values() if isinstance(c, kind)]

    # Starting ------------------------------------------------------------------
    def launch(self, component: Component) -> None:
        component.prepare()
        tracked = launch(component.command(), env=component.environment(), cwd=component.home,
                         log=component.log, user=component.user)
        self.state_file.record(self.state, component.name, component.kind, tracked)

    def wait_ready(self, component: Component, ready: Callable[[], bool] | None = None) -> None:
        tracked = self.tracked(component.name)
        if not wait_for(lambda: not tracked.alive() or (ready or component.ready)(), component.ready_seconds):
            raise ClusterError(f"{component.name} was not ready within {component.ready_seconds:.0f} s; "
                               f"the end of {component.log}:\n{log_tail(component.log)}")
        if not tracked.alive():
            raise ClusterError(f"{component.name} exited at start; the end of {component.log}:\n"
                               f"{log_tail(component.log)}")

    def start(self, component: Component) -> None:
        self.launch(component)
        self.wait_ready(component)

    def start_together(self, components: list[Component]) -> None:
        """Launch them all, then wait for each: they start side by side (etcd needs a quorum to be healthy)."""
        for component in components:
            self.launch(component)
        for component in components:
            self.wait_ready(component)

    # Looking -------------------------------------------------------------------
    def postgres_members(self) -> list[dict]:
        """Patroni's view of the data nodes, from the first node that answers; [] when none does."""
        for node in self.of_kind(PostgresNode):
            if self.running(node.name):
                try:
                    return patroni.members(node.restapi_address())
                except OSError:
                    continue
        return []

    def edge_servers(self) -> dict[str, dict[str, str]]:
        if not self.running("haproxy"):
            return {}
        try:
            rows = haproxy.servers(self.spec.runtime_socket)
        except OSError:
            return {}
        return {server: row for (backend, server), row in rows.items() if backend == EDGE_BACKEND}

    def leader(self) -> str | None:
        for member in self.postgres_members():
            if member.get("role") in ("leader", "master") and member.get("state") == "running":
                return member["name"]
        return None


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """One changing command at a time per cluster folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(spec: ClusterSpec, echo: Echo, edge_ha_pair: bool = False) -> Cluster:
    """Start etcd, Patroni nodes, HAProxy, the app instances and their monitoring; return when all are ready.

    Monitoring: a PostgreSQL exporter per data node, the log collector and a
    forwarder per instance, and Prometheus scraping all of them.

    `edge_ha_pair`: also two edges sharing a virtual address, in network
    namespaces (edge_ha.py). On any failure everything started so far is
    stopped again before the error is raised.
    """
    folder = spec.folder
    with exclusive(folder):
        state_file = StateFile(spec.state_file)
        if state_file.exists():
            old = Cluster.open(folder)
            if any(old.running(name) for name in old.state["components"]):
                raise ClusterError(f"a cluster is running in {folder}: `twooter cluster down --dir {folder}` first")
        # The postgres account must reach its data folders under this one.
        folder.chmod(0o755)
        cluster = Cluster(spec, {"spec": spec.to_json(), "components": {}})
        busy = [port for port in _ports(spec) if not port_is_free(port)]
        if busy:
            raise ClusterError(f"ports in use on 127.0.0.1: {', '.join(map(str, busy))}; choose another --base-port")
        if edge_ha_pair:
            spec = edge_ha.with_network(spec)
            cluster = Cluster(spec, {"spec": spec.to_json(), "components": {}})
        state_file.write(cluster.state)
        try:
            _start_all(cluster, echo)
        except BaseException:
            echo("start-up failed; stopping what was started")
            _stop_all(cluster)
            raise
        return cluster


def _ports(spec: ClusterSpec) -> list[int]:
    ports = [spec.edge_port, spec.primary_port, spec.replica_port, spec.stats_port]
    ports += [p for n in spec.etcd_names() for p in (spec.etcd_client_port(n), spec.etcd_peer_port(n))]
    ports += [p for n in spec.postgres_names()
              for p in (spec.postgres_port(n), spec.restapi_port(n), spec.exporter_port(n))]
    ports += [spec.prometheus_port, spec.collector_port]
    return ports + [spec.app_port(n) for n in spec.app_names()]


def _start_all(cluster: Cluster, echo: Echo) -> None:
    etcd = cluster.of_kind(EtcdMember)
    cluster.start_together(etcd)
    echo(f"etcd: {len(etcd)} members")

    first, *others = cluster.of_kind(PostgresNode)
    cluster.launch(first)
    cluster.wait_ready(first, lambda: patroni.is_primary(first.restapi_address()))
    create_app_database(first)
    for node in others:
        cluster.launch(node)
    for node in others:
        cluster.wait_ready(node, lambda node=node: patroni.is_running_replica(node.restapi_address()))
    echo(f"postgres: {first.name} primary, {len(others)} replicas")

    edge = cluster.component("haproxy")
    cluster.start(edge)
    apps = cluster.of_kind(AppInstance)
    cluster.start_together(apps)
    _wait_in_rotation(cluster, [app.name for app in apps])
    if not wait_for(lambda: http_ok(cluster.spec.edge_url + "/health"), 30):
        raise ClusterError(f"the edge {cluster.spec.edge_url} does not answer /health")
    echo(f"apps: {len(apps)} instances behind {cluster.spec.edge_url}")
    _start_monitoring(cluster, echo)
    if cluster.spec.edge_slot is not None:
        edges = edge_ha.up(cluster, [{"name": app.name, "address": app.url().removeprefix("http://")}
                                     for app in apps])
        echo(f"edges: {', '.join(edges.names)} share {edges.url} (clients in namespace {edges.network.client})")


def _start_monitoring(cluster: Cluster, echo: Echo) -> None:
    """The exporters, the log collector and then its forwarders, and Prometheus once its targets run."""
    exporters = cluster.of_kind(PostgresExporter)
    cluster.start_together(exporters)
    cluster.start(cluster.component("log-collector"))
    forwarders = cluster.of_kind(LogForwarder)
    cluster.start_together(forwarders)
    echo(f"logs: {len(forwarders)} instances shipped into {cluster.spec.central_logs}")
    cluster.start(cluster.component("prometheus"))
    echo(f"prometheus: {cluster.spec.prometheus_url} scrapes {len(cluster.of_kind(AppInstance))} instances, "
         f"HAProxy, {len(exporters)} Patroni nodes and their exporters")


def _wait_in_rotation(cluster: Cluster, names: list[str], seconds: float = 30) -> None:
    def all_up() -> bool:
        servers = cluster.edge_servers()
        return all(servers.get(name, {}).get("status") == "UP" for name in names)

    if not wait_for(all_up, seconds):
        states = {name: row.get("status") for name, row in cluster.edge_servers().items()}
        raise ClusterError(f"HAProxy did not put {', '.join(names)} in rotation within {seconds:.0f} s: {states}")


def status(folder: Path) -> dict:
    """{"edge": URL, "prometheus": URL, "logs": FOLDER, "components": [{"name", "kind", "role", "pid", "url",
    "running", …}]}.

    role: "leader"/"replica" for PostgreSQL (null when Patroni does not list
    the node), "member" for etcd, "edge" for HAProxy, "instance" for apps,
    "monitor" for Prometheus, the exporters ("node": the data node) and the
    log collector and forwarders ("folder": the central folder, or the one an
    instance writes). Apps carry HAProxy's view ("edge_state": UP, DOWN,
    DRAIN, MAINT).
    """
    cluster = Cluster.open(folder)
    members = cluster.postgres_members()
    servers = cluster.edge_servers()
    rows = []
    for name, component in cluster.components.items():
        tracked = cluster.tracked(name)
        running = tracked is not None and tracked.alive()
        row = {"name": name, "kind": component.kind, "role": None, "pid": tracked.pid if tracked else None,
               "url": component.url(), "running": running}
        if isinstance(component, PostgresNode):
            row["role"] = component.role(members) if running else None
            member = next((m for m in members if m.get("name") == name), {})
            row["synchronous"] = member.get("role") == "sync_standby"
            row["state"] = member.get("state")
            row["restapi"] = f"http://{component.restapi_address()}"
        elif isinstance(component, EtcdMember):
            row["role"] = "member"
        elif isinstance(component, HAProxy):
            row["role"] = "edge"
            row["primary_url"] = f"postgresql://127.0.0.1:{cluster.spec.primary_port}"
            row["replica_url"] = f"postgresql://127.0.0.1:{cluster.spec.replica_port}"
            row["runtime_socket"] = str(cluster.spec.runtime_socket)
        elif isinstance(component, AppInstance):
            row["role"] = "instance"
            row["edge_state"] = servers.get(name, {}).get("status")
        elif isinstance(component, PostgresExporter):
            row["role"] = "monitor"
            row["node"] = component.of
        elif isinstance(component, LogCollector):
            row["role"] = "monitor"
            row["folder"] = str(cluster.spec.central_logs)
        elif isinstance(component, LogForwarder):
            row["role"] = "monitor"
            row["folder"] = str(component.log_dir)
        elif isinstance(component, Prometheus):
            row["role"] = "monitor"
        rows.append(row)
    found = {"edge": cluster.spec.edge_url, "prometheus": cluster.spec.prometheus_url,
             "logs": str(cluster.spec.central_logs), "folder": str(cluster.spec.folder),
             "database_url": cluster.spec.database_url(cluster.passwords["app_database"]),
             "components": rows}
    edge_ha.status(cluster, found)
    return found


def kill(folder: Path, name: str) -> list[int]:
    """kill -9 the component's process group (for a data node, Patroni's and its postmaster's too): a crash.

    Returns the process ids that were killed. ClusterError when it is not running.
    """
    with exclusive(Path(folder)):
        cluster = Cluster.open(folder)
        if edge_ha.is_edge(cluster, name):
            return edge_ha.kill(cluster, name)
        component, tracked = cluster.running_component(name)
        victims = [tracked, *component.also_kill()]
        for victim in victims:
            kill_group(victim)
        if not wait_for(lambda: not any(v.alive() for v in victims), 10):
            raise ClusterError(f"{name} survived SIGKILL")
        return [v.pid for v in victims]


def stop(folder: Path, name: str) -> None:
    """Stop one component as its service manager would (SIGTERM, then SIGKILL after a while).

    An edge of --edge-ha is lost whole instead (edge_ha.stop): a machine does not stop politely.
    """
    with exclusive(Path(folder)):
        cluster = Cluster.open(folder)
        if edge_ha.is_edge(cluster, name):
            edge_ha.stop(cluster, name)
            return
        component, _tracked = cluster.running_component(name)
        _stop(cluster, [component])


def _stop(cluster: Cluster, components: list[Component]) -> None:
    started = [(c, cluster.tracked(c.name)) for c in components if cluster.tracked(c.name)]
    servers = [c.also_kill() for c, _ in started]  # read before Patroni removes postmaster.pid
    terminate([t for _, t in started], seconds=60)
    # Patroni stops its server on SIGTERM; one that Patroni could not stop goes too.
    terminate([t for group in servers for t in group], seconds=30)


def start(folder: Path, name: str) -> None:
    """Start a stopped or killed component again with its configuration; return when it is ready."""
    with exclusive(Path(folder)):
        cluster = Cluster.open(folder)
        if edge_ha.is_edge(cluster, name):
            edge_ha.start(cluster, name)
            return
        component = cluster.component(name)
        if cluster.running(name):
            raise ClusterError(f"{name} is already running (pid {cluster.tracked(name).pid})")
        if isinstance(component, PostgresNode):
            for stale in component.also_kill():  # a server left from before a crash of Patroni alone
                terminate([stale])
        cluster.start(component)


def switchover(folder: Path, candidate: str | None = None, seconds: float = 60) -> tuple[str, str]:
    """A planned switchover through Patroni to `candidate` (default: the synchronous standby).

    Returns (old leader, new leader) once the new one runs as primary.
    """
    with exclusive(Path(folder)):
        cluster = Cluster.open(folder)
        members = cluster.postgres_members()
        leader = cluster.leader()
        if leader is None:
            raise ClusterError("there is no running leader to switch over from")
        if candidate is None:
            standbys = [m["name"] for m in members if m.get("role") == "sync_standby" and m.get("state") in
                        ("running", "streaming")]
            if not standbys:
                raise ClusterError("there is no synchronous standby to switch over to")
            candidate = standbys[0]
        node = cluster.component(leader)
        status_code, message = patroni.switchover(node.restapi_address(), leader, candidate)
        if status_code != 200:
            raise ClusterError(f"Patroni refused the switchover from {leader} to {candidate}: {message}")
        target = cluster.component(candidate)
        if not wait_for(lambda: patroni.is_primary(target.restapi_address()), seconds):
            raise ClusterError(f"{candidate} did not become primary within {seconds:.0f} s")
        return leader, candidate


def restart_apps(folder: Path, echo: Echo) -> None:
    """A rolling restart: each instance drained at HAProxy, restarted, and put back, one at a time.

    With --edge-ha it is drained at every running edge too.
    """
    with exclusive(Path(folder)):
        cluster = Cluster.open(folder)
        socket_path = cluster.spec.runtime_socket
        edge_sockets = edge_ha.runtime_sockets(cluster)
        for app in cluster.of_kind(AppInstance):
            for path in [socket_path, *edge_sockets]:
                haproxy.set_state(path, EDGE_BACKEND, app.name, "drain")

            def idle() -> bool:
                return (cluster.edge_servers()[app.name]["scur"] == "0"
                        and all(haproxy.servers(path)[(EDGE_BACKEND, app.name)]["scur"] == "0"
                                for path in edge_sockets))

            if not wait_for(idle, DRAIN_SECONDS, every=0.05):
                echo(f"{app.name}: requests still in hand after {DRAIN_SECONDS} s; restarting anyway")
            if cluster.running(app.name):
                _stop(cluster, [app])
            cluster.start(app)
            for path in [socket_path, *edge_sockets]:
                haproxy.set_state(path, EDGE_BACKEND, app.name, "ready")
            _wait_in_rotation(cluster, [app.name])
            # Each edge checks on its own: the next instance drains only once every edge has this one back.
            edge_ha.wait_in_rotation(edge_sockets, EDGE_BACKEND, app.name)
            echo(f"{app.name}: restarted, pid {cluster.tracked(app.name).pid}")


def down(folder: Path) -> list[str]:
    """Stop every process this cluster started (and nothing else); the data stays in the folder.

    Returns the names that were running.
    """
    folder = Path(folder).resolve()
    with exclusive(folder):
        cluster = Cluster.open(folder)
        running = [name for name in cluster.state["components"] if cluster.running(name)]
        _stop_all(cluster)
        return running


def _stop_all(cluster: Cluster) -> None:
    # Traffic first, then data, then consensus; data nodes together, so that
    # none of them takes over from another that is stopping.
    edge_ha.down(cluster.spec)
    _stop(cluster, cluster.of_kind(AppInstance) + cluster.of_kind(HAProxy))
    # What watches stops after what it watches; the collector after its forwarders.
    _stop(cluster, cluster.of_kind(Prometheus) + cluster.of_kind(LogForwarder) + cluster.of_kind(PostgresExporter))
    _stop(cluster, cluster.of_kind(LogCollector))
    _stop(cluster, cluster.of_kind(PostgresNode))
    _stop(cluster, cluster.of_kind(EtcdMember))
    cluster.state["components"] = {}
    cluster.state_file.write(cluster.state)
