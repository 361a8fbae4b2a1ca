"""The `twooter` command as an operator runs it: a real process, a real port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

TWOOTER = Path(sys.executable).with_name("twooter")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_twooter(instance: Path, *args: str, database_url: str | None = None, **kwargs):
    env = {**os.environ, "TWOOTER_INSTANCE_PATH": str(instance)}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.Popen([str(TWOOTER), *args], env=env, **kwargs)


def wait_until_serving(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "twooter serve exited early"
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url} within {seconds} s")


def test_serve_migrates_a_fresh_database_and_make_admin_grants_the_flag(tmp_path, backend, request):
    database_url = request.getfixturevalue("postgres").url if backend == "postgresql" else None
    port = free_port()
    server = run_twooter(tmp_path, "serve", "--port", str(port), "--threads", "4", database_url=database_url)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base + "/public", server)
        session = requests.Session()
        session.post(base + "/register", data={"username": "chief", "email": "c@x.org",
                                                "password": "pw", "password2": "pw"}, timeout=5)
        assert "You were logged in" in session.post(
            base + "/login", data={"username": "chief", "password": "pw"}, timeout=5).text
    finally:
        server.terminate()
        server.wait(timeout=10)
    if backend == "sqlite":
        assert (tmp_path / "twooter.sqlite").exists()

    granted = run_twooter(tmp_path, "make-admin", "chief", database_url=database_url,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, _ = granted.communicate(timeout=60)
    assert granted.returncode == 0 and "chief is now an admin" in out

    missing = run_twooter(tmp_path, "make-admin", "nobody", database_url=database_url,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = missing.communicate(timeout=60)
    assert missing.returncode != 0 and "no user called 'nobody'" in err
