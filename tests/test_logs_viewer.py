"""/logs over HTTP with no JavaScript: access, hours, filters in the URL, paging by offsets,
tail, chart, raw lines — over real day files of several instances."""
from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.logfiles import in_the_current_hour
from tests.twooter_client import TwooterClient
from twooter import models
from twooter.logs import browse, records, settings
from twooter.logs.files import file_name, tidy
from twooter.logs.query import Query

HOUR = datetime(2030, 6, 15, 14, tzinfo=timezone.utc)
HOUR_URL = "/logs/14@15-06-2030"
ROW = re.compile(r'<tr class="log-row level-(\w+)"')


def write_records(folder: Path, instance: str, entries: list[records.Record], tail: bytes = b"") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(entries[0].time.date(), instance)
    with open(path, "ab") as handle:
        for entry in entries:
            handle.write(dataclasses.replace(entry, instance=instance).to_line())
        handle.write(tail)
    return path


def record(second: float, message: str, level: str = "INFO", instance: str = "web1", rid: str = "",
           hour: datetime = HOUR) -> records.Record:
    request = {"rid": rid, "method": "GET", "path": "/x", "status": 200, "ms": 1.0, "client": "127.0.0.1"} if rid else {}
    return records.Record(hour + timedelta(seconds=second), level, "twooter.test", message, instance, "", request)


def rows(html: str) -> list[str]:
    return [level.upper() for level in ROW.findall(html)]


def messages_in(html: str) -> list[str]:
    return re.findall(r'<td class="log-message"><pre>(.*?)</pre>', html, re.S)


def make_admin(app, client: TwooterClient, name: str = "operator") -> TwooterClient:
    client.register_and_login(name, "operator-pass")
    with app.app_context():
        models.grant_admin(name)
    return client


@pytest.fixture
def folder(app) -> Path:
    return settings.of(app).folder


@pytest.fixture
def admin(app, client) -> TwooterClient:
    return make_admin(app, client)


