"""One original-MiniTwit SQLite file into an empty target, straight into the app's tables.

The staged path copies every row twice, into a staging table and then into
the app's table, so that any mix of sources and targets merges by one plan.
The commonest migration is simpler: one MiniTwit file into a new database.
Then only users are staged and planned (they are few, and carry the merge
rules); follows and messages go by COPY straight from SQLite queries that
map authors through the plan's user map and leave out the rows the rules
skip, and the copies the rules merge are deleted afterwards. The rules and
the report are the staged path's; message ids are the file's own (unique
there, and an empty target has none to clash with).

Verification compares the file's values with what is there, never with
the lines that carried them. While PostgreSQL builds indexes, the rows the
rules send are read again from SQLite as plain values (text as its bytes)
and spelled as lines in Python by one bound %-format per query; the
follows are read back by COPY as value lines (verify.value_line) and hash
sums compared (verify.Summed); for the million messages PostgreSQL sums
md5 digests of its own lines instead (verify.Digested), so they are not
read back. The merged copies, read back by the DELETE that removes them,
are subtracted. The user map is checked against the file's usernames the
same way.
"""
from __future__ import annotations

import io
import operator
import re
import sqlite3
from binascii import hexlify
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from . import plan, rows, staging, verify
from .progress import Quiet
from .report import Report, SourceReport
from .sources import Source
from .sources.base import CHUNK_ROWS
from .sources.sqlite import MiniTwitSqliteSource

# PostgreSQL's `integer` ids, and the years both SQLite's datetime() and
# PostgreSQL's output write as four plain digits (0001–9999).
LARGEST_ID = 2**31 - 1
EARLIEST, LATEST = -62135596800, 253402300799

# The follows are read ahead while PostgreSQL indexes the messages, up to
# this much (500,000 follows take about 6 MB); the rest streams as usual.
READ_AHEAD_BYTES = 16 * 2**20

# The session renders times as the lines do: '2012-01-01 00:00:37+00'.
SESSION = ("SET TIME ZONE 'UTC'", "SET DateStyle = 'ISO, YMD'")

# The queries below name source users through {user:column} fields, which
# UserIds fills in: a join with the plan's map, or, when the plan kept the
# file's ids 1..n as they were, a range check (the common case, and cheaper).
#
# Follows and messages whose users the plan kept, as COPY lines. A message
# is sent when the staged plan's skip rules (plan.MESSAGE_SKIP_RULES) would
# not skip it: a known author ({known}), and {sent}.
SENT_MESSAGE = plan.meets_none(plan.MESSAGE_SKIP_RULES, unless=("missing_author",), text="m.text", time="m.pub_date")
FOLLOW_LINES = """
SELECT CAST(printf('%d\t%d\n', {user:f.who_id}, {user:f.whom_id}) AS BLOB)
FROM follower f {joins} WHERE {known}
ORDER BY f.rowid
"""
MESSAGE_LINES = """
SELECT CAST(printf('%d,%d,"%w",%s+00,%s\n', m.message_id, {user:m.author_id}, m.text,
                   datetime(m.pub_date, 'unixepoch'), CASE WHEN m.flagged != 0 THEN 't' ELSE 'f' END) AS BLOB)
FROM message m {joins} WHERE {known} AND {sent}
ORDER BY m.message_id
"""
WRITE_FOLLOWS = "COPY follows (follower_id, followed_id) FROM STDIN"
WRITE_MESSAGES = "COPY messages (id, author_id, text, pub_date, flagged) FROM STDIN (FORMAT csv)"

