"""Network namespaces that stand in for separate machines on one host.

One network is a bridge in a namespace of its own (the LAN), two or more
edge namespaces and one client namespace, each attached to the bridge by a
veth pair, and one veth end in the root namespace so that the edges reach
app instances listening there. Its addresses are 10.213.SLOT.0/24, a block
that exists only on these links:

    10.213.SLOT.1      the root namespace (app instances listen here)
    10.213.SLOT.11...  the edges, in order
    10.213.SLOT.20     the client
    10.213.SLOT.100    the virtual address the edges share

Every namespace and link is named after the slot (`twooter-edgeSLOT-...`,
`twedgeSLOT`), so several networks can exist side by side and each is
removed by name. Needs root and iproute2.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Iterable

SUBNET = "10.213"
PREFIX_LENGTH = 24
INTERFACE = "eth0"  # the name of the veth end inside every edge and client namespace
BRIDGE = "br0"


class NetnsError(RuntimeError):
    """An `ip` command failed, or a namespace did not reach the state asked for."""


def ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS...`; its standard output. Raises NetnsError (with ip's message) when it fails and `check`."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or f'exit {result.returncode}'}")
    return result.stdout


def wait_for(condition: Callable[[], bool], seconds: float, what: str, interval: float = 0.05) -> None:
    """Return once `condition()` is true; NetnsError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise NetnsError(f"{what}: not within {seconds:g} s")
        time.sleep(interval)


@dataclass(frozen=True)
class EdgeNetwork:
    """The names and addresses of one network; `create` builds it, `remove` takes it away."""

    slot: int
    edge_count: int = 2

    @property
    def prefix(self) -> str:
        return f"twooter-edge{self.slot}"

    @property
    def lan(self) -> str:
        """The namespace that holds the bridge."""
        return f"{self.prefix}-lan"

    @property
    def edges(self) -> list[str]:
        """The edge namespaces, in order."""
        return [f"{self.prefix}-edge{index}" for index in range(1, self.edge_count + 1)]

    @property
    def client(self) -> str:
        """The namespace a client runs in to reach the virtual address."""
        return f"{self.prefix}-client"

    @property
    def namespaces(self) -> list[str]:
        return [*self.edges, self.client, self.lan]

    @property
    def host_link(self) -> str:
        """The veth end in the root namespace (at most 15 characters, as Linux requires)."""
        return f"twedge{self.slot}"

    def address(self, host: int) -> str:
        return f"{SUBNET}.{self.slot}.{host}"

    @property
    def host_address(self) -> str:
        """The root namespace's address on the bridge, where app instances listen for the edges."""
        return self.address(1)

    def edge_address(self, namespace: str) -> str:
        return self.address(11 + self.edges.index(namespace))

    @property
    def client_address(self) -> str:
        return self.address(20)

    @property
    def vip(self) -> str:
        """The virtual address, held by whichever edge is active."""
        return self.address(100)

    def lan_port(self, namespace: str) -> str:
        """The bridge's end of the veth pair of an edge or client namespace."""
        if namespace == self.client:
            return "client"
        return f"edge{self.edges.index(namespace) + 1}"


def _subnets_in_use() -> set[int]:
    """Slots whose block already has an address in the root namespace (someone else's network)."""
    used = set()
    for word in ip("-o", "-4", "addr", "show").split():
        if word.startswith(f"{SUBNET}."):
            used.add(int(word.split(".")[2]))
    return used


def create(slots: Iterable[int] = range(1, 255), edge_count: int = 2) -> EdgeNetwork:
    """Build a network in the first free slot.

    A slot is taken by creating its LAN namespace, which fails when another
    network has it, so two callers never share one. Raises NetnsError when
    no slot is free or a step fails (what was built by then is removed).
    """
    in_use = _subnets_in_use()
    for slot in slots:
        if slot in in_use:
            continue
        network = EdgeNetwork(slot, edge_count)
        if subprocess.run(["ip", "netns", "add", network.lan], capture_output=True).returncode != 0:
            continue
        try:
            _build(network)
        except BaseException:
            remove(network)
            raise
        return network
    raise NetnsError("no free slot for an edge network (10.213.1-254.0/24 all taken)")


def _build(network: EdgeNetwork) -> None:
    lan = network.lan
    ip("-n", lan, "link", "add", BRIDGE, "type", "bridge")
    ip("-n", lan, "link", "set", BRIDGE, "up")
    for namespace in [*network.edges, network.client]:
        ip("netns", "add", namespace)
        port = network.lan_port(namespace)
        ip("-n", lan, "link", "add", port, "type", "veth", "peer", "name", INTERFACE, "netns", namespace)
        ip("-n", lan, "link", "set", port, "master", BRIDGE, "up")
        address = network.client_address if namespace == network.client else network.edge_address(namespace)
        ip("-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", INTERFACE)
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "link", "set", INTERFACE, "up")
    ip("link", "add", network.host_link, "type", "veth", "peer", "name", "host", "netns", lan)
    ip("-n", lan, "link", "set", "host", "master", BRIDGE, "up")
    ip("addr", "add", f"{network.host_address}/{PREFIX_LENGTH}", "dev", network.host_link)
    ip("link", "set", network.host_link, "up")
    for namespace in network.edges:
        # HAProxy listens on the virtual address also while another edge holds it.
        set_sysctl(namespace, "net.ipv4.ip_nonlocal_bind", "1")