def test_anonymous_visitors_log_in_first_and_non_admins_get_403(app, server, make_client):
    anonymous = make_client()
    response = anonymous.get(HOUR_URL + "?info=false", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/logs/14@15-06-2030?info%3Dfalse"
    for path in ("/logs", HOUR_URL + "/raw", HOUR_URL + "/chart", HOUR_URL + "/new"):
        assert anonymous.get(path, allow_redirects=False).status_code == 302
    member = make_client()
    member.register_and_login("member", "pw")
    for path in ("/logs", HOUR_URL, HOUR_URL + "/raw", HOUR_URL + "/chart"):
        forbidden = member.get(path, allow_redirects=False)
        assert forbidden.status_code == 403 and "administrators only" in forbidden.text
    # Logging in with ?next comes back to the logs, as an admin.
    admin = make_client()
    admin.register("chief", "pw")
    with app.app_context():
        models.grant_admin("chief")
    landed = admin.post("/login?next=/logs/14@15-06-2030", {"username": "chief", "password": "pw"})
    assert landed.url == server.url + HOUR_URL and landed.status_code == 200


def test_logs_redirects_to_the_newest_hour_with_records(admin, folder):
    write_records(folder, "web1", [record(10, "older")])
    write_records(folder, "web2", [record(3600 * 3 + 5, "newest")])
    response = admin.get("/logs?info=false", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/logs/17@15-06-2030?info=false"


@pytest.mark.parametrize("bad", ["now", "14", "24@15-06-2030", "14@31-02-2026", "14@28-13-2026", "14-15-06-2030", "1@1-1-99999"])
def test_an_hour_that_is_not_a_date_is_a_404_naming_the_format(admin, bad):
    response = admin.get(f"/logs/{bad}")
    assert response.status_code == 404
    assert "&lt;hh&gt;@&lt;dd&gt;-&lt;mm&gt;-&lt;yyyy&gt;" in response.text
    assert "Traceback" not in response.text


def test_an_hour_without_records_says_so_in_utc(admin):
    page = admin.get("/logs/03@01-01-2020")
    assert page.status_code == 200
    assert "No records in this hour." in page.text
    assert "UTC" in page.text
    assert 'href="/logs/02@01-01-2020"' in page.text and 'href="/logs/04@01-01-2020"' in page.text


def test_instances_merge_newest_first_and_info_false_hides_info(admin, folder):
    write_records(folder, "web1", [record(1, "w1 first"), record(30, "w1 error", "ERROR"), record(50, "w1 last")])
    write_records(folder, "web2", [record(-60, "previous hour"), record(20, "w2 warn", "WARN"), record(40, "w2 info"),
                                   record(3600, "next hour")])
    page = admin.get(HOUR_URL).text
    assert messages_in(page) == ["w1 last", "w2 info", "w1 error", "w2 warn", "w1 first"]
    assert re.findall(r'<td class="log-instance">(\w+)</td>', page) == ["web1", "web2", "web1", "web2", "web1"]
    hidden = admin.get(HOUR_URL + "?info=false").text
    assert messages_in(hidden) == ["w1 error", "w2 warn"]
    assert 'id="toggle-info"' in hidden and 'aria-pressed="false"' in hidden
    only_web2 = admin.get(HOUR_URL + "?instance=web2&warn=false").text
    assert messages_in(only_web2) == ["w2 info"]


def test_search_request_id_and_minute_filters(admin, folder):
    write_records(folder, "web1", [
        record(5, "Timeout | talking to \"db\"", rid="aaaa1111"),
        record(6, "unrelated", rid="bbbb2222"),
        record(65, "later, same request ünï", rid="aaaa1111"),
        record(130, "third minute"),
    ])
    assert messages_in(admin.get(HOUR_URL + "?q=timeout").text) == ["Timeout | talking to &#34;db&#34;"]
    assert messages_in(admin.get(HOUR_URL + "?q=%C3%9CN%C3%8F").text) == ["later, same request ünï"]
    assert messages_in(admin.get(HOUR_URL + "?q=no-such-text").text) == []
    assert "No records match these filters" in admin.get(HOUR_URL + "?q=no-such-text").text
    by_request = admin.get(HOUR_URL + "?rid=aaaa1111").text
    assert messages_in(by_request) == ["later, same request ünï", "Timeout | talking to &#34;db&#34;"]
    assert messages_in(admin.get(HOUR_URL + "?minute=1").text) == ["later, same request ünï"]
    assert messages_in(admin.get(HOUR_URL + "?minute=0").text) == ["unrelated", "Timeout | talking to &#34;db&#34;"]


def test_htmx_gets_the_view_fragment_and_the_canonical_url(admin, folder):
    write_records(folder, "web1", [record(1, "one"), record(2, "two", "ERROR")])
    fragment = admin.get(HOUR_URL + "?q=&instance=&rid=&info=false", headers={"HX-Request": "true"})
    assert fragment.headers["HX-Push-Url"] == HOUR_URL + "?info=false"
    assert "<html" not in fragment.text and 'id="log-state" hx-swap-oob="true"' in fragment.text
    assert messages_in(fragment.text) == ["two"]


def test_paging_by_offsets_visits_every_record_once(admin, folder, app):
    total = 257
    for instance, offset in (("web1", 0.0), ("web2", 0.5)):
        write_records(folder, instance, [record(n * 10 + offset, f"{instance} #{n}",
                                                 "ERROR" if n % 10 == 0 else "INFO", instance) for n in range(total // 2 + 1)])
    expected = sorted(
        ((n * 10 + offset, f"{instance} #{n}") for instance, offset in (("web1", 0.0), ("web2", 0.5))
         for n in range(total // 2 + 1) if n * 10 + offset < 3600),
        reverse=True,
    )
    seen: list[str] = []
    url = HOUR_URL
    pages = 0
    while url:
        page = admin.get(url, headers={"HX-Request": "true"} if pages else {}).text
        seen += messages_in(page)
        more = re.search(r'<tr class="log-more" id="log-more" hx-get="([^"]+)"', page)
        url = more.group(1).replace("&amp;", "&") if more else None
        pages += 1
    assert seen == [message for _, message in expected]
    assert pages == -(-len(expected) // browse.PAGE_SIZE)
    # The errors alone page the same way.
    errors = browse.read_page(folder, Query(HOUR, hidden=frozenset({"INFO"})), size=7)
    assert [e.record.message for e in errors.entries] == [m for _, m in expected if int(m.split("#")[1]) % 10 == 0][:7]


def test_a_page_stops_early_on_a_rare_match_and_carries_on(folder, app):
    write_records(folder, "web1", [record(n * 0.01, "needle" if n in (5, 900) else "hay") for n in range(1000)])
    query = Query(HOUR, text="needle")
    first = browse.read_page(folder, query, budget=300)
    assert [e.record.message for e in first.entries] == ["needle"] and first.scanned == 300
    second = browse.read_page(folder, query, first.next_cursor, budget=300)
    third = browse.read_page(folder, query, second.next_cursor, budget=300)
    fourth = browse.read_page(folder, query, third.next_cursor, budget=300)
    assert [len(p.entries) for p in (second, third, fourth)] == [0, 0, 1]
    assert fourth.next_cursor is None


def test_hostile_lines_and_a_half_written_last_line_do_not_break_the_view(admin, folder):
    path = write_records(folder, "web1", [record(1, "before")], tail=b"garbage | not json\n\xff\xfe\x00 binary\n")
    not_utf8 = record(2, "bad XX utf8 | \"x\"\nsecond line").to_line().replace(b"XX", b"\xff\xfe")
    with open(path, "ab") as handle:
        handle.write(not_utf8 + b'{"t":"2030-06-15T14:00:03.000Z","lvl":"INFO","msg":"half')
    with open(path, "rb") as handle:
        assert handle.read().endswith(b'"msg":"half')
    page = admin.get(HOUR_URL)
    assert page.status_code == 200
    assert messages_in(page.text) == ["bad \ufffd\ufffd utf8 | &#34;x&#34;\nsecond line", "before"]
    raw = admin.get(HOUR_URL + "/raw").content
    assert raw.count(b"\n") == 2 and b"half" not in raw and b"garbage" not in raw


def test_tail_returns_only_what_was_written_since(admin, folder):
    in_the_current_hour(lambda hour: _tail_returns_only_what_was_written_since(admin, folder, hour))


def _tail_returns_only_what_was_written_since(admin, folder, hour):
    # The server's own request records land in this hour too: follow ours only.
    url = f"/logs/{hour:%H@%d-%m-%Y}?q=tailed"
    write_records(folder, "web1", [record(0, "tailed: already there", hour=hour)])
    page = admin.get(url).text
    poll = re.search(r'hx-get="(/logs/[^"]+/new\?[^"]+)"', page).group(1).replace("&amp;", "&")
    assert admin.get(poll, headers={"HX-Request": "true"}).status_code == 204
    write_records(folder, "web1", [record(1, "tailed: fresh INFO", hour=hour), record(2, "tailed: fresh ERROR", "ERROR", hour=hour)])
    write_records(folder, "web2", [record(3, "tailed: new instance", "WARN", instance="web2", hour=hour)])
    fresh = admin.get(poll, headers={"HX-Request": "true"}).text
    assert messages_in(fresh) == ["tailed: new instance", "tailed: fresh ERROR", "tailed: fresh INFO"]
    assert 'id="log-tail" hx-swap-oob="true"' in fresh
    next_poll = re.search(r'hx-get="(/logs/[^"]+/new\?[^"]+)"', fresh).group(1).replace("&amp;", "&")
    assert admin.get(next_poll, headers={"HX-Request": "true"}).status_code == 204
    filtered = admin.get(poll + "&info=false", headers={"HX-Request": "true"}).text
    assert messages_in(filtered) == ["tailed: new instance", "tailed: fresh ERROR"]


def test_raw_download_is_the_filtered_file_lines(admin, folder):
    lines = [record(1, "a | one"), record(2, "b two", "ERROR"), record(3, "c three")]
    write_records(folder, "web1", lines)
    response = admin.get(HOUR_URL + "/raw?info=false")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.content == lines[1].to_line()
    assert admin.get(HOUR_URL + "/raw").content == b"".join(entry.to_line() for entry in lines)


def test_minute_chart_counts_each_level_and_links_to_the_minute(admin, folder):
    write_records(folder, "web1", [record(5, "a"), record(6, "b", "ERROR"), record(7, "c", "ERROR"), record(61, "d")])
    svg = admin.get(HOUR_URL + "/chart")
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    assert "14:00 — 3 records, 1 INFO, 2 ERROR" in svg.text
    assert "14:01 — 1 records, 1 INFO" in svg.text
    assert 'href="/logs/14@15-06-2030?minute=1"' in svg.text
    assert svg.text.count('class="bar level-error"') == 1


@pytest.mark.parametrize("cursor", ["garbage", "web1:abc", "../x:12", "web1:-5"])
def test_a_forged_cursor_is_a_400(admin, cursor):
    response = admin.get(HOUR_URL + f"?cursor={cursor}")
    assert response.status_code == 400 and "log position" in response.text


def test_a_compressed_old_day_is_still_browsable(admin, folder):
    old_hour = datetime(2020, 1, 1, 9, tzinfo=timezone.utc)
    write_records(folder, "web1", [record(n, f"old {n}", hour=old_hour) for n in range(150)])
    tidy(folder, compress_after_days=2, delete_after_days=0, today=datetime(2020, 1, 5).date())
    assert [path.name for path in folder.glob("2020-01-01.*")] == ["2020-01-01.web1.log.gz"]
    first = admin.get("/logs/09@01-01-2020").text
    assert messages_in(first)[:2] == ["old 149", "old 148"] and len(messages_in(first)) == browse.PAGE_SIZE
    more = re.search(r'id="log-more" hx-get="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert messages_in(admin.get(more, headers={"HX-Request": "true"}).text)[-1] == "old 0"
    assert (folder / ".unpacked" / "2020-01-01.web1.log").exists()
