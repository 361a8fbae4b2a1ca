"""Log shipping with real rsyslogd processes (Debian's rsyslog and rsyslog-relp): a forwarder per app
instance (imfile -> RELP), one collector (RELP -> omfile) writing one central folder that a /logs
viewer reads. Files arrive unchanged and in order; a forwarder killed with SIGKILL and restarted
loses and repeats nothing; a collector that was away catches up."""
from __future__ import annotations

import os
from datetime import datetime, timezone
import shutil
import signal
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.servers import LiveServer, build_app, free_port, unavailable
from tests.test_logs_viewer import make_admin
from tests.twooter_client import TwooterClient
from twooter.logviewer.query import format_hour, hour_of
from twooter.monitoring import logshipping, stop

INSTANCES = ("web1", "web2")
CATCH_UP_SECONDS = 60


@pytest.fixture(scope="module", autouse=True)
def rsyslog_with_relp():
    if not shutil.which("rsyslogd"):
        unavailable("rsyslogd is not installed (Debian's rsyslog); tests/run installs it")
    if not any(Path(folder).glob("*/rsyslog/imrelp.so") for folder in ("/usr/lib", "/usr/lib64")):
        unavailable("rsyslog's RELP modules are not installed (Debian's rsyslog-relp); tests/run installs it")


class Shipping:
    """Two app instances with their own log folders, their forwarders, a collector and its central folder."""

    def __init__(self, root: Path, stack: ExitStack):
        self.root = root
        self.stack = stack
        self.central = root / "central"
        self.port = free_port()
        self.collector: object | None = None
        self.forwarders: dict[str, object] = {}
        self.apps = {name: build_app("sqlite", root / name, None, LOG_DIR=root / name / "logs",
                                     LOG_INSTANCE_NAME=name) for name in INSTANCES}
        self.servers = {name: stack.enter_context(LiveServer(app)) for name, app in self.apps.items()}
        self.clients = {name: TwooterClient(server.url) for name, server in self.servers.items()}

    def start_collector(self) -> None:
        self.collector = logshipping.start_collector(self.root / "collector", "127.0.0.1", self.port, self.central)

    def start_forwarder(self, name: str) -> None:
        self.forwarders[name] = logshipping.start_forwarder(self.root / f"forwarder-{name}", self.root / name / "logs",
                                                            name, "127.0.0.1", self.port)

    def stop_all(self) -> None:
        for process in [*self.forwarders.values(), self.collector]:
            if process is not None:
                stop(process)

    def sources(self) -> dict[str, bytes]:
        found = {}
        for name in INSTANCES:
            for path in (self.root / name / "logs").glob(f"*.{name}.log"):
                found[path.name] = path.read_bytes()
        return found

    def central_files(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in self.central.glob("*.log")}

    def wait_until_identical(self, seconds: float = CATCH_UP_SECONDS) -> float:
        """Seconds until every source file is in the central folder byte for byte; fails after `seconds`."""
        started = time.monotonic()
        while True:
            sources, central = self.sources(), self.central_files()
            shipped = {name: central.get(name) for name in sources}
            if sources and shipped == sources:
                return time.monotonic() - started
            if time.monotonic() - started > seconds:
                for name, data in sources.items():
                    got = central.get(name) or b""
                    lines, got_lines = data.splitlines(), got.splitlines()
                    assert got == data, (name, len(lines), len(got_lines), len(set(got_lines)))
                raise AssertionError("source files missing from the central folder")
            time.sleep(0.2)


@pytest.fixture
def shipping(tmp_path):
    with ExitStack() as stack:
        setup = Shipping(tmp_path, stack)
        try:
            yield setup
        finally:
            setup.stop_all()
    for process in [*setup.forwarders.values(), setup.collector]:
        assert process is None or process.poll() is not None


def visit(shipping: Shipping, name: str, count: int, tag: str) -> None:
    for number in range(count):
        shipping.clients[name].get(f"/{tag}-{number}")  # 404: an ERROR record with the path


