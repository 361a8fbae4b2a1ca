"""The merge plan: how staged rows from several sources become Twooter's rows.

Every staged row gets one fate: `written`, `merged` (it names something the
target has or will have already) or `skipped:<reason>`. The rules, applied
to sources in the order given (oldest first):

Users are matched by the name they are stored under, which usernames.decide
gives every kept row (the canonical form, or a new name for a case variant,
a reserved or an unreachable name; counted as conflicts `renamed_…`).
 * A username already in the target keeps the target's row: the running app
   is the newest truth. Otherwise the first appearance decides the new id
   and the newest appearance (last source) gives email, hash and admin flag.
 * Every other appearance is `merged`; the conflicts counted alongside are
   `email_differs` and `password_hash_differs` (the losing values are dropped).
 * Skipped: `empty_username`, `missing_password_hash`, `missing_id` (nothing
   could refer to it), `duplicate_id` (a source id seen twice in one source:
   the first wins). A missing email becomes '' and is counted as `missing_email`.
Messages are the same message when author (after matching), text and time
 (to the microsecond) are equal: later copies are `merged` into the first
 (whose flag is kept).
 Skipped: `missing_author` (no such user in its source, or that user was
 skipped), `empty_text` (NULL or ''), `missing_time`.
Follows are the same when both users are: duplicates are `merged`.
 Skipped: `missing_user` (either side unknown in its source).
New rows get fresh ids after the target's largest, in source order; only
messages loaded by the direct path (direct.py) keep their file's ids.

The direct path plans users with these statements; its own queries for
follows and messages are formed from the same statement of the skip rules
(FOLLOW_SKIP_RULES, MESSAGE_SKIP_RULES), so a change to a rule lands once.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from . import rows, usernames, verify
from .staging import STAGE

EPOCH_PLUS = "(timestamptz 'epoch' + {} * interval '1 microsecond')"


# The skip rules of follows and messages, stated once, in precedence order:
# (reason, condition) over a row's {follower} and {followed} user, or its
# {author}, {text} and {time}. The conditions are SQL that PostgreSQL and
# SQLite read alike: the staged plan below and the direct path's SQLite
# queries (direct.py) are both formed from them.
FOLLOW_SKIP_RULES = (("missing_user", "{follower} IS NULL OR {followed} IS NULL"),)
MESSAGE_SKIP_RULES = (
    ("missing_author", "{author} IS NULL"),
    ("empty_text", "{text} IS NULL OR {text} = ''"),
    ("missing_time", "{time} IS NULL"),
)


def skip_reason(rules: tuple, **columns: str) -> str:
    """An SQL expression: 'skipped:<reason>' of the first rule a row meets, or NULL."""
    return "CASE " + " ".join(f"WHEN {condition.format(**columns)} THEN 'skipped:{reason}'"
                              for reason, condition in rules) + " END"


def meets_none(rules: tuple, unless: tuple[str, ...] = (), **columns: str) -> str:
    """An SQL condition: the row meets none of the rules (but those named in `unless`)."""
    return " AND ".join(f"NOT ({condition.format(**columns)})" for reason, condition in rules
                        if reason not in unless)


@dataclass
class TableTally:
    """What became of one table's rows from one source."""

    read: int = 0
    written: int = 0
    merged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, int] = field(default_factory=dict)

    def add_fate(self, fate: str, count: int) -> None:
        if fate == "written":
            self.written += count
        elif fate == "merged":
            self.merged += count
        else:
            reason = fate.removeprefix("skipped:")
            self.skipped[reason] = self.skipped.get(reason, 0) + count


# Staged users with the reason the plan skips some; the names of the others
# are then decided in Python (usernames.decide) and come back as plan_names.
USER_ROWS = f"""
CREATE TEMP TABLE plan_user_rows ON COMMIT DROP AS
WITH staged AS (
    SELECT src, seq, sid, t1 AS username, coalesce(t2, '') AS email, t2 IS NULL AS email_missing,
           t3 AS pw_hash, coalesce(flag, false) AS is_admin,
           row_number() OVER (PARTITION BY src, sid ORDER BY seq) AS id_copy
    FROM {STAGE} WHERE kind = 'u'
)
SELECT *, CASE
    WHEN username IS NULL OR username = '' THEN 'empty_username'
    WHEN pw_hash IS NULL OR pw_hash = '' THEN 'missing_password_hash'
    WHEN sid IS NULL THEN 'missing_id'
    WHEN id_copy > 1 THEN 'duplicate_id'
END AS skip
FROM staged
"""
KEPT_USER_ROWS = "SELECT src, seq, username FROM plan_user_rows WHERE skip IS NULL ORDER BY src, seq"
PLAN_NAMES = """
CREATE TEMP TABLE plan_names (src smallint, seq bigint, username text, username_key text, renamed text)
ON COMMIT DROP
"""

