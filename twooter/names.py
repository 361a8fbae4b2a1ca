"""What a username may be, its one canonical form, and the key two names are compared by.

Pure functions, no Flask and no database: the web, the simulator API and
migrate_tools all apply these same rules.

* Canonical form: Unicode NFC (UAX #15), so "José" typed with a precomposed
  "é" and with "e" + U+0301 is one name.
* Comparison key: the canonical form, case-folded (Unicode default case
  folding, `str.casefold`) and normalised again, so "Alice" and "alice" are
  one name, as on other microblogs.
* Refused: control, format, surrogate, private-use, unassigned and line or
  paragraph separator characters; Unicode's default-ignorable code points
  (zero-width characters, bidirectional overrides, variation selectors,
  fillers that render as nothing); whitespace other than U+0020 and any
  whitespace at either end; `/`; the path segments `.` and `..`.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MAX_USERNAME_LENGTH = 64

# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt,
# Unicode 15.1); Python's unicodedata does not expose the property.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# General categories that never belong in a name (Cc control, Cf format,
# Cs surrogate, Co private use, Cn unassigned, Zl/Zp line/paragraph separators).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

# Reasons, worded for the person registering.
TOO_LONG = f"The username is too long (at most {MAX_USERNAME_LENGTH} characters)"
EDGE_WHITESPACE = "The username cannot begin or end with a space"
BAD_CHARACTER = "The username cannot contain '/', control characters or invisible characters"
NOT_A_PATH_SEGMENT = "The username cannot be '.' or '..'"
RESERVED = "The username is reserved"


def canonical(name: str) -> str:
    """The form a name is stored and shown in: NFC."""
    return unicodedata.normalize("NFC", name)


def name_key(name: str) -> str:
    """The key two names are compared by: NFC, case-folded, NFC again.

    Two names are the same name exactly when their keys are equal.
    """
    return unicodedata.normalize("NFC", canonical(name).casefold())


def _is_ignorable(code_point: int) -> bool:
    return any(low <= code_point <= high for low, high in _DEFAULT_IGNORABLE)


def bad_character(name: str) -> str | None:
    """The first character a name may not hold, or None."""
    for ch in name:
        if ch == "/" or unicodedata.category(ch) in _REFUSED_CATEGORIES or _is_ignorable(ord(ch)):
            return ch
        if ch != " " and (ch.isspace() or unicodedata.category(ch) == "Zs"):
            return ch
    return None


def name_problem(name: str, reserved: Iterable[str] = ()) -> str | None:
    """Why `name` cannot be a new username, or None when it can.

    `name` should already be canonical (see `canonical`); `reserved` are names
    the app routes itself, compared by `name_key`. An empty name is the
    caller's case (MiniTwit words it "You have to enter a username").
    """
    if len(name) > MAX_USERNAME_LENGTH:
        return TOO_LONG
    if name != name.strip():
        return EDGE_WHITESPACE
    if bad_character(name) is not None:
        return BAD_CHARACTER
    if name in {".", ".."}:
        return NOT_A_PATH_SEGMENT
    if is_among(name, reserved):
        return RESERVED
    return None


def is_among(name: str, others: Iterable[str]) -> bool:
    """Whether `name` is the same name (equal `name_key`) as any of `others`."""
    key = name_key(name)
    return any(key == name_key(other) for other in others)


def same_key_groups(usernames: Iterable[str]) -> list[list[str]]:
    """The names that share a `name_key` with another name, grouped, in first-seen order.

    Each group lists at least two distinct stored names that are one name
    under these rules (e.g. ["Alice", "alice"]); an empty list when every key
    is unique.
    """
    by_key: dict[str, list[str]] = {}
    for username in usernames:
        by_key.setdefault(name_key(username), []).append(username)
    return [group for group in by_key.values() if len(group) > 1]


# The first path segments the app routes itself, and names commonly asked
# for at a site's root: a user so named would have no page. The app derives
# its list from its own routes (accounts.reserved_names); tools that run
# without the app, such as migrate_tools, use this one, and a test keeps the
# two the same.
RESERVED_NAMES = frozenset({
    "add_message", "admin", "api", "favicon.ico", "fllws", "health", "latest", "login", "logout", "logs",
    "metrics", "msgs", "openapi.json", "public", "register", "robots.txt", "static",
})


def name_problems(candidates: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """`name_problem` of many names at once: {name: reason} for the names that have one.

    The same answers as calling `name_problem` on each name, for a whole user
    table at a time (migrate_tools): each distinct character is judged by
    `bad_character` once, the reserved names' keys are computed once, and
    `name_problem` itself is asked only about names that may have a problem.
    """
    reserved = list(reserved)
    reserved_keys = {name_key(other) for other in reserved}
    refused: dict[str, bool] = {}
    found: dict[str, str] = {}
    for name in candidates:
        suspect = len(name) > MAX_USERNAME_LENGTH or name != name.strip() or name in {".", ".."}
        for ch in name if not suspect else ():
            if ch not in refused:
                refused[ch] = bad_character(ch) is not None
            if refused[ch]:
                suspect = True
                break
        if suspect or name_key(name) in reserved_keys:
            problem = name_problem(name, reserved)
            if problem is not None:
                found[name] = problem
    return found
