"""Browser-side defences over HTTP: every kind of response carries the headers, and no
page's markup needs what the Content-Security-Policy forbids; the site's icon is served."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.test_logs_viewer import HOUR_URL, make_admin, record, write_records
from twooter.config import PROJECT_ROOT
from twooter.logs import settings

EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request.method} {response.url}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = sources
    return directives


def assert_defended(response) -> None:
    for header, value in EXPECTED.items():
        assert response.headers.get(header) == value, (header, response.url)
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]


def test_every_kind_of_response_carries_the_defences(client):
    client.register("bob")
    responses = [
        client.get("/public"),
        client.get("/login"),
        client.get("/bob"),
        client.get("/public", headers={"HX-Request": "true"}),  # a partial
        client.get("/nobody-at-all"),  # a 404 page
        client.get("/nobody-at-all", headers={"HX-Request": "true"}),  # a 404 fragment
        client.get("/latest"),  # the simulator's JSON
        client.get("/msgs", headers={"Authorization": "wrong"}),  # a JSON error
        client.get("/static/css/style.css"),
        client.get("/static/js/twooter.js"),
        client.get("/favicon.ico"),
        client.post("/add_message", {"text": "not logged in"}),  # refused
    ]
    assert {r.status_code for r in responses} >= {200, 401, 403, 404}
    for response in responses:
        assert_defended(response)
    client.register_and_login("alice")
    assert_defended(client.get("/"))
    for response in (client.add_message("hello"), client.follow("bob")):
        assert response.history, "a change answers with a redirect"
        for hop in [*response.history, response]:
            assert_defended(hop)


class InlineCode(HTMLParser):
    """Collects what a strict policy refuses: inline scripts, style attributes and elements, handlers."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in names
            if "src" not in names:
                self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            if name.startswith(("on", "hx-on", "data-hx-on")):
                self.found.append(f"{name}= on <{tag}>")
            if name in ("hx-vars",) or (name in ("hx-vals", "data-hx-vals") and (value or "").startswith("js:")):
                self.found.append(f"{name} needs eval on <{tag}>")
            if name in ("href", "src", "action") and (value or "").lower().startswith("javascript:"):
                self.found.append(f"javascript: URL on <{tag}>")
            if name.endswith("hx-trigger") and "[" in (value or ""):
                self.found.append(f"a trigger filter (eval) on <{tag}>")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def test_the_detector_sees_inline_code():
    html = ('<script>alert(1)</script><p style="color:red" onclick="x()">'
            '<form hx-on::after-request="y()"><div hx-trigger="click[ctrlKey]">')
    assert len(inline_code(html)) == 5


def test_no_page_or_fragment_carries_inline_code(app, client):
    client.register("bob")
    pages = ["/public", "/login", "/register", "/bob", "/nobody-at-all", "/public?before=abc"]
    client.register_and_login("alice")
    client.add_message("a twoot so that timelines have rows")
    pages += ["/", "/public", "/bob", "/alice"]
    make_admin(app, client, "operator")
    write_records(settings.of(app).folder, "web1", [record(1, "an info"), record(2, "an error", "ERROR")])
    pages += [HOUR_URL, HOUR_URL + "/chart", "/logs"]
    checked = 0
    for path in pages:
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(path, headers=headers)
            if "text/html" in response.headers.get("Content-Type", ""):
                assert inline_code(response.text) == [], (path, headers)
                checked += 1
    assert checked == 2 * len(pages)


@pytest.mark.parametrize("template", sorted(p.name for p in (PROJECT_ROOT / "templates").glob("*.html")))
def test_no_template_carries_inline_code(template):
    text = (PROJECT_ROOT / "templates" / template).read_text(encoding="utf-8")
    assert inline_code(text) == []


def test_the_icon_is_served_at_favicon_ico(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/vnd.microsoft.icon"
    assert response.content == Path(PROJECT_ROOT / "static" / "favicon.ico").read_bytes()
    # An ICO directory of one image, holding a PNG.
    assert response.content[:4] == b"\x00\x00\x01\x00"
    assert b"\x89PNG\r\n\x1a\n" in response.content
    page = client.get("/public").text
    assert '<link rel="icon" href="/favicon.ico"' in page
