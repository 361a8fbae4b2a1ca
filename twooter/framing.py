"""Refuse requests whose body framing two HTTP parsers could read differently.

A proxy in front and the server behind it must agree on where a request
body ends; when they do not, the rest of one client's body can be read as
the start of another request (request smuggling). The body's end is told by
`Transfer-Encoding` or `Content-Length`, so only the unambiguous forms pass:

* `Transfer-Encoding`: one field whose value is exactly `chunked` (any case,
  surrounding spaces ignored), and only on HTTP/1.1;
* `Content-Length`: one field of decimal digits;
* never both.

Everything else is refused with 400 and the reason. Under `twooter serve`
the connection is closed after that answer (`twooter.serving`), so no byte
after the refused request is read as a request of its own; a WSGI app may
not set `Connection` itself.

The fields are taken as the client sent them when the server says so
(`twooter.serving` puts them under `FRAMING_FIELDS` in the WSGI environ,
because waitress consumes `Transfer-Encoding` and rewrites
`Content-Length` before the app runs); under any other WSGI server, from
what the environ shows.
"""
from __future__ import annotations

import re
from typing import Mapping

from flask import Flask, abort, request

# WSGI environ key: {"transfer-encoding": [field values], "content-length": [field values]}.
FRAMING_FIELDS = "twooter.framing_fields"
DIGITS = re.compile(r"[0-9]+")


def _fields_from_environ(environ: Mapping) -> dict[str, list[str]]:
    sent = environ.get(FRAMING_FIELDS)
    if sent is not None:
        return sent
    fields: dict[str, list[str]] = {"transfer-encoding": [], "content-length": []}
    if "HTTP_TRANSFER_ENCODING" in environ:
        fields["transfer-encoding"].append(environ["HTTP_TRANSFER_ENCODING"])
    if environ.get("CONTENT_LENGTH") not in (None, ""):
        fields["content-length"].append(environ["CONTENT_LENGTH"])
    return fields


def framing_problem(environ: Mapping) -> str | None:
    """Why this request's body framing is ambiguous, or None when it is not.

    `environ` is a WSGI environ. The answer is a sentence for the client.
    """
    fields = _fields_from_environ(environ)
    encodings, lengths = fields["transfer-encoding"], fields["content-length"]
    if encodings:
        if environ.get("SERVER_PROTOCOL") == "HTTP/1.0":
            return "Transfer-Encoding is not allowed on an HTTP/1.0 request."
        if len(encodings) > 1 or encodings[0].strip(" \t").lower() != "chunked":
            shown = ", ".join(encodings)
            return f"Transfer-Encoding must be exactly 'chunked', not {shown!r}."
        if lengths:
            return "A request may have Transfer-Encoding or Content-Length, not both."
    if len(lengths) > 1 or any("," in length for length in lengths):
        return "A request may have only one Content-Length."
    if lengths and not DIGITS.fullmatch(lengths[0].strip(" \t")):
        return f"Content-Length must be a number of bytes, not {lengths[0]!r}."
    return None


def refuse_ambiguous_framing() -> None:
    """Before any view reads the body: 400 with the reason (raises `BadRequest`)."""
    problem = framing_problem(request.environ)
    if problem is not None:
        abort(400, description=problem)


def init_app(app: Flask) -> None:
    """Check every request of `app` before its view runs."""
    app.before_request(refuse_ambiguous_framing)