def test_two_instances_reach_the_central_folder_unchanged_and_in_order_and_the_viewer_shows_both(shipping,
                                                                                                  tmp_path):
    shipping.start_collector()
    for name in INSTANCES:
        shipping.start_forwarder(name)
    for name in INSTANCES:
        visit(shipping, name, 20, f"first-{name}")
        shipping.clients[name].get("/public")
    delay = shipping.wait_until_identical()
    print(f"caught up {delay:.2f} s after the last record")
    central = shipping.central_files()
    assert sorted(central) == sorted(shipping.sources())
    for name in INSTANCES:
        (file_name,) = [f for f in central if f.endswith(f".{name}.log")]
        lines = central[file_name].splitlines()
        paths = [line.split(b'"path":"')[1].split(b'"')[0] for line in lines if b'"path":"/first-' in line]
        assert paths == [f"/first-{name}-{n}".encode() for n in range(20)]  # in the order written
    # A viewer on the central folder shows both instances' records.
    viewer = build_app("sqlite", tmp_path / "viewer", None, LOG_DIR=shipping.central, LOG_INSTANCE_NAME="viewer")
    with LiveServer(viewer) as server:
        admin = make_admin(viewer, TwooterClient(server.url))
        hour = format_hour(hour_of(datetime.now(timezone.utc)))
        page = admin.get(f"/logs/{hour}?q=first-").text
        for name in INSTANCES:
            assert f"/first-{name}-19" in page and f'<option value="{name}"' in page


def test_a_forwarder_killed_and_restarted_loses_no_record_and_repeats_none(shipping):
    shipping.start_collector()
    for name in INSTANCES:
        shipping.start_forwarder(name)
    visit(shipping, "web1", 5, "before")
    shipping.wait_until_identical()
    writing, paused = threading.Event(), threading.Event()
    writing.set()
    written = []

    def keep_writing():
        number = 0
        while writing.is_set():
            if paused.is_set():
                time.sleep(0.01)
                continue
            shipping.clients["web1"].get(f"/during-{number}")
            written.append(number)
            number += 1
            time.sleep(0.02)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        time.sleep(1)
        # The kill lands between lines: once the forwarder has shipped what was written (see
        # docs/logs.md for a kill inside imfile's saving of its position).
        paused.set()
        time.sleep(0.1)
        shipping.wait_until_identical()
        victim = shipping.forwarders["web1"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        at_kill = len(written)
        paused.clear()
        while len(written) < at_kill + 10:  # records go on being written while no forwarder reads them
            time.sleep(0.05)
        shipping.start_forwarder("web1")
        at_restart = len(written)
        while len(written) < at_restart + 10:
            time.sleep(0.05)
    finally:
        writing.clear()
        writer.join(timeout=60)
    assert 0 < at_kill < at_restart < len(written)
    shipping.wait_until_identical()
    lines = shipping.central_files()
    web1 = next(data for file_name, data in lines.items() if file_name.endswith(".web1.log")).splitlines()
    assert len(web1) == len(set(web1))  # every record line is unique (its request id), so none repeats
    during = [line for line in web1 if b'"path":"/during-' in line]
    assert [line.split(b'"path":"/during-')[1].split(b'"')[0] for line in during] == \
        [str(n).encode() for n in written]


def test_a_collector_that_was_away_catches_up(shipping):
    shipping.start_collector()
    for name in INSTANCES:
        shipping.start_forwarder(name)
    visit(shipping, "web1", 5, "before")
    visit(shipping, "web2", 5, "before")
    shipping.wait_until_identical()
    stop(shipping.collector)
    visit(shipping, "web1", 30, "while-away")
    visit(shipping, "web2", 30, "while-away")
    time.sleep(3)
    central = shipping.central_files()
    assert not any(b"/while-away-" in data for data in central.values())
    shipping.start_collector()
    shipping.wait_until_identical()
    central = shipping.central_files()
    for name in INSTANCES:
        (data,) = [data for file_name, data in central.items() if file_name.endswith(f".{name}.log")]
        assert data.count(b'"path":"/while-away-29"') == 1