# Stored usernames are partitioned byte for byte (COLLATE "C"): the same
# equality as the database's collation, and a cheaper sort.
USERS = """
CREATE TEMP TABLE plan_users ON COMMIT DROP AS
SELECT c.src, c.seq, c.sid, coalesce(n.username, c.username) AS username, n.username_key, n.renamed,
       c.email, c.email_missing, c.pw_hash, c.is_admin, c.skip, t.id AS existing_id,
       row_number() OVER (PARTITION BY c.skip IS NULL, coalesce(n.username, c.username) COLLATE "C"
                          ORDER BY c.src, c.seq) AS first_rank
FROM plan_user_rows c LEFT JOIN plan_names n USING (src, seq)
LEFT JOIN users t ON c.skip IS NULL AND t.username = n.username
"""

NEW_USERS = """
CREATE TEMP TABLE plan_new_users ON COMMIT DROP AS
WITH valid AS (
    SELECT src, seq, username, username_key, existing_id, first_rank,
           first_value(email) OVER newest AS email,
           first_value(pw_hash) OVER newest AS pw_hash,
           first_value(is_admin) OVER newest AS is_admin
    FROM plan_users WHERE skip IS NULL
    WINDOW newest AS (PARTITION BY username COLLATE "C" ORDER BY src DESC, seq DESC)
)
SELECT (SELECT coalesce(max(id), 0) FROM users) + row_number() OVER (ORDER BY src, seq) AS id,
       username, username_key, email, pw_hash, is_admin
FROM valid WHERE existing_id IS NULL AND first_rank = 1
"""

ALL_USERS = """
CREATE TEMP TABLE plan_all_users ON COMMIT DROP AS
SELECT id, username, email, pw_hash FROM users
UNION ALL
SELECT id, username, email, pw_hash FROM plan_new_users
"""

# Each source id's new user id, with the user's name hashes for the digests
# (see verify), so follows and messages digest without another join.
USER_MAP = f"""
CREATE TEMP TABLE plan_user_map ON COMMIT DROP AS
SELECT p.src, p.sid, a.id AS user_id,
       {verify.name_hash("a.username", 0)} AS h0, {verify.name_hash("a.username", 1)} AS h1
FROM plan_users p JOIN plan_all_users a ON a.username = p.username
WHERE p.skip IS NULL
"""

USER_FATES = """
SELECT p.src,
       CASE WHEN p.skip IS NOT NULL THEN 'skipped:' || p.skip
            WHEN p.existing_id IS NULL AND p.first_rank = 1 THEN 'written'
            ELSE 'merged' END AS fate,
       count(*),
       count(*) FILTER (WHERE p.skip IS NULL AND p.email <> a.email),
       count(*) FILTER (WHERE p.skip IS NULL AND p.pw_hash <> a.pw_hash),
       count(*) FILTER (WHERE p.skip IS NULL AND p.email_missing)
FROM plan_users p LEFT JOIN plan_all_users a ON p.skip IS NULL AND a.username = p.username
GROUP BY 1, 2
"""

# Follows and messages: one statement per table gives each staged row its
# fate, inserts the rows to keep and returns, per source and fate, the count
# and the digest sum of the rows it meant to write (verification compares
# that with a fresh read of the table afterwards). `seq` grows across
# sources, which are staged one after another, so ordering by `seq` is merge
# order.
#
# A follow naming a missing user has a NULL in its key, so it never shares
# a partition with a valid one: partitions need no validity flag and sort
# on integers first.
FOLLOWS = f"""
WITH fated AS MATERIALIZED (
    SELECT r.src, r.follower_id, r.followed_id, r.h0, r.h1, CASE
        WHEN {skip_reason(FOLLOW_SKIP_RULES, follower="r.follower_id", followed="r.followed_id")} IS NOT NULL
        THEN {skip_reason(FOLLOW_SKIP_RULES, follower="r.follower_id", followed="r.followed_id")}
        WHEN row_number() OVER (PARTITION BY r.follower_id, r.followed_id ORDER BY r.seq) > 1 THEN 'merged'
        {{existing}}
        ELSE 'written' END AS fate
    FROM (
        SELECT s.src, s.seq, a.user_id AS follower_id, b.user_id AS followed_id, a.h0, b.h1
        FROM {STAGE} s
        LEFT JOIN plan_user_map a ON a.src = s.src AND a.sid = s.r1
        LEFT JOIN plan_user_map b ON b.src = s.src AND b.sid = s.r2
        WHERE s.kind = 'f'
    ) r
), written AS (
    INSERT INTO follows (follower_id, followed_id)
    SELECT follower_id, followed_id FROM fated WHERE fate = 'written'
)
SELECT src, fate, count(*),
       coalesce(sum({verify.follow_digest("h0", "h1")}) FILTER (WHERE fate = 'written'), 0)
FROM fated GROUP BY 1, 2
"""
FOLLOW_EXISTS = (
    "WHEN EXISTS (SELECT 1 FROM follows t WHERE t.follower_id = r.follower_id "
    "AND t.followed_id = r.followed_id) THEN 'merged'"
)

