"""Log shipping with rsyslog from deploy/rsyslog/: a forwarder per app instance, one collector.

Each is an rsyslogd of its own: its configuration, pid file and work
directory in one directory, listening (the collector) on the address given.
`start_collector` and `start_forwarder` write the configuration and start
the process; stop them with `twooter.monitoring.stop` (SIGTERM), or kill
them: a forwarder carries on from the read position it saved.
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from . import DEPLOY, fill

TEMPLATES = DEPLOY / "rsyslog"


def write_collector_config(directory: Path, address: str, port: int, central_dir: Path) -> Path:
    """collector.conf for RELP on address:port writing into `central_dir`; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    central_dir.mkdir(parents=True, exist_ok=True)
    (directory / "work").mkdir(exist_ok=True)
    config = directory / "collector.conf"
    config.write_text(fill(TEMPLATES / "collector.conf", work_dir=directory / "work", address=address, port=port,
                           central_dir=central_dir.resolve()), encoding="utf-8")
    return config


def write_forwarder_config(directory: Path, log_dir: Path, instance: str, collector_host: str,
                           collector_port: int) -> Path:
    """forwarder.conf shipping `log_dir`'s <day>.<instance>.log files to the collector; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "work").mkdir(exist_ok=True)
    config = directory / "forwarder.conf"
    config.write_text(fill(TEMPLATES / "forwarder.conf", work_dir=directory / "work", log_dir=log_dir.resolve(),
                           instance=instance, collector_host=collector_host, collector_port=collector_port),
                      encoding="utf-8")
    return config


def check_config(config: Path, binary: str = "rsyslogd") -> None:
    """RuntimeError if rsyslogd refuses `config` (the check's output says why)."""
    checked = subprocess.run([binary, "-N1", "-f", str(config)], capture_output=True, text=True, timeout=60)
    if checked.returncode != 0:
        raise RuntimeError(f"{config}: {checked.stdout}{checked.stderr}")


def rsyslogd_command(config: Path, binary: str = "rsyslogd") -> list[str]:
    """The command line of rsyslogd in the foreground on `config`, its pid file (rsyslogd.pid) beside it."""
    return [binary, "-n", "-f", str(config), "-i", str(config.parent / "rsyslogd.pid")]


def start_rsyslogd(config: Path, binary: str = "rsyslogd") -> subprocess.Popen:
    """rsyslogd in the foreground on `config`, its pid file beside it, its output in rsyslogd.log there.

    RuntimeError if rsyslogd refuses the configuration (the check's output says why).
    """
    check_config(config, binary)
    log = open(config.parent / "rsyslogd.log", "ab")
    try:
        return subprocess.Popen(rsyslogd_command(config, binary), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()


def start_collector(directory: Path, address: str, port: int, central_dir: Path) -> subprocess.Popen:
    """Write collector.conf into `directory` and start it; returns once it accepts connections."""
    process = start_rsyslogd(write_collector_config(directory, address, port, central_dir))
    wait_for_port(address, port, process)
    return process


def start_forwarder(directory: Path, log_dir: Path, instance: str, collector_host: str,
                    collector_port: int) -> subprocess.Popen:
    """Write forwarder.conf into `directory` and start it (it ships whatever the files hold, then follows them)."""
    return start_rsyslogd(write_forwarder_config(directory, log_dir, instance, collector_host, collector_port))


def wait_for_port(host: str, port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until something accepts connections on host:port; RuntimeError if `process` exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rsyslogd exited with {process.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {host}:{port} within {seconds} s")
