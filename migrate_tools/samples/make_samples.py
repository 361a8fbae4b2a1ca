"""Make the walkthrough's sample sources: three stages of one small community.

    .venv/bin/python -m migrate_tools.samples.make_samples [DIRECTORY]

Oldest first, overlapping in users as real stages do:
  minitwit.sqlite        the original MiniTwit (Werkzeug pbkdf2 hashes)
  inmemory-snapshot.json the in-memory era's snapshot (`twooter export` format)
  mssql-dump.sql         the MSSQL era, UTF-16 LE with BOM (C#-era SHA-256 hashes)

Every user's password is "<username>-password" in every stage. The data
holds one of each conflict the merge rules count (see migrate_tools/plan.py).
Output is byte-for-byte reproducible.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from .writers import csharp_sha256, werkzeug_pbkdf2, write_minitwit_sqlite, write_snapshot, write_tsql_dump

HERE = Path(__file__).resolve().parent


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def password(username: str) -> str:
    return f"{username}-password"


def _werkzeug(username: str) -> str:
    return werkzeug_pbkdf2(password(username), salt=f"{username}salt"[:16])


MINITWIT = {
    "users": [
        (1, "alice", "alice@minitwit.example", _werkzeug("alice")),
        (2, "bob", "bob@minitwit.example", _werkzeug("bob")),
        (3, "carol", "carol@minitwit.example", _werkzeug("carol")),
    ],
    "follows": [(1, 2), (1, 2), (2, 1), (3, 1), (2, 9)],  # a duplicate; 9 does not exist
    "messages": [
        (1, 1, "Hello, MiniTwit!", at("2012-05-01 09:00:00"), 0),
        (2, 2, "It's a 'quoted' twoot\nover two lines, with a tab\there", at("2012-05-01 09:05:00"), 0),
        (3, 3, "Ünïcødé and emoji 🐦✨ survive", at("2012-05-02 18:30:00"), 0),
        (4, 2, "", at("2012-05-03 08:00:00"), 0),  # empty text
        (5, 9, "from nobody", at("2012-05-03 09:00:00"), 0),  # missing author
        (6, 1, "flagged long ago", at("2012-05-04 10:00:00"), 1),
    ],
}

SNAPSHOT = {
    # The in-memory era numbered users afresh: ids differ, usernames match.
    "users": [
        (1, "bob", "bob@minitwit.example", _werkzeug("bob")),
        (2, "alice", "alice@minitwit.example", _werkzeug("alice")),
        (3, "dave", "dave@memory.example", _werkzeug("dave")),
    ],
    "follows": [(2, 1), (3, 2)],  # alice→bob again; dave→alice
    "messages": [
        (1, 2, "Hello, MiniTwit!", at("2012-05-01 09:00:00"), 0),  # alice's, again
        (2, 3, "Kept in memory, for now.", at("2016-02-10 12:00:00.250000"), 0),
        (3, 1, "Bob in the memory era: <b>not bold</b> & \"quoted\"", at("2016-02-11 07:45:00"), 0),
    ],
}

MSSQL = {
    "users": [
        (1, "alice", "alice@new.example", csharp_sha256(password("alice"))),  # a new email
        (2, "bob", "bob@minitwit.example", csharp_sha256(password("bob"))),
        (3, "dave", "dave@memory.example", csharp_sha256(password("dave"))),
        (4, "erin", "erin@mssql.example", csharp_sha256(password("erin"))),
        (5, "Zoë O'Brien", "zoe@mssql.example", csharp_sha256(password("Zoë O'Brien"))),
    ],
    "follows": [(4, 1), (1, 2), (3, 1), (4, 99)],  # alice→bob and dave→alice again; 99 missing
    "messages": [
        (1, 1, "Hello, MiniTwit!", at("2012-05-01 09:00:00"), 0),  # the same twoot, third time
        (2, 4, "SQL Server keeps 100 ns: this one has microseconds", at("2019-11-20 16:20:30.123456"), 0),
        (3, 5, "Line one\r\nline two, Windows style; GO\nGO\n-- not a comment", at("2019-11-21 08:00:00"), None),
        (4, None, "an orphan: the author column is NULL", at("2019-11-22 08:00:00"), 0),
        (5, 3, "dave, after the move to MSSQL", at("2019-12-01 00:00:00.000001"), 0),
    ],
}

EXPORTED_AT = at("2016-03-01 00:00:00")


def make(directory: Path = HERE) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "minitwit.sqlite", directory / "inmemory-snapshot.json", directory / "mssql-dump.sql"]
    write_minitwit_sqlite(paths[0], **MINITWIT)
    write_snapshot(paths[1], **SNAPSHOT, exported_at=EXPORTED_AT)
    write_tsql_dump(paths[2], **MSSQL, encoding="utf-16")
    return paths


if __name__ == "__main__":
    for path in make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
