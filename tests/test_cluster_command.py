"""`twooter cluster` as a command: it stops only what it started, and says what is wrong."""
from __future__ import annotations

import json
import subprocess
import time

import psutil

from tests.servers import TWOOTER_COMMAND


def cluster_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TWOOTER_COMMAND), "cluster", *args], capture_output=True, text=True, timeout=120)


def write_state(folder, components: dict) -> None:
    spec = {"folder": str(folder), "base_port": 29000, "instances": 1, "postgres_nodes": 2, "strict": False}
    (folder / "cluster.json").write_text(json.dumps({"spec": spec, "components": components}))


def test_down_stops_the_processes_it_started_and_spares_a_process_that_reuses_an_id(tmp_path):
    started = subprocess.Popen(["sleep", "300"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        ours = psutil.Process(started.pid)
        theirs = psutil.Process(stranger.pid)
        write_state(tmp_path, {
            "app1": {"kind": "app", "pid": ours.pid, "started": ours.create_time()},
            # The same id, another start time: a process the system gave that id since.
            "etcd1": {"kind": "etcd", "pid": theirs.pid, "started": theirs.create_time() - 100},
        })
        done = cluster_command("down", "--dir", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert "app1" in done.stdout and "etcd1" not in done.stdout
        assert started.wait(timeout=30) is not None
        assert stranger.poll() is None  # untouched
        assert json.loads((tmp_path / "cluster.json").read_text())["components"] == {}
    finally:
        for process in (started, stranger):
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def test_commands_on_a_folder_without_a_cluster_say_so_and_exit_non_zero(tmp_path):
    for args in (("status",), ("down",), ("kill", "pg1"), ("switchover",), ("restart-apps",)):
        done = cluster_command(*args[:1], "--dir", str(tmp_path / "none"), *args[1:])
        assert done.returncode != 0
        assert "no cluster was started" in done.stderr, (args, done.stderr)


def test_unknown_names_bad_counts_and_dead_components_are_refused_with_a_reason(tmp_path):
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        write_state(tmp_path, {"app1": {"kind": "app", "pid": sleeper.pid,
                                        "started": psutil.Process(sleeper.pid).create_time()}})
        unknown = cluster_command("kill", "--dir", str(tmp_path), "pg9")
        assert unknown.returncode != 0 and "no component 'pg9'" in unknown.stderr
        assert "etcd1, etcd2, etcd3, pg1, pg2, haproxy, app1" in unknown.stderr
        dead = cluster_command("stop", "--dir", str(tmp_path), "pg1")
        assert dead.returncode != 0 and "pg1 is not running" in dead.stderr
        running = cluster_command("start", "--dir", str(tmp_path), "app1")
        assert running.returncode != 0 and "app1 is already running" in running.stderr
        killed = cluster_command("kill", "--dir", str(tmp_path), "app1")
        assert killed.returncode == 0 and str(sleeper.pid) in killed.stdout
        assert sleeper.wait(timeout=30) == -9
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        sleeper.wait(timeout=10)
    for option, value, message in (("--instances", "0", "--instances must be 1 to 40"),
                                   ("--postgres-nodes", "1", "--postgres-nodes must be 2 to 10"),
                                   ("--base-port", "80", "--base-port must be 1024")):
        refused = cluster_command("up", "--dir", str(tmp_path / "new"), option, value)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr
        assert not (tmp_path / "new" / "cluster.json").exists()
