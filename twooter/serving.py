"""The waitress server `twooter serve` runs, with the request's framing fields kept for the app.

waitress reads a chunked body itself, then drops `Transfer-Encoding` from
the environ and replaces `Content-Length` with the decoded length, so the
app cannot tell `chunked` from `chunked, chunked`, nor see a
`Content-Length` sent beside it. The parser here keeps those fields as the
client sent them (`twooter.framing.FRAMING_FIELDS`), and a request the app
refuses for its framing has its connection closed after the answer.

waitress believes X-Forwarded-For from one proxy address (or from anyone).
Behind a redundant edge the requests come from either edge machine, so
`make_server` takes several addresses: waitress is told to believe any
peer, and the task drops the header first unless the peer is one of them.
"""
from __future__ import annotations

from flask import Flask
from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, get_header_lines
from waitress.rfc7230 import HEADER_FIELD_RE
from waitress.server import BaseWSGIServer
from waitress.task import WSGITask

from .framing import FRAMING_FIELDS, framing_problem

FRAMING_HEADERS = ("transfer-encoding", "content-length")
FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"


class FramingRecordingParser(HTTPRequestParser):
    """waitress's parser, also keeping every Transfer-Encoding and Content-Length field as sent."""

    framing_fields: dict[str, list[str]] | None = None

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)  # refuses what waitress itself cannot parse
        fields: dict[str, list[str]] = {name: [] for name in FRAMING_HEADERS}
        _first_line, _, header = header_plus.partition(b"\r\n")
        for line in get_header_lines(header):
            match = HEADER_FIELD_RE.match(line)
            name = match.group("name").decode("latin-1").lower()
            if name in fields:
                fields[name].append(match.group("value").strip(b" \t").decode("latin-1"))
        self.framing_fields = fields


class FramingTask(WSGITask):
    """waitress's WSGI task, handing the parser's framing fields to the app."""

    def get_environment(self) -> dict:
        environ = super().get_environment()
        environ.setdefault(FRAMING_FIELDS, self.request.framing_fields)
        trusted = getattr(self.channel.server, "trusted_proxies", None)
        if trusted is not None and environ.get("REMOTE_ADDR") not in trusted:
            environ.pop(FORWARDED_FOR, None)
        return environ

    def execute(self) -> None:
        # The app answers the refusal; what came after it on this connection is not trusted.
        if framing_problem(self.get_environment()) is not None:
            self.set_close_on_finish()
        super().execute()


class FramingChannel(HTTPChannel):
    parser_class = FramingRecordingParser
    task_class = FramingTask


def make_server(app: Flask, host: str, port: int, threads: int, trusted_proxies: tuple[str, ...] = (),
                **adjustments) -> BaseWSGIServer:
    """A waitress server for `app` on host:port (port 0: any free one), not yet running.

    `trusted_proxies`: the addresses whose X-Forwarded-For names the client
    (`("*",)`: any peer's); from every other peer the header is dropped.
    `adjustments` are further waitress settings.

    Call `.run()` to serve; `.effective_port` is the port it listens on.
    """
    # waitress takes one address; several are checked per request by FramingTask.
    several = len(trusted_proxies) > 1 and "*" not in trusted_proxies
    if trusted_proxies:
        adjustments.update(trusted_proxy="*" if several else trusted_proxies[0], trusted_proxy_count=1,
                           trusted_proxy_headers="x-forwarded-for")
    server = create_server(app, host=host, port=port, threads=threads, ident="twooter", **adjustments)
    server.channel_class = FramingChannel  # this server's connections only
    server.trusted_proxies = frozenset(trusted_proxies) if several else None
    return server
