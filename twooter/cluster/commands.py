"""`twooter cluster …`: the local several-machines topology, for trying Twooter at scale and for the tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import click

from . import operations
from .layout import ClusterSpec
from .processes import ClusterError

FOLDER = click.option("--dir", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
                      help="The cluster's folder: configuration, data, logs and the state file.")


def _run(action):
    try:
        return action()
    except (ClusterError, ValueError) as error:
        raise click.ClickException(str(error)) from None


@click.group("cluster")
def cluster() -> None:
    """Start, inspect and break a local cluster: etcd ×3, Patroni PostgreSQL nodes, HAProxy, app instances,
    Prometheus with PostgreSQL exporters, and rsyslog shipping the instances' logs."""


@cluster.command("up")
@FOLDER
@click.option("--instances", default=2, show_default=True, type=int, help="App instances behind the edge.")
@click.option("--postgres-nodes", default=3, show_default=True, type=int, help="Patroni data nodes (2 or more).")
@click.option("--base-port", default=25000, show_default=True, type=int,
              help="First of the 100 loopback ports the cluster uses.")
@click.option("--strict", is_flag=True, help="synchronous_mode_strict: with no synchronous standby, writes wait.")
@click.option("--edge-ha", is_flag=True,
              help="Also two HAProxy edges sharing a virtual address (keepalived), in network namespaces; needs root.")
def up(folder: Path, instances: int, postgres_nodes: int, base_port: int, strict: bool, edge_ha: bool) -> None:
    """Start everything and wait until the edge answers; print where everything is."""
    def action():
        spec = ClusterSpec(folder.resolve(), base_port, instances, postgres_nodes, strict)
        operations.up(spec, click.echo, edge_ha_pair=edge_ha)
        _print_status(operations.status(spec.folder))

    _run(action)


@cluster.command("status")
@FOLDER
@click.option("--json", "as_json", is_flag=True,
              help='{"edge": URL, "prometheus": URL, "logs": FOLDER, "components": [{"name", "kind", "role", "pid", "url"}]}')
def status(folder: Path, as_json: bool) -> None:
    """Every component: name, kind, role, process id, address."""
    found = _run(lambda: operations.status(folder.resolve()))
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        _print_status(found)


def _print_status(found: dict) -> None:
    click.echo(f"edge        {found['edge']}")
    if "vip" in found:
        click.echo(f"vip         {found['vip']} (from namespace {found['client_netns']}: "
                   f"ip netns exec {found['client_netns']} …)")
    click.echo(f"database    {found['database_url']}")
    click.echo(f"prometheus  {found['prometheus']}")
    click.echo(f"logs        {found['logs']} (every instance's day files; /logs at the edge shows them)")
    click.echo(f"{'name':<15} {'kind':<17} {'role':<9} {'pid':>8}  {'state':<8} url")
    for row in found["components"]:
        state = row.get("edge_state") or row.get("state") or ("running" if row["running"] else "stopped")
        if not row["running"]:
            state = "stopped"
        click.echo(f"{row['name']:<15} {row['kind']:<17} {row['role'] or '-':<9} {row['pid'] or '-':>8}  "
                   f"{state:<8} {row['url']}")


@cluster.command("kill")
@FOLDER
@click.argument("name")
def kill(folder: Path, name: str) -> None:
    """kill -9 NAME's whole process group (a data node: Patroni and its postmaster; an edge: its HAProxy)."""
    pids = _run(lambda: operations.kill(folder.resolve(), name))
    click.echo(f"killed {name} (pids {', '.join(map(str, pids))})")


def _component_command(verb: str, done: str, operation: Callable[[Path, str], object], doc: str) -> None:
    """`twooter cluster VERB --dir DIR NAME`: run `operation` on one component, say `done NAME`."""
    @cluster.command(verb, help=doc)
    @FOLDER
    @click.argument("name")
    def command(folder: Path, name: str) -> None:
        _run(lambda: operation(folder.resolve(), name))
        click.echo(f"{done} {name}")


_component_command("stop", "stopped", operations.stop,
                   "Stop NAME cleanly (SIGTERM; SIGKILL after 60 s). An edge of --edge-ha is lost whole instead.")
_component_command("start", "started", operations.start,
                   "Start NAME again with its configuration; wait until it is ready.")


@cluster.command("switchover")
@FOLDER
@click.option("--candidate", default=None, help="The node to promote (default: the synchronous standby).")
def switchover(folder: Path, candidate: str | None) -> None:
    """A planned switchover of the PostgreSQL primary, through Patroni."""
    old, new = _run(lambda: operations.switchover(folder.resolve(), candidate))
    click.echo(f"switched over from {old} to {new}")


@cluster.command("restart-apps")
@FOLDER
def restart_apps(folder: Path) -> None:
    """Rolling restart: drain each app instance at HAProxy, restart it, put it back."""
    _run(lambda: operations.restart_apps(folder.resolve(), click.echo))


@cluster.command("down")
@FOLDER
def down(folder: Path) -> None:
    """Stop everything this cluster started; its data stays in the folder."""
    stopped = _run(lambda: operations.down(folder.resolve()))
    click.echo(f"stopped {', '.join(stopped) or 'nothing (nothing was running)'}")