# Copies of a message share its time, so texts are only compared among the
# (rare) staged messages whose time another one has too. Finding those takes
# one sort of integers, which is close to free when the source stores its
# messages in time order, as they are written; comparing every text would
# sort or hash a million texts. The other steps read the staged rows in
# their order, so numbering the written ones finds them already sorted.
MESSAGE_FATE = """CASE WHEN skip IS NOT NULL THEN skip
                       WHEN seq IN (SELECT seq FROM repeated) THEN 'merged'
                       ELSE 'written' END"""
MESSAGES = f"""
WITH resolved AS NOT MATERIALIZED (
    SELECT s.src, s.seq, m.user_id AS author_id, m.h0, s.t1 AS text, s.ts AS micros,
           coalesce(s.flag, false) AS flagged,
           {skip_reason(MESSAGE_SKIP_RULES, author="m.user_id", text="s.t1", time="s.ts")} AS skip
    FROM {STAGE} s LEFT JOIN plan_user_map m ON m.src = s.src AND m.sid = s.r1
    WHERE s.kind = 'm'
), shared_times AS (
    SELECT seq FROM (
        SELECT seq, ts = lag(ts) OVER by_time OR ts = lead(ts) OVER by_time AS shared
        FROM {STAGE} WHERE kind = 'm'
        WINDOW by_time AS (ORDER BY ts)
    ) timed WHERE shared
), repeated AS (
    SELECT seq FROM (
        SELECT r.seq, row_number() OVER (PARTITION BY r.author_id, r.micros, r.text COLLATE "C"
                                         ORDER BY r.seq) AS copy
        FROM resolved r
        WHERE r.skip IS NULL AND r.seq IN (SELECT seq FROM shared_times)
    ) numbered WHERE copy > 1
    {{existing}}
), written AS (
    INSERT INTO messages (id, author_id, text, pub_date, flagged)
    SELECT (SELECT coalesce(max(id), 0) FROM messages) + row_number() OVER (ORDER BY seq),
           author_id, text, {EPOCH_PLUS.format("micros")}, flagged
    FROM resolved WHERE {MESSAGE_FATE} = 'written'
)
SELECT src, {MESSAGE_FATE}, count(*),
       coalesce(sum({verify.message_digest("text", "micros", "flagged", "h0")})
                FILTER (WHERE {MESSAGE_FATE} = 'written'), 0)
FROM resolved GROUP BY 1, 2
"""
MESSAGE_EXISTS = (
    "UNION ALL SELECT r.seq FROM resolved r WHERE r.skip IS NULL AND EXISTS (SELECT 1 FROM messages t "
    "WHERE t.author_id = r.author_id AND t.pub_date = " + EPOCH_PLUS.format("r.micros") + " AND t.text = r.text)"
)

WRITE_USERS = """
INSERT INTO users (id, username, username_key, email, pw_hash, is_admin)
SELECT id, username, username_key, email, pw_hash, is_admin FROM plan_new_users ORDER BY id
"""
RENAMED = "SELECT src, renamed, count(*) FROM plan_users WHERE renamed IS NOT NULL GROUP BY 1, 2"
PLANNED_USERS = f"SELECT count(*), coalesce(sum({verify.user_digest('u')}), 0) FROM plan_new_users u"
RESET_SEQUENCES = """
SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}
"""


def _plan_names(cursor) -> list[usernames.Rename]:
    """Decide every kept user's stored name (see usernames) into plan_names; returns the renames."""
    cursor.execute("SELECT username FROM users")
    target_names = [name for (name,) in cursor.fetchall()]
    cursor.execute(KEPT_USER_ROWS)
    decisions, renames = usernames.decide(target_names, cursor.fetchall())
    cursor.execute(PLAN_NAMES)
    text = rows.copy_text
    lines = "".join(f"{src}\t{seq}\t{text(d.username)}\t{text(d.key)}\t{text(d.reason)}\n"
                    for (src, seq), d in decisions.items())
    cursor.copy_expert("COPY plan_names FROM STDIN", io.StringIO(lines))
    return renames


