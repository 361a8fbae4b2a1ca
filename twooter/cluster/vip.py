"""A redundant edge: HAProxy and keepalived in each edge namespace, one virtual address between them.

Each edge of an `EdgeNetwork` runs its own HAProxy (the cluster's
deploy/haproxy template, listening on the virtual address, with a monitor
URI) and its own keepalived (deploy/keepalived/). keepalived asks its
HAProxy's monitor URI every second and gives the virtual address up when
HAProxy does not answer, or reaches no app instance; the other edge takes it
at once, or, when the whole edge is lost, after three missed adverts. With
`nopreempt` an edge that comes back stays the backup.

All state is under one folder (configuration, pid files, logs, the VRRP
state keepalived reports), so a later process that makes an EdgePair on the
same network and folder finds the same edges. Processes are tracked and
stopped by pid.
"""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import netns
from .netns import EdgeNetwork, NetnsError, wait_for
from .render import DEPLOY_FOLDER, render

KEEPALIVED_DEPLOY = DEPLOY_FOLDER / "keepalived"
FIRST_PRIORITY = 150  # the first edge's; each further edge 10 lower
VIRTUAL_ROUTER_ID = 51
ADVERT_SECONDS = 0.5
START_SECONDS = 60.0  # generous: the machine is shared and may be busy


@dataclass(frozen=True)
class Monitor:
    """Where an edge's HAProxy answers 200 while it is alive (inside the edge's namespace)."""

    host: str = "127.0.0.1"
    port: int = 8405
    path: str = "/healthz"

    def check_command(self) -> list[str]:
        # Through bash: an installed wheel need not keep the script's executable bit.
        return ["/bin/bash", str(KEEPALIVED_DEPLOY / "check_haproxy.sh"), self.host, str(self.port), self.path]


def keepalived_config(*, router_id: str, interface: str, address: str, peers: list[str], priority: int,
                      vip: str, prefix_length: int, check_command: list[str], notify_command: list[str],
                      virtual_router_id: int = VIRTUAL_ROUTER_ID, advert_int: float = ADVERT_SECONDS) -> str:
    """keepalived.conf for one edge, from deploy/keepalived/keepalived.conf.j2.

    `address` is this edge's own address on `interface`, `peers` the other
    edges' addresses (unicast adverts), `priority` 1-254 (higher becomes
    active first), `advert_int` seconds between adverts (VRRPv3: 0.01-40).
    """
    return render("keepalived/keepalived.conf.j2", {
        "router_id": router_id, "interface": interface, "address": address, "peers": peers,
        "priority": priority, "vip": vip, "prefix_length": prefix_length, "virtual_router_id": virtual_router_id,
        "advert_int": f"{advert_int:g}", "check_command": " ".join(check_command),
        "notify_command": " ".join(notify_command),
    })