# Verification: the file's values as SQLite holds them against the tables.
# Follows are read back as value lines (verify.value_line). Messages, a
# million rows, are summed by their digest lines (verify.digest_sql) on both
# sides instead: PostgreSQL sums its own (READ_MESSAGES), so the table is
# never read back, and this thread waits on the server instead of contending
# with the worker for the interpreter. A digest line is (id, author, time in
# microseconds, t/f, text): the text last, as its bytes (never through
# SQLite's text functions, whose printf ends a text at a NUL), so no field
# needs hex or escapes to keep the line one row's, and map() can spell a
# fetched row with one bound %-format, without a Python frame per row.
MESSAGE_LINE = verify.line_sql("{m}id", "{m}author_id", verify.micros("{m}pub_date"), verify.flag_text("{m}flagged"),
                               "{m}text", newline=False)
READ_FOLLOWS = "COPY (SELECT follower_id, followed_id FROM follows) TO STDOUT"
READ_MESSAGES = verify.digest_sql(MESSAGE_LINE.format(m=""), "messages")
FOLLOW_VALUES = "SELECT {user:f.who_id}, {user:f.whom_id} FROM follower f {joins} WHERE {known}"
MESSAGE_DECODED = """
SELECT m.message_id, {user:m.author_id}, m.pub_date * 1000000,
       CAST(CASE WHEN m.flagged != 0 THEN 't' ELSE 'f' END AS BLOB), CAST(m.text AS BLOB)
FROM message m {joins} WHERE {known} AND {sent}
"""

# Why rows were left out, with the staged plan's precedence of reasons
# (asked only when some were). The map's join, so unknown users show.
FOLLOW_SKIP = plan.skip_reason(plan.FOLLOW_SKIP_RULES, follower="a.uid", followed="b.uid")
FOLLOW_SKIPS = f"""
SELECT {FOLLOW_SKIP}, count(*)
FROM follower f LEFT JOIN umap a ON a.sid = f.who_id LEFT JOIN umap b ON b.sid = f.whom_id
WHERE {FOLLOW_SKIP} IS NOT NULL
GROUP BY 1
"""
MESSAGE_SKIP = plan.skip_reason(plan.MESSAGE_SKIP_RULES, author="u.uid", text="m.text", time="m.pub_date")
MESSAGE_SKIPS = f"""
SELECT {MESSAGE_SKIP}, count(*)
FROM message m LEFT JOIN umap u ON u.sid = m.author_id
WHERE {MESSAGE_SKIP} IS NOT NULL
GROUP BY 1
"""
# Each user id the map hands out with the file's username for it, as the
# target's users read back: one line per user there, if the map is right.
MAPPED_NAMES = "SELECT DISTINCT {user:s.user_id}, CAST(s.username AS BLOB) FROM user s {joins} WHERE {known}"
READ_NAMES = f"COPY (SELECT id, {verify.hex_text('username')} FROM users) TO STDOUT"

# Copies: the (author, time) pairs more than one sent message has (copies
# share them), as COPY lines. They are usually few, and usually found sooner
# in the file's own order: whether its times only grow in it (as they are
# written; then no two messages share one). Mapping can only add copies when
# it merges users, so the file's answer stands when the plan kept its ids.
# The follows' copies are found by PostgreSQL (DELETE_FOLLOW_COPIES).
TIMES = "SELECT pub_date FROM message WHERE pub_date IS NOT NULL ORDER BY message_id"
# Values the lines cannot carry: times with fractions of a second or years
# outside 0001–9999, and ids that are not integers (which the staged path
# refuses, naming the row, where the lines would skip them).
ODD_VALUES = f"""
SELECT (SELECT count(*) FROM message
        WHERE (pub_date IS NOT NULL AND (typeof(pub_date) <> 'integer'
                                         OR pub_date NOT BETWEEN {EARLIEST} AND {LATEST}))
           OR typeof(author_id) NOT IN ('integer', 'null'))
     + (SELECT count(*) FROM follower
        WHERE typeof(who_id) NOT IN ('integer', 'null') OR typeof(whom_id) NOT IN ('integer', 'null'))
"""
SHARED_TIMES = """
SELECT CAST(printf('%d\t%s+00\n', {user:m.author_id}, datetime(m.pub_date, 'unixepoch')) AS BLOB)
FROM message m {joins} WHERE {known} AND {sent}
GROUP BY 1 HAVING count(*) > 1
"""

