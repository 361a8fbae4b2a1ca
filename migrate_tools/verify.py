"""Proof that nothing was lost: row counts and content checksums.

Both comparisons run inside the load's transaction, before the commit, so a
mismatch rolls everything back:

* read:   rows each source yielded, per table, equal the rows staged
          (as the plan accounted for them).
* target: what should be in the target (its rows before, plus the planned
          rows) equals what is there after the load: row counts and a
          content checksum per table.

* values: what each source's reader decoded equals what the target holds
          (direct path) or what was staged (staged path, whose plan the
          target check then follows). Both sides are written as value lines
          (see value_line): the reader's side from the decoded values, the
          database's side by PostgreSQL from the stored ones, so a fault in
          whatever formed the COPY lines between them shows.

Rows are digested by natural keys (usernames rather than ids), so the check
also catches a message or follow attached to the wrong user, a time off by
a microsecond, or a changed byte of text. A checksum is the sum of 64-bit
row digests: independent of row order. Each user's name is hashed once and
joined in, which keeps the digest of a million messages to a single pass.
"""
from __future__ import annotations

import functools
import hashlib
import operator
from binascii import hexlify
from dataclasses import dataclass
from itertools import islice
from typing import Iterable, Sequence

from . import rows


def name_hash(username: str, seed: int) -> str:
    """A user's name hashed with seed 0 (as author or follower) or 1 (as followed)."""
    return f"hashtextextended({username}, {seed})"


def name_hashes(users: str) -> str:
    """Each user's name hashed twice (as follower and as followed), once per user."""
    return f"SELECT id, {name_hash('username', 0)} AS h0, {name_hash('username', 1)} AS h1 FROM {users}"


def user_digest(u: str) -> str:
    return (f"(hashtextextended({u}.username, 0) # hashtextextended({u}.email, 2) "
            f"# hashtextextended({u}.pw_hash, 3) # {u}.is_admin::int)")


def message_digest(text: str, micros: str, flagged: str, author_hash: str) -> str:
    """`author_hash` is the author's name_hash seed 0: the digest names the author, not an id."""
    return f"(hashtextextended({text}, {micros} * 2 + {flagged}::int) # {author_hash})"


def follow_digest(follower_hash: str, followed_hash: str) -> str:
    """The follower's name_hash seed 0 and the followed user's seed 1."""
    return f"({follower_hash} # {followed_hash})"


TARGET_CONTENT = {
    "users": f"SELECT count(*), coalesce(sum({user_digest('u')}), 0) FROM users u",
    "messages": (
        "SELECT count(*), coalesce(sum("
        + message_digest("m.text", "(extract(epoch FROM m.pub_date) * 1000000)::bigint", "m.flagged", "a.h0")
        + f"), 0) FROM messages m JOIN ({name_hashes('users')}) a ON a.id = m.author_id"
    ),
    "follows": (
        f"SELECT count(*), coalesce(sum({follow_digest('a.h0', 'b.h1')}), 0) FROM follows f "
        f"JOIN ({name_hashes('users')}) a ON a.id = f.follower_id "
        f"JOIN ({name_hashes('users')}) b ON b.id = f.followed_id"
    ),
}


@dataclass
class Check:
    """One comparison: what should be against what is."""

    expected_rows: int
    actual_rows: int
    expected_checksum: int = 0
    actual_checksum: int = 0

    @property
    def ok(self) -> bool:
        return (self.expected_rows, self.expected_checksum) == (self.actual_rows, self.actual_checksum)

    def as_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def check_read(counts: list[dict[str, int]], tallies: dict[str, dict]) -> dict[int, dict[str, Check]]:
    """Per source and table: rows the source yielded against rows staged.

    The plan gives every staged row exactly one fate, so the rows it
    accounted for per source and table are the rows staged.
    """
    return {
        src: {table: Check(count[kind], getattr(tallies[table].get(src), "read", 0))
              for kind, table in rows.TABLE_OF_KIND.items()}
        for src, count in enumerate(counts)
    }


def target_content(cursor, tables=tuple(TARGET_CONTENT)) -> dict[str, tuple[int, int]]:
    """(rows, checksum) per table, as the target holds it now."""
    content = {}
    for table in tables:
        cursor.execute(TARGET_CONTENT[table])
        count, checksum = cursor.fetchone()
        content[table] = (int(count), int(checksum))
    return content


def check_target(before: dict, planned: dict, after: dict) -> dict[str, Check]:
    return {
        table: Check(before[table][0] + planned[table][0], after[table][0],
                     before[table][1] + planned[table][1], after[table][1])
        for table in TARGET_CONTENT
    }


# --- value lines: one exact, injective spelling of a row on both sides ---------

def _flag(value: bool) -> bytes:
    return b"t" if value else b"f"


def _text(value: str) -> bytes:
    return hexlify(value.encode("utf-8", errors="surrogatepass"))


_SPELLED = {bool: _flag, int: b"%d".__mod__, str: _text, bytes: hexlify}