class EdgePair:
    """The edges of one network: start, break, inspect and stop them.

    Each edge's HAProxy runs deploy/haproxy/haproxy.cfg.j2 with the edge's
    values (`haproxy_values`): the virtual address, the monitor, the app
    instances, no PostgreSQL fronts. Errors: NetnsError when a process does
    not start or a state is not reached in time.
    """

    def __init__(self, network: EdgeNetwork, folder: Path, *, port: int = 80, monitor: Monitor = Monitor(),
                 advert_int: float = ADVERT_SECONDS):
        self.network = network
        self.folder = Path(folder)
        self.port = port
        self.monitor = monitor
        self.advert_int = advert_int
        self._children: list[subprocess.Popen] = []  # reaped as they end, so no zombie passes for alive

    # --- where things are --------------------------------------------------------------

    @property
    def url(self) -> str:
        """The address clients use: http://VIP:PORT (reachable from the client namespace)."""
        return f"http://{self.network.vip}:{self.port}"

    @property
    def names(self) -> list[str]:
        """The edges' names: edge1, edge2, ... (edge1 has the highest priority)."""
        return [f"edge{index}" for index in range(1, len(self.network.edges) + 1)]

    def namespace(self, name: str) -> str:
        """The network namespace edge `name` runs in. NetnsError for a name that is not an edge."""
        if name not in self.names:
            raise NetnsError(f"there is no edge {name!r}; there are {', '.join(self.names)}")
        return self.network.edges[self.names.index(name)]

    def _path(self, name: str, file: str) -> Path:
        return self.folder / name / file

    def _pid(self, name: str, file: str) -> int | None:
        """The pid in FOLDER/NAME/FILE if that process runs and is this edge's (its command names the
        edge's folder), so an id the system has since given to another program is never signalled."""
        self._reap()
        try:
            pid = int(self._path(name, file).read_text().split()[0])
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                ours = str(self.folder / name).encode() in cmdline.read()
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            return None
        return pid if ours and netns.alive(pid) else None

    def haproxy_pid(self, name: str) -> int | None:
        """The pid of the edge's HAProxy, None when it is not running."""
        return self._pid(name, "haproxy.pid")

    def keepalived_pid(self, name: str) -> int | None:
        """The pid of the edge's keepalived (its parent process), None when it is not running."""
        return self._pid(name, "keepalived.pid")

    def vrrp_state(self, name: str) -> str:
        """What keepalived last reported: MASTER, BACKUP, FAULT or STOP; "stopped" when it is not running."""
        if self.keepalived_pid(name) is None:
            return "stopped"
        try:
            return self._path(name, "state").read_text().strip() or "starting"
        except FileNotFoundError:
            return "starting"

    def holders(self) -> list[str]:
        """The edges that hold the virtual address now (one, normally; none during a move).

        A lost edge may still have the address on its interface, but with its
        cable pulled nobody can reach it there, so it holds nothing.
        """
        return [name for name in self.names
                if self.network.vip in netns.addresses(self.namespace(name))
                and netns.link_is_up(self.network, self.namespace(name))]

    def active(self) -> str | None:
        """The edge that holds the virtual address, None when none or more than one does."""
        holders = self.holders()
        return holders[0] if len(holders) == 1 else None

    def status(self) -> list[dict]:
        """Each edge as {"name", "kind": "edge", "role": "active"|"backup", "state", "pid", "keepalived_pid",
        "namespace", "address", "url"}; `pid` is HAProxy's (None when it is down)."""
        holders = self.holders()
        return [{
            "name": name, "kind": "edge", "role": "active" if name in holders else "backup",
            "state": self.vrrp_state(name), "pid": self.haproxy_pid(name),
            "keepalived_pid": self.keepalived_pid(name), "namespace": self.namespace(name),
            "address": self.network.edge_address(self.namespace(name)), "url": self.url,
        } for name in self.names]

    # --- starting ----------------------------------------------------------------------

    def haproxy_values(self, name: str, apps: list[dict[str, str]]) -> dict:
        """The values of deploy/haproxy/haproxy.cfg.j2 for edge `name`; `apps` is [{"name", "address": "HOST:PORT"}]."""
        return {
            "runtime_socket": str(self._path(name, "admin.sock")), "log_target": "stdout format raw",
            "edge_address": f"{self.network.vip}:{self.port}", "stats_address": None, "apps": apps,
            "postgres_nodes": [], "monitor_address": f"{self.monitor.host}:{self.monitor.port}",
            "monitor_uri": self.monitor.path,
        }

    def runtime_socket(self, name: str) -> Path:
        """The edge's HAProxy runtime API (a Unix socket, reachable from any namespace)."""
        return self._path(name, "admin.sock")

    def up(self, apps: list[dict[str, str]]) -> None:
        """Start every edge in front of `apps`; the first takes the virtual address, the others wait as backups."""
        self.folder.mkdir(parents=True, exist_ok=True)
        first, *others = self.names
        self.start(first, apps)
        wait_for(lambda: self.active() == first, START_SECONDS, f"{first} to take {self.network.vip}")
        for name in others:
            self.start(name, apps)
        for name in others:
            self.wait_until_backup(name)

    def start(self, name: str, apps: list[dict[str, str]] | None = None) -> None:
        """Start what is not running of edge `name`: its cable, HAProxy, keepalived.

        `apps` writes a fresh HAProxy configuration; without it the one
        written before is used. An edge whose keepalived is not running
        is booted first (see `netns.boot`).
        """
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        if apps is not None:
            config = render("haproxy/haproxy.cfg.j2", self.haproxy_values(name, apps))
            (folder / "haproxy.cfg").write_text(config, encoding="utf-8")
        if self.keepalived_pid(name) is None:
            netns.boot(self.network, self.namespace(name))
        if self.haproxy_pid(name) is None:
            self._start_haproxy(name)
        if self.keepalived_pid(name) is None:
            self._start_keepalived(name)

    def _spawn(self, name: str, argv: list[str], log: str) -> subprocess.Popen:
        with open(self._path(name, log), "ab") as output:
            process = subprocess.Popen(netns.in_namespace(self.namespace(name), argv), stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._children.append(process)
        return process

    def _start_haproxy(self, name: str) -> None:
        config = self._path(name, "haproxy.cfg")
        check = subprocess.run(netns.in_namespace(self.namespace(name), ["haproxy", "-c", "-q", "-f", str(config)]),
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise NetnsError(f"HAProxy refuses {config}: {(check.stdout + check.stderr).strip()}")
        # `ip netns exec` replaces itself with HAProxy (-db: in the foreground), so this is HAProxy's pid.
        process = self._spawn(name, ["haproxy", "-db", "-f", str(config)], "haproxy.log")
        self._path(name, "haproxy.pid").write_text(f"{process.pid}\n")
        wait_for(lambda: self._answers(name) or process.poll() is not None, START_SECONDS,
                 f"HAProxy of {name} to answer {self.monitor.path}")
        if process.poll() is not None:
            raise NetnsError(f"HAProxy of {name} exited with {process.returncode}; see {self._path(name, 'haproxy.log')}")

    def _answers(self, name: str) -> bool:
        """Whether the edge's HAProxy answers its monitor URI: the same check keepalived runs."""
        return subprocess.run(netns.in_namespace(self.namespace(name), self.monitor.check_command()),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def _start_keepalived(self, name: str) -> None:
        network = self.network
        index = self.names.index(name)
        config = self._path(name, "keepalived.conf")
        self._path(name, "state").unlink(missing_ok=True)
        config.write_text(keepalived_config(
            router_id=name, interface=netns.INTERFACE, address=network.edge_address(self.namespace(name)),
            peers=[network.edge_address(self.namespace(other)) for other in self.names if other != name],
            priority=FIRST_PRIORITY - 10 * index, vip=network.vip, prefix_length=netns.PREFIX_LENGTH,
            check_command=self.monitor.check_command(), advert_int=self.advert_int,
            notify_command=["/bin/bash", str(KEEPALIVED_DEPLOY / "notify_state.sh"), str(self._path(name, "state"))],
        ))
        pid_file, vrrp_pid_file = self._path(name, "keepalived.pid"), self._path(name, "vrrp.pid")
        # -n: stay in the foreground, so the pid is keepalived's parent; -P: VRRP only, no load balancing.
        process = self._spawn(name, ["keepalived", "-n", "-l", "-D", "-P", "-f", str(config),
                                     "-p", str(pid_file), "-r", str(vrrp_pid_file)], "keepalived.log")
        wait_for(lambda: self._pid(name, "vrrp.pid") is not None or process.poll() is not None, START_SECONDS,
                 f"keepalived of {name} to start")
        if process.poll() is not None:
            raise NetnsError(f"keepalived of {name} exited with {process.returncode}; "
                             f"see {self._path(name, 'keepalived.log')}")

    def wait_until_backup(self, name: str, seconds: float = START_SECONDS) -> None:
        """Return once edge `name`'s keepalived reports BACKUP (running, eligible, not holding the address)."""
        wait_for(lambda: self.vrrp_state(name) == "BACKUP", seconds, f"{name} to be a backup")

    # --- breaking ----------------------------------------------------------------------

    def kill_haproxy(self, name: str) -> int:
        """kill -9 the edge's HAProxy; its pid. NetnsError when it is not running."""
        pid = self.haproxy_pid(name)
        if pid is None:
            raise NetnsError(f"HAProxy of {name} is not running")
        os.kill(pid, signal.SIGKILL)
        self._reap()
        return pid

    def stop(self, name: str) -> list[int]:
        """Lose the whole edge machine: unplug its cable, kill -9 everything in its namespace; the pids.

        The cable goes first, as a machine that loses power goes silent at
        once: no process of it answers, refuses or resets anything after that.
        """
        netns.set_link(self.network, self.namespace(name), up=False)
        killed = netns.kill_all_in(self.namespace(name))
        self._reap()
        return killed

    def down(self) -> None:
        """Kill every process of every edge (by pid). The network itself is left to `netns.remove`."""
        for namespace in self.network.edges:
            netns.kill_all_in(namespace)
        self._reap()

    def _reap(self) -> None:
        self._children = [child for child in self._children if child.poll() is None]