# Later copies go, the first (in the file's order, which the COPY kept) stays.
# One hash aggregate over the follows: cheaper for PostgreSQL right after
# their COPY than for SQLite, whose thread is the busier one by then.
DELETE_FOLLOW_COPIES = """
COPY (
    DELETE FROM follows f USING (
        SELECT follower_id, followed_id, min(ctid) AS first
        FROM follows GROUP BY 1, 2 HAVING count(*) > 1
    ) c
    WHERE f.follower_id = c.follower_id AND f.followed_id = c.followed_id AND f.ctid <> c.first
    RETURNING f.follower_id, f.followed_id
) TO STDOUT
"""
SHARED_TIMES_TABLE = "CREATE TEMP TABLE shared_times (author_id integer, pub_date timestamptz) ON COMMIT DROP"
DELETE_MESSAGE_COPIES = f"""
WITH gone AS (
    DELETE FROM messages m USING (
        SELECT id FROM (
            SELECT id, row_number() OVER (PARTITION BY author_id, pub_date, text COLLATE "C" ORDER BY id) AS copy
            FROM messages WHERE (author_id, pub_date) IN (SELECT author_id, pub_date FROM shared_times)
        ) numbered WHERE copy > 1
    ) c
    WHERE m.id = c.id
    RETURNING m.*
)
{verify.digest_sql(MESSAGE_LINE.format(m=""), "gone")}
"""


class UserIds:
    """How the queries above turn a source user id into the target's, or leave the row out."""

    def __init__(self, connection: sqlite3.Connection, cursor):
        """The map of source 0 from the plan (plan_user_map), streamed into the file's connection."""
        cursor.execute("SELECT count(*), min(sid), max(sid), count(*) FILTER (WHERE sid <> user_id) "
                       "FROM plan_user_map WHERE src = 0")
        users, lowest, highest, moved = cursor.fetchone()
        # The plan kept ids 1..n unchanged: then a user is known when its id is in that range.
        self.kept_up_to = users if moved == 0 and (users == 0 or (lowest, highest) == (1, users)) else None
        connection.execute("CREATE TEMP TABLE umap (sid INTEGER PRIMARY KEY, uid INTEGER NOT NULL)")
        cursor.execute("SELECT sid, user_id FROM plan_user_map WHERE src = 0")
        while batch := cursor.fetchmany(CHUNK_ROWS):
            connection.executemany("INSERT INTO umap VALUES (?, ?)", batch)

    def keeps(self, source_id) -> bool:
        """For a plan that kept the ids 1..n: whether the id names one of them (as in sql())."""
        return type(source_id) is int and 1 <= source_id <= self.kept_up_to

    def sql(self, query: str) -> str:
        query = query.replace("{sent}", SENT_MESSAGE)
        columns = re.findall(r"\{user:([\w.]+)\}", query)
        if self.kept_up_to is not None:
            # typeof(): a REAL such as 1.5 is in range but names no user, as the join would say.
            known = " AND ".join(f"typeof({c}) = 'integer' AND {c} BETWEEN 1 AND {self.kept_up_to}"
                                 for c in columns) or "1"
            query = query.replace("{joins}", "")
        else:
            aliases = {c: f"map{i}" for i, c in enumerate(columns)}
            joins = " ".join(f"JOIN umap {a} ON {a}.sid = {c}" for c, a in aliases.items())
            query = query.replace("{joins}", joins)
            known = "1"
            for column, alias in aliases.items():
                query = query.replace(f"{{user:{column}}}", f"{alias}.uid")
        query = query.replace("{known}", known)
        return re.sub(r"\{user:([\w.]+)\}", r"\1", query)


def applies(sources: list[Source], target_counts: dict[str, int]) -> bool:
    """Worth trying: a lone MiniTwit file and an empty target (fits() has the last word)."""
    return (len(sources) == 1 and isinstance(sources[0], MiniTwitSqliteSource)
            and not any(target_counts.values()))


