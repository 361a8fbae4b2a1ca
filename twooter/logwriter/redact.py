"""Keep secrets out of log lines.

Two layers. Every secret the current request carries (its Authorization and
Cookie headers, each cookie value, password and token form fields) is
replaced wherever it appears, whatever the code that logged it wrote. And
anything shaped like `password=…`, `"token": "…"` or `Authorization: …` is
masked, for secrets that do not come from the request at hand.
"""
from __future__ import annotations

import re
from typing import Iterable

from flask import has_request_context, request

MASK = "[redacted]"
SECRET_NAME = r"(?:password\d?|passwd|pwd|secret(?:_key)?|token|csrf[_-]?token|authorization|cookie|set-cookie|session|api[_-]?key|pwd_hash|pw_hash)"
_QUOTED = re.compile(r'(["\']' + SECRET_NAME + r'["\']\s*:\s*)(["\'])(?:\\.|(?!\2).)*\2', re.IGNORECASE)
_PAIR = re.compile(r"(\b" + SECRET_NAME + r"=)[^&\s;,'\"]+", re.IGNORECASE)
_HEADER = re.compile(r"(\b(?:authorization|cookie|set-cookie|x-csrf-token)\s*:\s*)[^\r\n]+", re.IGNORECASE)
SECRET_FORM_FIELD = re.compile(r"^" + SECRET_NAME + r"$", re.IGNORECASE)
# Each masking pattern needs one of these words, so most lines are passed by one search.
_ANY_SECRET_NAME = re.compile(SECRET_NAME + r"|x-csrf-token", re.IGNORECASE)
_SECRET_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_X_CSRF_TOKEN", "HTTP_X_CSRFTOKEN",
                   "HTTP_PROXY_AUTHORIZATION")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Shorter values would mask ordinary words ("a", "on") all over the log.
MIN_SECRET_LENGTH = 4


def request_secrets() -> list[str]:
    """The secret values the current request carries, longest first."""
    if not has_request_context():
        return []
    # Read straight from the WSGI environ: most requests carry none of these,
    # and this runs on every request that logs anything.
    environ = request.environ
    found: list[str] = []
    for key in _SECRET_HEADERS:
        value = environ.get(key)
        if value:
            found.append(value)
            # "Basic abc=" — the credential alone may be logged too.
            found.extend(part for part in value.split(" ", 1)[1:] if part)
    if environ.get("HTTP_COOKIE"):
        found.extend(request.cookies.values())
    if request.method != "GET" and environ.get("CONTENT_TYPE", "").lower().startswith(_FORM_TYPES):
        for name, value in request.form.items(multi=True):
            if SECRET_FORM_FIELD.match(name):
                found.append(value)
    for name, value in request.args.items(multi=True):
        if SECRET_FORM_FIELD.match(name):
            found.append(value)
    return sorted({value for value in found if len(value) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    if not text:
        return text
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    if not _ANY_SECRET_NAME.search(text):
        return text
    text = _QUOTED.sub(lambda m: m.group(1) + m.group(2) + MASK + m.group(2), text)
    text = _PAIR.sub(lambda m: m.group(1) + MASK, text)
    return _HEADER.sub(lambda m: m.group(1) + MASK, text)


def redact_query(query: str) -> str:
    """A query string with the values of secret-named parameters masked."""
    return _PAIR.sub(lambda m: m.group(1) + MASK, query)
