"""The `twooter` command as an operator runs it: a real process, a real port."""
from __future__ import annotations

import subprocess

import requests

from tests.servers import free_port, run_twooter, wait_until_serving
from tests.twooter_client import TIMEOUT


def test_serve_migrates_a_fresh_database_and_make_admin_grants_the_flag(tmp_path, backend, request):
    database_url = request.getfixturevalue("postgres").url if backend == "postgresql" else None
    port = free_port()
    server = run_twooter(tmp_path, "serve", "--port", str(port), "--threads", "4", database_url=database_url)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base + "/public", server)
        session = requests.Session()
        session.post(base + "/register", data={"username": "chief", "email": "c@x.org",
                                                "password": "pw", "password2": "pw"}, timeout=TIMEOUT)
        assert "You were logged in" in session.post(
            base + "/login", data={"username": "chief", "password": "pw"}, timeout=TIMEOUT).text
    finally:
        server.terminate()
        server.wait(timeout=60)
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