def fits(connection: sqlite3.Connection) -> bool:
    """Whether the lines above carry this file exactly, as far as a glance tells
    (the values are checked while the plan runs); otherwise the staged path takes it."""
    if connection.execute("PRAGMA encoding").fetchone()[0] != "UTF-8":
        return False
    # message_id must be the rowid (unique, never NULL), as MiniTwit declares it.
    declared = {row[1]: (row[2].upper(), row[5]) for row in connection.execute("PRAGMA table_info(message)")}
    if declared.get("message_id") != ("INTEGER", 1):
        return False
    # Two queries: SQLite reads one end of the rowid for a lone min() or max(), but scans for both.
    low = connection.execute("SELECT min(message_id) FROM message").fetchone()[0]
    high = connection.execute("SELECT max(message_id) FROM message").fetchone()[0]
    return low is None or (low >= 1 and high <= LARGEST_ID)


def _decoded(cursor: sqlite3.Cursor, spell, summed: verify.Summed | None = None) -> verify.Summed:
    """A query's rows as value lines, `spell` turning one row into its line, summed
    (by `summed`, a fresh verify.Summed unless given)."""
    summed = summed if summed is not None else verify.Summed()
    while batch := cursor.fetchmany(CHUNK_ROWS):
        summed.add(map(spell, batch))
    return summed


# The lines of each query's rows, as bound %-formats (tests hold them to
# MESSAGE_LINE and verify.value_line): a follow's value line, a message's digest line.
follow_line = b"%d\t%d\n".__mod__
message_line = b"%d\t%d\t%d\t%s\t%s".__mod__


def name_line(user_id: int, name: bytes) -> bytes:
    return b"%d\t%s\n" % (user_id, hexlify(name))


class SentLines(staging.CopyStream):
    """A query's COPY lines for copy_expert, counted on the way."""

    def __init__(self, connection: sqlite3.Connection, query: str, progress, table: str):
        self.rows = 0
        self.connection, self.query, self.progress, self.table = connection, query, progress, table
        self.cursor = connection.execute(query)
        self.ahead: deque[bytes] = deque()
        self.complete = False  # every line is in `ahead`: sending needs the file no more

    def describe_line(self, number: int) -> str | None:
        if self.table != "messages":
            return None  # follow lines hold two integers SQLite wrote: nothing to refuse
        (line,) = self.connection.execute(f"{self.query} LIMIT 1 OFFSET ?", (number - 1,)).fetchone()
        return f"table message, message_id {int(line.split(b',', 1)[0])}"

    def read_ahead(self, budget: int) -> None:
        """Fetch up to `budget` bytes now (from another thread, while PostgreSQL is busy)."""
        while budget > 0 and (data := self._fetch()):
            self.ahead.append(data)
            budget -= len(data)
        self.complete = budget > 0

    def next_data(self) -> bytes:
        data = self.ahead.popleft() if self.ahead else b"" if self.complete else self._fetch()
        self.progress(self.table, self.rows, self.rows, None)
        return data

    def _fetch(self) -> bytes:
        lines = _next_lines(self.cursor)
        self.rows += len(lines)
        return b"".join(lines)


def _values(connection: sqlite3.Connection, source: MiniTwitSqliteSource) -> tuple[bool, bool]:
    """(whether every value fits the lines, whether the times only grow in the file's order);
    raises SourceError for a value the target cannot store at all."""
    source.check_values(connection)
    odd = connection.execute(ODD_VALUES).fetchone()[0]
    return odd == 0, _always_growing(connection.execute(TIMES))


def _read_and_skipped(connection: sqlite3.Connection, table: str, skips: str, sent: SentLines
                      ) -> tuple[int, dict[str, int]]:
    """Rows the file's table holds, and why some were not sent (asked only then)."""
    read = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return read, dict(connection.execute(skips).fetchall()) if read != sent.rows else {}


