"""The built wheel serves on its own, and /health answers without a database."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import requests

from tests.servers import LiveServer, free_port, wait_until_serving
from twooter import create_app

CHECKOUT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "instance", "build", "dist", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis", "out")


def build_wheel(into: Path) -> Path:
    """`pip wheel` on a copy of the source tree, so the checkout gains no build folders."""
    source = into / "source"
    shutil.copytree(CHECKOUT, source, ignore=NOT_SOURCE)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(into / "dist"), str(source)], check=True, timeout=600)
    (wheel,) = (into / "dist").glob("twooter-*.whl")
    return wheel


def test_the_wheel_installed_outside_the_checkout_migrates_and_serves_pages(tmp_path):
    wheel = build_wheel(tmp_path)
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    subprocess.run([str(environment / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    str(wheel)], check=True, timeout=900)
    # Nothing of the checkout may be importable: run from an empty folder.
    workdir = tmp_path / "srv"
    workdir.mkdir()
    located = subprocess.run(
        [str(environment / "bin" / "python"), "-c",
         "import twooter.config as c; print(c.shipped_folder('templates'))"],
        cwd=workdir, capture_output=True, text=True, check=True, timeout=60,
        env={"PATH": os.environ["PATH"]})
    assert Path(located.stdout.strip()).is_relative_to(environment)
    # The deploy/ templates travel with it, and render with their example values.
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    shipped = environment / "lib" / python / "site-packages" / "twooter" / "deploy"
    rendered = subprocess.run(
        [str(environment / "bin" / "python"), "-m", "twooter.cluster.render",
         str(shipped / "examples" / "patroni-db1.json"), "patroni/patroni.yml.j2"],
        cwd=workdir, capture_output=True, text=True, check=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert "synchronous_mode: true" in rendered.stdout and "use_pg_rewind: true" in rendered.stdout

    port = free_port()
    env = {"PATH": os.environ["PATH"], "TWOOTER_INSTANCE_PATH": str(workdir / "instance"),
           "TWOOTER_INSTANCE_NAME": "wheel"}
    server = subprocess.Popen([str(environment / "bin" / "twooter"), "serve", "--port", str(port)],
                              cwd=workdir, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base + "/health", server, seconds=60)
        page = requests.get(base + "/public", timeout=10)
        assert page.status_code == 200 and "Public Timeline" in page.text
        assert requests.get(base + "/static/css/style.css", timeout=10).status_code == 200
        assert requests.get(base + "/static/vendor/htmx-2.0.11.min.js", timeout=10).status_code == 200
        registered = requests.post(base + "/register", json={"username": "w", "email": "w@x.org", "pwd": "p"},
                                   timeout=10)
        assert registered.status_code == 204  # the tables exist: the shipped migrations ran
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert (workdir / "instance" / "twooter.sqlite").exists()


def test_health_answers_while_the_database_is_unreachable(tmp_path):
    closed = free_port()  # nothing listens there
    app = create_app({"INSTANCE_PATH": tmp_path / "instance", "TESTING": True,
                      "LOG_INSTANCE_NAME": "lonely",
                      "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg2://nobody:x@127.0.0.1:{closed}/none",
                      "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}}})
    with LiveServer(app) as live:
        health = requests.get(live.url + "/health", timeout=10)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "instance": "lonely"}
        assert health.headers["Cache-Control"] == "no-store"
        assert requests.head(live.url + "/health", timeout=10).status_code == 200
        # The same server's pages do need the database, and it is not there.
        assert requests.get(live.url + "/public", timeout=10).status_code >= 500