def set_sysctl(namespace: str, key: str, value: str) -> None:
    """Set a per-namespace kernel setting (net.*) inside `namespace`."""
    path = "/proc/sys/" + key.replace(".", "/")
    result = subprocess.run(["ip", "netns", "exec", namespace, "sh", "-c", f"echo {value} > {path}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsError(f"{key}={value} in {namespace}: {result.stderr.strip()}")


def exists(namespace: str) -> bool:
    return os.path.exists(f"/run/netns/{namespace}")


def in_namespace(namespace: str, argv: list[str]) -> list[str]:
    """The command line that runs `argv` inside `namespace` (ip netns exec replaces itself with it)."""
    return ["ip", "netns", "exec", namespace, *argv]


def pids_in(namespace: str) -> list[int]:
    """Process ids of every process living in `namespace` ([] when it does not exist)."""
    if not exists(namespace):
        return []
    return [int(word) for word in ip("netns", "pids", namespace, check=False).split()]


def kill_all_in(namespace: str, seconds: float = 10) -> list[int]:
    """kill -9 every process in `namespace`, by process id; the ids killed. NetnsError if any outlives `seconds`."""
    killed = []
    for pid in pids_in(namespace):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    wait_for(lambda: not [pid for pid in pids_in(namespace) if alive(pid)], seconds,
             f"the processes of {namespace} to end")
    return killed


def alive(pid: int) -> bool:
    """True for a running process; false for none or a zombie (ended, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def addresses(namespace: str, interface: str = INTERFACE) -> list[str]:
    """The IPv4 addresses (without prefix length) on `interface` in `namespace`."""
    found = []
    for line in ip("-n", namespace, "-o", "-4", "addr", "show", "dev", interface, check=False).splitlines():
        words = line.split()
        if "inet" in words:
            found.append(words[words.index("inet") + 1].split("/")[0])
    return found


def set_link(network: EdgeNetwork, namespace: str, up: bool) -> None:
    """Plug or unplug `namespace`'s cable: its port on the bridge goes up or down."""
    ip("-n", network.lan, "link", "set", network.lan_port(namespace), "up" if up else "down")


def link_is_up(network: EdgeNetwork, namespace: str) -> bool:
    """Whether `namespace`'s cable is plugged in (its port on the bridge is up)."""
    line = ip("-n", network.lan, "-o", "link", "show", network.lan_port(namespace), check=False)
    return "UP" in line.partition("<")[2].partition(">")[0].split(",")


def boot(network: EdgeNetwork, namespace: str) -> None:
    """Bring a lost edge back as a rebooted machine: no virtual address, empty neighbour table, cable in.

    Left as they were, the address would answer ARP next to the active
    edge's, and the neighbour entries that failed while the cable was out
    would refuse connections to the app instances until they expire.
    """
    remove_address(namespace, network.vip)
    ip("-n", namespace, "neigh", "flush", "all")
    set_link(network, namespace, up=True)


def remove_address(namespace: str, address: str, interface: str = INTERFACE) -> None:
    """Take `address` off `interface` in `namespace`, if it is there."""
    if address in addresses(namespace, interface):
        ip("-n", namespace, "addr", "del", f"{address}/{PREFIX_LENGTH}", "dev", interface)


def remove(network: EdgeNetwork) -> None:
    """Kill every process in the network's namespaces (by pid), delete the namespaces and the root link.

    Safe to call on a half-built or already removed network. Raises
    NetnsError if something could not be removed.
    """
    problems = []
    for namespace in network.namespaces:
        if not exists(namespace):
            continue
        try:
            kill_all_in(namespace)
            ip("netns", "del", namespace)
        except NetnsError as error:
            problems.append(str(error))
    # Deleting the LAN namespace destroys the veth pair; this is for a half-built network.
    if ip("link", "show", network.host_link, check=False):
        ip("link", "del", network.host_link, check=False)
    if problems:
        raise NetnsError("; ".join(problems))


def existing(slot: int, edge_count: int = 2) -> EdgeNetwork:
    """The network of `slot`, as built by `create` earlier (perhaps by another process)."""
    network = EdgeNetwork(slot, edge_count)
    if not exists(network.lan):
        raise NetnsError(f"there is no edge network in slot {slot} (no namespace {network.lan})")
    return network