def _copies(connection: sqlite3.Connection, users: UserIds, follows: SentLines, growing: bool) -> list[bytes]:
    """What PostgreSQL needs from the file next, asked while it indexes the messages:
    the follows read ahead, and the keys of the message copies to delete (see _delete_message_copies)."""
    follows.read_ahead(READ_AHEAD_BYTES)
    return [] if growing and users.kept_up_to is not None else _lines(connection, users.sql(SHARED_TIMES))


def _file_facts(connection: sqlite3.Connection, users: UserIds, messages: SentLines,
                stored_as: dict[bytes, bytes]) -> dict:
    """The rest of the file's side of the account, asked while PostgreSQL indexes the
    messages and reads them back.

    `stored_as`: the file's usernames the plan renamed, with their new names.
    """
    return {
        "messages": _read_and_skipped(connection, "message", MESSAGE_SKIPS, messages),
        "names": _decoded(connection.execute(users.sql(MAPPED_NAMES)),
                          lambda values: name_line(values[0], stored_as.get(values[1], values[1]))),
        "message values": _decoded(connection.execute(users.sql(MESSAGE_DECODED)), message_line, verify.Digested()),
        "follow values": _decoded(connection.execute(users.sql(FOLLOW_VALUES)), follow_line),
    }


def _always_growing(cursor: sqlite3.Cursor) -> bool:
    """Whether each value is larger than the one before, read in batches (memory stays flat)."""
    previous = None
    while batch := _next_lines(cursor):
        if previous is not None and batch[0] <= previous:
            return False
        if not all(map(operator.lt, batch, batch[1:])):
            return False
        previous = batch[-1]
    return True


def _next_lines(cursor: sqlite3.Cursor) -> list:
    """The next batch of a one-column query's values; empty at the end."""
    return [value for (value,) in cursor.fetchmany(CHUNK_ROWS)]


def _lines(connection: sqlite3.Connection, query: str) -> list[bytes]:
    return [line for (line,) in connection.execute(query)]


def _tally(skipped: dict[str, int], sent: int, merged: int) -> plan.TableTally:
    tally = plan.TableTally(read=sent + sum(skipped.values()), written=sent - merged, merged=merged)
    for fate, count in skipped.items():
        tally.add_fate(fate, count)
    return tally


def _delete_message_copies(cursor, shared_times: list[bytes]) -> verify.Summed:
    """Delete the later copies among the messages with these (author, time) lines;
    returns them as digested (verify.digested)."""
    if not shared_times:
        return verify.Summed()
    cursor.execute(SHARED_TIMES_TABLE)
    cursor.copy_expert("COPY shared_times FROM STDIN", io.BytesIO(b"".join(shared_times)))
    cursor.execute("ANALYZE shared_times")
    return verify.digested(cursor, DELETE_MESSAGE_COPIES)


def _load_follows(cursor, source: MiniTwitSqliteSource, follows: SentLines, rebuild: list[str]
                  ) -> tuple[verify.Summed, verify.Summed]:
    """COPY the follows, delete their copies, rebuild their keys; returns (the copies
    deleted, the table read back), as value lines summed."""
    staging.copy_in(cursor, WRITE_FOLLOWS, follows, source)
    merged = verify.read_back(cursor, DELETE_FOLLOW_COPIES)
    plan.rebuild(cursor, rebuild)
    return merged, verify.read_back(cursor, READ_FOLLOWS)


def _table_check(decoded: verify.Summed, merged: verify.Summed, there: verify.Summed) -> verify.Check:
    """The rows the rules send, from the file's values, less the copies merged away, against the table."""
    return verify.Check(decoded.rows - merged.rows, there.rows, decoded.total - merged.total, there.total)


def _names_check(cursor, names: verify.Summed) -> verify.Check:
    """Every mapped user id belongs, in the target, to the file's user of that name."""
    return names.against(verify.read_back(cursor, READ_NAMES))


