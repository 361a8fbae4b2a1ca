"""The cluster's log shipping: each instance's day files reach the central folder unchanged (rsyslog
forwarders and collector), and the /logs viewer of every instance shows every instance's records."""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from tests.twooter_client import TwooterClient
from twooter.logviewer.query import format_hour, hour_of

pytestmark = pytest.mark.cluster
# Generous: the machine is shared. Shipping takes well under a second.
SECONDS = 60


def day_files(folder: Path, instance: str = "*") -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.glob(f"*.{instance}.log")}


def wait_until(condition, seconds: float = SECONDS) -> float | None:
    """Seconds until `condition()` held, None if it did not within `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def test_every_instances_records_reach_the_central_folder_unchanged_and_every_viewer_shows_them(cluster, tmp_path):
    found = cluster.status()
    central = Path(found["logs"])
    apps = {row["name"]: row["url"] for row in found["components"] if row["kind"] == "app"}
    sources = {row["name"].removesuffix("-forwarder"): Path(row["folder"])
               for row in found["components"] if row["kind"] == "log-forwarder"}
    assert sorted(sources) == sorted(apps)
    admin = cluster.admin("operator", tmp_path)
    tag = f"shipped-{secrets.token_hex(4)}"
    for name, url in apps.items():  # a 404 on each instance itself: an ERROR record in its own file
        assert requests.get(f"{url}/{tag}-{name}", timeout=30).status_code == 404
    hour = format_hour(hour_of(datetime.now(timezone.utc)))

    def shown_by(url: str) -> str:
        viewer = TwooterClient(url)
        viewer.http = admin.http  # the session cookie is signed with the key every instance shares
        return viewer.get(f"/logs/{hour}?q={tag}").text

    def every_viewer_shows_every_instance() -> bool:
        return all(f"/{tag}-{name}" in shown_by(url) for url in apps.values() for name in apps)

    delay = wait_until(every_viewer_shows_every_instance)
    print(f"every instance's record in every viewer after {delay} s")
    assert delay is not None, shown_by(next(iter(apps.values())))
    page = admin.get(f"/logs/{hour}").text  # through the edge, as an operator opens it
    for name in apps:
        assert f'<option value="{name}"' in page

    # Byte for byte. The instances keep writing (HAProxy's health checks), so
    # the two sides are compared until a moment when shipping has caught up.
    def identical() -> bool:
        shipped = {name: day_files(central, name) for name in apps}
        written = {name: day_files(folder, name) for name, folder in sources.items()}
        return all(written[name] and shipped[name] == written[name] for name in apps)

    assert wait_until(identical) is not None, {
        name: (sorted(day_files(central, name)), sorted(day_files(folder, name))) for name, folder in sources.items()}
    assert sorted(path.name for path in central.iterdir()) == sorted(
        file for folder in sources.values() for file in day_files(folder))