def _user_fates(cursor) -> dict[int, TableTally]:
    cursor.execute(USER_FATES)
    tallies: dict[int, TableTally] = {}
    for src, fate, count, *conflicts in cursor.fetchall():
        tally = tallies.setdefault(src, TableTally())
        tally.read += count
        tally.add_fate(fate, count)
        for name, n in zip(("email_differs", "password_hash_differs", "missing_email"), conflicts):
            if n:
                tally.conflicts[name] = tally.conflicts.get(name, 0) + n
    cursor.execute(RENAMED)
    for src, reason, count in cursor.fetchall():
        tallies.setdefault(src, TableTally()).conflicts[reason] = count
    return tallies


def _load_table(cursor, statement: str) -> tuple[dict[int, TableTally], tuple[int, int]]:
    """Plan, write and count one table: tallies per source, (rows, checksum) written."""
    cursor.execute(statement)
    tallies: dict[int, TableTally] = {}
    written = checksum = 0
    for src, fate, count, digest_sum in cursor.fetchall():
        tally = tallies.setdefault(src, TableTally())
        tally.read += count
        tally.add_fate(fate, count)
        if fate == "written":
            written, checksum = written + count, checksum + int(digest_sum)
    return tallies, (written, checksum)


DEFERRABLE = ("follows", "messages")


def set_aside_indexes(cursor, table: str) -> list[str]:
    """Drop a table's keys and indexes; return the statements that rebuild them.

    Building an index once over a loaded table is several times faster than
    maintaining it row by row, and one foreign-key check over the table beats
    a trigger per row. It all happens inside the transaction, so the app
    never sees the table without them.
    """
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'p')",
        (table,),
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    )
    indexes = cursor.fetchall()
    for name, _, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    # The primary key first: the other indexes and checks then run on a keyed table.
    keys = [c for c in constraints if c[1] == "p"] + [c for c in constraints if c[1] != "p"]
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, _, definition in keys] + [
        definition for _, definition in indexes
    ]


def plan_users(cursor, joined: bool = True
               ) -> tuple[dict[int, TableTally], tuple[int, int], list[usernames.Rename]]:
    """Match the staged users with the target's and with each other, and write the new ones.

    Leaves `plan_user_map` (source and source id → user id) for the other
    tables, indexed for joins unless `joined` is false. Returns tallies per
    source index, the (rows, checksum) written, and the users renamed.
    """
    cursor.execute(f"ANALYZE {STAGE}")
    cursor.execute(USER_ROWS)
    renames = _plan_names(cursor)
    for statement in (USERS, NEW_USERS, ALL_USERS, USER_MAP):
        cursor.execute(statement)
    if joined:
        cursor.execute("CREATE INDEX ON plan_user_map (src, sid); ANALYZE plan_user_map; ANALYZE plan_all_users")
    tallies = _user_fates(cursor)
    cursor.execute(PLANNED_USERS)
    planned = tuple(int(v) for v in cursor.fetchone())
    cursor.execute(WRITE_USERS)
    return tallies, planned, renames


def set_aside_empty(cursor, target_counts: dict[str, int]) -> list[str]:
    """Set aside the keys and indexes of the tables that start empty; returns the rebuild."""
    rebuild = []
    for table in DEFERRABLE:
        if target_counts[table] == 0:
            rebuild += set_aside_indexes(cursor, table)
    return rebuild


def rebuild(cursor, statements: list[str]) -> None:
    """Put back what set_aside_indexes() took away."""
    for statement in statements:
        cursor.execute(statement)


def reset_sequences(cursor) -> None:
    """Move the id sequences past the largest ids, so the app's next insert works."""
    for table in ("users", "messages"):
        cursor.execute(RESET_SEQUENCES.format(table=table))


def load(cursor, target_counts: dict[str, int]) -> tuple[dict, dict, list[usernames.Rename]]:
    """Decide every staged row's fate and write the rows to keep.

    Returns tallies per table and source index, per table the (rows,
    checksum) of what was written, for verification, and the users renamed.
    """
    tallies, planned = {}, {}
    tallies["users"], planned["users"], renames = plan_users(cursor)
    set_aside = set_aside_empty(cursor, target_counts)
    # Probing the target for duplicates only matters when it holds rows.
    follows = FOLLOWS.format(existing=FOLLOW_EXISTS if target_counts["follows"] else "")
    tallies["follows"], planned["follows"] = _load_table(cursor, follows)
    messages = MESSAGES.format(existing=MESSAGE_EXISTS if target_counts["messages"] else "")
    tallies["messages"], planned["messages"] = _load_table(cursor, messages)
    rebuild(cursor, set_aside)
    reset_sequences(cursor)
    return tallies, planned, renames