def load(cursor, source: MiniTwitSqliteSource, report: Report, progress: Quiet) -> bool:
    """Load the file as described above; False (nothing done) when it does not fit."""
    with source.reading(checked=False) as connection:  # checked in the worker below
        if not fits(connection):
            return False
        cursor.execute("SAVEPOINT direct_load")
        for setting in SESSION:
            cursor.execute(setting)
        progress.source(source.describe())
        counts = staging.copy_source(cursor, 0, source, source.chunks_from(connection, progress.update, rows.USER))
        value_check = staging.check_values(cursor, 0, source)
        progress.phase("planning users, writing follows and messages")
        # SQLite answers what it can while PostgreSQL works (one question at a time).
        with ThreadPoolExecutor(max_workers=1) as worker:
            asked = worker.submit(_values, connection, source)
            user_tallies, planned_users, report.renames = plan.plan_users(cursor, joined=False)  # map read once
            values_fit, growing = asked.result()
            if not values_fit:
                cursor.execute("ROLLBACK TO SAVEPOINT direct_load")
                return False
            users = UserIds(connection, cursor)
            rebuild = {table: plan.set_aside_indexes(cursor, table) for table in ("follows", "messages")}
            sent = {"messages": SentLines(connection, users.sql(MESSAGE_LINES), progress.update, "messages")}
            staging.copy_in(cursor, WRITE_MESSAGES, sent["messages"], source)
            sent["follows"] = SentLines(connection, users.sql(FOLLOW_LINES), progress.update, "follows")
            stored_as = {rename.old.encode(): rename.new.encode() for rename in report.renames}
            # The file's connection serves one thread at a time: the worker's two
            # jobs run in order, and this thread reads the file again only after both.
            asked = worker.submit(_copies, connection, users, sent["follows"], growing)
            facts = worker.submit(_file_facts, connection, users, sent["messages"], stored_as)
            plan.rebuild(cursor, rebuild["messages"])
            shared_times = asked.result()
            # The messages are complete now: read them back while the worker reads the file.
            merged = {"messages": _delete_message_copies(cursor, shared_times)}
            there = {"messages": verify.digested(cursor, READ_MESSAGES)}
            follows = (cursor, source, sent["follows"], rebuild["follows"])
            if sent["follows"].complete:  # read ahead whole: they need only PostgreSQL, so load them meanwhile
                merged["follows"], there["follows"] = _load_follows(*follows)
            facts = facts.result()
        if "follows" not in there:
            merged["follows"], there["follows"] = _load_follows(*follows)
        facts["follows"] = _read_and_skipped(connection, "follower", FOLLOW_SKIPS, sent["follows"])
        plan.reset_sequences(cursor)
    report.sources.append(SourceReport(str(source.path), source.kind, ignored=source.ignored,
                                       value_check=value_check))
    source_report = report.sources[0]
    source_report.tables["users"] = user_tallies.get(0, plan.TableTally())
    source_report.read_check = {"users": verify.Check(counts[rows.USER], source_report.tables["users"].read)}
    for table in ("follows", "messages"):
        read, skipped = facts[table]
        source_report.tables[table] = _tally(skipped, sent[table].rows, merged[table].rows)
        # Rows the file holds against rows sent or skipped for a reason.
        source_report.read_check[table] = verify.Check(read, source_report.tables[table].read)
    source_report.count_adjusted(source.adjusted)
    users_now = verify.target_content(cursor, ("users",))["users"]
    report.verification = {
        "users": verify.Check(planned_users[0], users_now[0], planned_users[1], users_now[1]),
        "follows": _table_check(facts["follow values"], merged["follows"], there["follows"]),
        "messages": _table_check(facts["message values"], merged["messages"], there["messages"]),
        "user map": _names_check(cursor, facts["names"]),
        "username keys": verify.keys_check(cursor),
    }
    return True
