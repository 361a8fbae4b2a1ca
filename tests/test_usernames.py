"""One name, one person: canonical forms, case, invisible characters and reserved names,
on the web pages and the simulator API alike, on SQLite and PostgreSQL."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from html import unescape
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from tests.logfiles import read_records
from tests.servers import LiveServer, apps_sharing_one_database
from tests.test_simapi import Simulator
from twooter.data import tables as models
from twooter.extensions import db
from twooter.logwriter import settings

PRECOMPOSED = "Jos\u00e9"          # é as one code point (NFC)
DECOMPOSED = "Jose\u0301"          # e + COMBINING ACUTE ACCENT (NFD)
ZERO_WIDTH = "hun\u200bter"

# Names the rules refuse, each with a word of the reason the person sees.
REFUSED = {
    ZERO_WIDTH: "invisible",
    "bob\u202eevil": "invisible",        # right-to-left override
    "x\u2066y": "invisible",            # left-to-right isolate
    "soft\u00adhyphen": "invisible",
    "tab\there": "control",
    "bell\x07": "control",
    " lead": "begin or end with a space",
    "trail ": "begin or end with a space",
    "trail\u00a0": "begin or end with a space",
    ".": "'.' or '..'",
    "..": "'.' or '..'",
    "a/b": "'/'",
    "/": "'/'",
    "x" * 65: "too long",
}


@pytest.fixture
def sim(server) -> Simulator:
    return Simulator(server.url)


def test_a_name_in_another_unicode_form_is_already_taken(client, sim):
    assert "You were successfully registered" in client.register(PRECOMPOSED).text
    again = client.register(DECOMPOSED)
    assert again.status_code == 400
    assert "The username is already taken" in again.text
    api = sim.register(DECOMPOSED)
    assert api.status_code == 400 and api.json()["error_msg"] == "The username is already taken"


def test_a_name_is_stored_and_shown_in_its_canonical_form(client, sim):
    assert sim.register(DECOMPOSED).status_code == 204
    assert sim.post(PRECOMPOSED, "accented").status_code == 204
    (twoot,) = sim.messages().json()
    assert twoot["user"] == PRECOMPOSED
    assert "You were logged in" in client.login(DECOMPOSED, "secret").text
    page = client.get("/" + quote(DECOMPOSED))
    assert page.status_code == 200 and "accented" in page.text


@pytest.mark.parametrize("name, reason", REFUSED.items(), ids=lambda v: ascii(v)[:24])
def test_names_that_cannot_be_told_apart_or_reached_are_refused_with_a_reason(client, sim, name, reason):
    page = client.register(name)
    assert page.status_code == 400
    assert reason in unescape(page.text)
    assert "Traceback" not in page.text
    api = sim.register(name)
    assert api.status_code == 400, api.text
    assert reason in api.json()["error_msg"]
    assert client.login(name, "default").status_code == 401


def test_the_zero_width_name_does_not_register_beside_the_plain_one(client, sim):
    assert sim.register("hunter").status_code == 204
    assert sim.register(ZERO_WIDTH).status_code == 400
    assert "invisible" in client.register(ZERO_WIDTH).text
    assert client.get("/" + quote(ZERO_WIDTH)).status_code == 404


def test_names_differing_only_by_case_are_one_name_everywhere(client, make_client, sim):
    assert "You were successfully registered" in client.register("Alice", "pw").text
    for taken in ("alice", "ALICE", "aLiCe"):
        assert "The username is already taken" in client.register(taken).text
        assert sim.register(taken).json()["error_msg"] == "The username is already taken"
    # German sharp s folds to "ss": the same name, as Unicode case folding says.
    assert sim.register("Strauß").status_code == 204
    assert sim.register("STRAUSS").json()["error_msg"] == "The username is already taken"

    assert "You were logged in" in client.login("ALICE", "pw").text
    client.add_message("from Alice")
    page = client.get("/alice")
    assert page.status_code == 200 and "from Alice" in page.text

    fan = make_client()
    fan.register_and_login("fan")
    assert "You are now following &#34;Alice&#34;" in fan.follow("aLICE").text
    assert "from Alice" in fan.get("/").text

    assert sim.post("ALICE", "by the API").status_code == 204
    assert [m["content"] for m in sim.messages("alice").json()] == ["by the API", "from Alice"]
    assert sim.follow("FAN", "strauss").status_code == 204
    assert sim.follows("fan").json() == {"follows": ["Alice", "Strauß"]}
    assert sim.unfollow("fan", "ALICE").status_code == 204
    assert sim.follows("Fan").json() == {"follows": ["Strauß"]}


def test_reserved_names_compare_by_key(client, sim):
    for name in ("PUBLIC", "Login", "Robots.TXT", "ADMIN", "Api", "favicon.ico", "Metrics"):
        assert "The username is reserved" in client.register(name).text, name
        assert sim.register(name).json()["error_msg"] == "The username is reserved", name


def test_minitwit_texts_are_unchanged(client):
    assert "You have to enter a username" in client.register("").text
    assert "You have to enter a username" in client.register("   ").text
    client.register("known", "pw")
    assert "Invalid username" in client.login("unknown", "pw").text
    assert "Invalid password" in client.login("KNOWN", "wrong").text


# /health and /metrics are reserved because they are routes of their own (twooter/health.py,
# twooter/metrics.py) that answer 200; their other spellings are the same reserved names.
@pytest.mark.parametrize("path", ["/robots.txt", "/admin", "/api", "/ADMIN", "/Metrics", "/Health"])
def test_a_reserved_name_is_a_plain_404_that_logs_no_error(app, client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "There is no user" not in response.text
    assert "Traceback" not in response.text
    assert client.get(path + "/follow").status_code in (401, 404)
    records = [r for r in read_records(settings.of(app).folder)
               if r.logger == "twooter.requests" and r.request.get("path") == path]
    assert [r.level for r in records] == ["INFO"]
    assert "reserved name" in records[0].message


def test_the_api_never_calls_a_reserved_name_an_unknown_user(app, sim):
    sim.register("walker")
    for response in (sim.messages("robots.txt"), sim.post("admin", "x"), sim.follows("api"),
                     sim.follow("walker", "metrics"), sim.follow("health", "walker")):
        assert response.status_code == 404
        assert "There is no user" not in response.json()["error_msg"]
    unknown = sim.messages("nobody")
    assert unknown.json()["error_msg"] == "There is no user called 'nobody'."
    levels = {r.request["path"].split("?")[0]: r.level for r in read_records(settings.of(app).folder)
              if r.logger == "twooter.requests" and r.request.get("status") == 404}
    assert levels["/msgs/nobody"] == "ERROR"
    assert levels["/msgs/robots.txt"] == levels["/fllws/walker"] == "INFO"


def test_forms_of_one_name_registered_at_once_on_two_instances_make_one_user(backend, tmp_path, request):
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    first, second = apps_sharing_one_database(backend, tmp_path, postgres)
    forms = ["Zoë", "zoë", "ZOË", "Zoe\u0308", "zoe\u0308", "ZOE\u0308"] * 2
    with LiveServer(first) as one, LiveServer(second) as two:
        def register(i: int):
            return Simulator((one.url, two.url)[i % 2]).register(forms[i])

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(register, range(len(forms))))
        assert sorted(a.status_code for a in answers) == [204] + [400] * (len(forms) - 1)
        assert all(a.json()["error_msg"] == "The username is already taken"
                   for a in answers if a.status_code == 400)
        with first.app_context():
            (stored,) = db.session.execute(sa.select(models.User.username)).scalars().all()
    assert stored in {"Zoë", "zoë", "ZOË"}  # NFC: the combining forms are stored precomposed
