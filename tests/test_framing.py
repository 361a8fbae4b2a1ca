"""Request framing over a raw socket against waitress: ambiguous bodies are refused, plain ones pass.

Each request is followed on the same connection by a second one; after a
refusal the server must close the connection instead of reading those bytes
as a request of their own (what a smuggled request would be).
"""
from __future__ import annotations

import http.client
import io
import json
import socket
from urllib.parse import urlencode

import pytest

from twooter import models
from twooter.framing import framing_problem

FOLLOWER = b"GET /latest HTTP/1.1\r\nHost: twooter\r\n\r\n"
READ_TIMEOUT = 30  # seconds; a healthy answer takes milliseconds


def exchange(port: int, data: bytes) -> list[tuple[int, bytes]]:
    """Send `data` on one connection, read until the server closes it; the (status, body) of every answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as connection:
        connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except socket.timeout:
            pass  # kept open: parse what came
    return parse_responses(received)


class _Unclosable(io.BytesIO):
    def close(self) -> None:
        """http.client closes its file after a `Connection: close` answer; the next answer is in it too."""


class _Bytes:
    """What http.client.HTTPResponse reads from: received bytes instead of a socket."""

    def __init__(self, data: bytes):
        self.stream = _Unclosable(data)

    def makefile(self, *_args, **_kwargs):
        return self.stream


def parse_responses(data: bytes) -> list[tuple[int, bytes]]:
    source = _Bytes(data)
    answers = []
    while source.stream.tell() < len(data):
        response = http.client.HTTPResponse(source)  # reads from the shared stream
        response.begin()
        answers.append((response.status, response.read()))
    return answers


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def api_registration(name: str) -> bytes:
    return json.dumps({"username": name, "email": f"{name}@example.org", "pwd": "framing-pass"}).encode()


def post(path: str, headers: bytes, body: bytes, version: bytes = b"HTTP/1.1",
         content_type: bytes = b"application/json") -> bytes:
    return (b"POST " + path.encode() + b" " + version + b"\r\nHost: twooter\r\nContent-Type: " + content_type
            + b"\r\n" + headers + b"\r\n" + body)


def registered(app, name: str) -> bool:
    with app.app_context():
        return models.user_by_name(name) is not None


REFUSED = {
    "chunked twice in one field": (b"Transfer-Encoding: chunked, chunked\r\n",
                                   "Transfer-Encoding must be exactly 'chunked', not 'chunked, chunked'."),
    "chunked in two fields": (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                              "Transfer-Encoding must be exactly 'chunked', not 'chunked, chunked'."),
    "a coding before chunked that is not one": (b"Transfer-Encoding: identity, CHUNKED\r\n", None),
    "an empty coding": (b"Transfer-Encoding: chunked,\r\n",
                        "Transfer-Encoding must be exactly 'chunked', not 'chunked,'."),
    "chunked with a Content-Length": (b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                                      "A request may have Transfer-Encoding or Content-Length, not both."),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_ambiguous_chunked_framing_is_refused_and_the_connection_closed(app, server, case):
    headers, reason = REFUSED[case]
    answers = exchange(server.port, post("/register", headers, chunked(api_registration("smuggler"))) + FOLLOWER)

    assert len(answers) == 1, "the bytes after a refused request were read as a request"
    status, body = answers[0]
    if reason is None:  # waitress itself refuses codings it does not know
        assert status == 501
    else:
        assert status == 400
        assert json.loads(body) == {"status": 400, "error_msg": reason}
    assert not registered(app, "smuggler")


def test_transfer_encoding_on_http_1_0_is_refused(app, server):
    body = chunked(api_registration("old"))
    request = post("/register", b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(body), body,
                   version=b"HTTP/1.0")
    [(status, answer)] = exchange(server.port, request + FOLLOWER)
    assert status == 400
    assert json.loads(answer)["error_msg"] == "Transfer-Encoding is not allowed on an HTTP/1.0 request."
    assert not registered(app, "old")


@pytest.mark.parametrize("lengths", [b"Content-Length: {n}\r\nContent-Length: {n}\r\n",
                                     b"Content-Length: {n}, {n}\r\n",
                                     b"Content-Length: {n}x\r\n",
                                     b"Content-Length: +{n}\r\n"],
                         ids=["two fields", "a list", "not a number", "a sign"])
def test_several_or_malformed_content_lengths_are_refused(app, server, lengths):
    body = api_registration("counted")
    answers = exchange(server.port, post("/register", lengths.replace(b"{n}", b"%d" % len(body)), body) + FOLLOWER)
    assert len(answers) == 1
    assert answers[0][0] == 400
    assert not registered(app, "counted")


def form_registration(name: str) -> bytes:
    fields = {"username": name, "email": f"{name}@example.org", "password": "framing-pass",
              "password2": "framing-pass"}
    return urlencode(fields).encode()


FORM = b"application/x-www-form-urlencoded"


@pytest.mark.parametrize("encoding", [b"chunked", b"Chunked", b"  CHUNKED\t"], ids=["lower", "title", "padded"])
def test_one_chunked_coding_is_read_and_the_connection_kept(app, server, encoding):
    name = f"chunked{len(encoding)}{encoding.strip().decode()}"
    request = post("/register", b"Transfer-Encoding: " + encoding + b"\r\n", chunked(form_registration(name)),
                   content_type=FORM)
    answers = exchange(server.port, request + b"GET /latest HTTP/1.1\r\nHost: twooter\r\nConnection: close\r\n\r\n")

    assert [status for status, _ in answers] == [302, 200]  # registered, then the next request on the line
    assert registered(app, name)


def test_one_content_length_is_read_and_the_connection_kept(app, server):
    body = form_registration("counted")
    request = post("/register", b"Content-Length: %d\r\n" % len(body), body, content_type=FORM)
    answers = exchange(server.port, request + b"GET /latest HTTP/1.1\r\nHost: twooter\r\nConnection: close\r\n\r\n")
    assert [status for status, _ in answers] == [302, 200]
    assert registered(app, "counted")


@pytest.mark.parametrize("environ, problem", [
    ({"SERVER_PROTOCOL": "HTTP/1.1", "HTTP_TRANSFER_ENCODING": "chunked, chunked"},
     "Transfer-Encoding must be exactly 'chunked', not 'chunked, chunked'."),
    ({"SERVER_PROTOCOL": "HTTP/1.1", "HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "12"},
     "A request may have Transfer-Encoding or Content-Length, not both."),
    ({"SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": "12, 12"}, "A request may have only one Content-Length."),
    ({"SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": "0x10"}, "Content-Length must be a number of bytes, not '0x10'."),
    ({"SERVER_PROTOCOL": "HTTP/1.1", "HTTP_TRANSFER_ENCODING": " Chunked "}, None),
    ({"SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": "12"}, None),
    ({"SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": ""}, None),
], ids=["chunked twice", "both", "a list", "hex", "one chunked", "one length", "no body"])
def test_under_another_wsgi_server_the_environ_is_checked(environ, problem):
    """Servers that pass the header through: no waitress fields in the environ, the same rules."""
    assert framing_problem(environ) == problem
