"""What a text field may hold: one set of rules for the web pages and the API, on every database.

A value is refused with a reason, never altered. Refused in every text field
(username, email, password, twoot): NUL, which PostgreSQL cannot store in
text (SQLite would keep it, so the two databases would disagree), and lone
surrogates (U+D800–U+DFFF, which a JSON body can carry), which are not
Unicode text and cannot be written as UTF-8. The username's own rules are in
names.py.
"""
from __future__ import annotations

MAX_TWOOT_LENGTH = 1000


def unstorable_text(value: str, label: str) -> str | None:
    """Why `value` cannot be stored as text, worded with `label` ("'content'", "A twoot"), or None."""
    if "\x00" in value:
        return f"{label} cannot contain NUL characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{label} is not valid Unicode text."
    return None


def twoot_problem(text: str, label: str) -> str | None:
    """Why `text` cannot be a twoot (too long, or unstorable), or None; emptiness is the caller's rule.

    `label` names the text in the reason: "A twoot" on the pages, "A message" in the API.
    """
    if len(text) > MAX_TWOOT_LENGTH:
        return f"{label} has at most {MAX_TWOOT_LENGTH} characters."
    return unstorable_text(text, label)