def value_line(values: Sequence) -> bytes:
    """A row as PostgreSQL's COPY text output of VALUE_COLUMNS-style columns spells it:
    NULL as \\N, booleans t/f, integers in decimal, text as the hex of its UTF-8 bytes
    (str or bytes; nothing needs escaping, and no byte can be lost on the way).

    Bulk readers may spell their rows with a %-format of their own instead
    (direct.py); tests hold those to this one.
    """
    return b"\t".join([b"\\N" if value is None else _SPELLED[type(value)](value) for value in values]) + b"\n"


def hex_text(column: str) -> str:
    """PostgreSQL's side of value_line for a text column."""
    return f"encode(convert_to({column}, 'UTF8'), 'hex')"


def micros(column: str) -> str:
    """PostgreSQL's side for a timestamptz: integer microseconds since the epoch."""
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


def staged_value_line(row: rows.StagedRow) -> bytes:
    """A staged row's value line, led by its kind (as STAGED_VALUES reads the stage back)."""
    return row.kind.encode() + b"\t" + value_line(row[1:])


STAGED_VALUES = (f"COPY (SELECT kind, sid, r1, r2, {hex_text('t1')}, {hex_text('t2')}, {hex_text('t3')}, ts, flag "
                 "FROM {stage} WHERE src = {src}) TO STDOUT")


class Summed:
    """One side of a comparison: lines counted, their hashes summed (in any order).

    Also a file for copy_expert's output, which writes one row at a time.
    The hash is Python's own for bytes (SipHash, keyed afresh for each run:
    sums compare within one run only).
    """

    def __init__(self):
        self.rows = self.total = 0

    def add(self, lines: Iterable[bytes]) -> None:
        """Count and sum lines, a batch at a time: a whole table's lines never sit in memory."""
        lines = iter(lines)
        while batch := list(islice(lines, 5_000)):
            self.rows += len(batch)
            self.total += sum(map(hash, batch))

    def write(self, row: bytes) -> None:
        self.rows += 1
        self.total += hash(row)

    def against(self, there: "Summed") -> Check:
        """This side as expected, `there` as found."""
        return Check(self.rows, there.rows, self.total, there.total)


# md5 digests of value lines, which PostgreSQL computes too (Python's own hash
# is keyed per run, so only this side can compute it): a table is checked by
# one aggregate query instead of reading every row back. A line's digest is
# the first 8 bytes of its md5 as a signed 64-bit integer; sums are exact.
_first_8 = operator.itemgetter(slice(0, 8))
_signed = functools.partial(int.from_bytes, byteorder="big", signed=True)
_digest = operator.methodcaller("digest")


def md5_sum(lines: Iterable[bytes]) -> int:
    """The sum of the lines' digests; map() of C functions, no Python frame per line."""
    return sum(map(_signed, map(_first_8, map(_digest, map(hashlib.md5, lines)))))


class Digested(Summed):
    """One side of a comparison whose other side PostgreSQL sums (see digest_sql)."""

    def add(self, lines: Iterable[bytes]) -> None:
        lines = iter(lines)
        while batch := list(islice(lines, 5_000)):
            self.rows += len(batch)
            self.total += md5_sum(batch)

    def write(self, row: bytes) -> None:
        self.add((row,))


def line_sql(*fields: str, newline: bool = True) -> str:
    """PostgreSQL's spelling of a line of fields it spells as text (hex_text, micros,
    flag_text, integers, a text last), tab-separated, as UTF-8 bytes. The columns must be
    NOT NULL: a NULL makes the whole line NULL, which digest_sql does not count."""
    line = " || E'\\t' || ".join(fields) + (" || E'\\n'" if newline else "")
    return f"convert_to({line}, 'UTF8')"


def flag_text(column: str) -> str:
    return f"CASE WHEN {column} THEN 't' ELSE 'f' END"


def digest_sql(line: str, rows: str) -> str:
    """A query of two aggregates over `rows` (a FROM item): the rows, and the sum of
    the digests of their line_sql, as md5_sum gives it. A NULL line adds nothing, so
    its row cannot pass. The line stays inside md5(): a subquery naming it costs
    PostgreSQL twice as much."""
    return f"SELECT count(*), coalesce(sum(('x' || left(md5({line}), 16))::bit(64)::bigint), 0) FROM {rows}"


def digested(cursor, statement: str) -> Digested:
    """A query's one row of digest_sql, as the side found."""
    cursor.execute(statement)
    found = Digested()
    found.rows, found.total = (int(value) for value in cursor.fetchone())
    return found


def read_back(cursor, statement: str) -> Summed:
    """A COPY ... TO STDOUT statement's rows, summed."""
    received = Summed()
    cursor.copy_expert(statement, received, size=1 << 18)
    return received


def keys_check(cursor) -> Check:
    """Every user's stored username_key is names.name_key of its username (the app finds
    people by it), for the whole users table as it is now."""
    from twooter.names import name_key

    cursor.execute("SELECT id, username, username_key FROM users")
    users = cursor.fetchall()
    expected, there = Summed(), Summed()
    expected.add(value_line((user_id, name_key(username))) for user_id, username, _ in users)
    there.add(value_line((user_id, key)) for user_id, _, key in users)
    return expected.against(there)
