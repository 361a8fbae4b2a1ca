"""The MSSQL-era dump: a T-SQL script from SSMS "Generate Scripts" or mssql-scripter.

Read as a stream in three layers, so a multi-GB dump never sits in memory:

1. `decoded_lines` turns bytes into numbered lines (UTF-16 with its BOM, or
   UTF-8), reporting an undecodable byte with its line.
2. `statements` splits lines into statements and `GO` batches. It tracks
   quotes, bracketed names and comments, so a newline or `GO` inside a string
   is data, not a boundary.
3. `InsertReader` reads each INSERT from sqlglot's T-SQL tokenizer and maps
   the Entity Framework tables onto staged rows; other statements (USE, SET,
   CREATE, ALTER, …) only describe the old server and are passed over.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

from sqlglot.dialects.tsql import TSQL
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from .. import rows
from ..errors import SourceError
from .base import ProgressCallback, Source

CHUNK_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
STATEMENT_KEYWORDS = {
    "INSERT", "SET", "USE", "CREATE", "ALTER", "DROP", "PRINT", "IF", "BEGIN", "END", "EXEC",
    "EXECUTE", "DECLARE", "GRANT", "DELETE", "UPDATE", "TRUNCATE", "COMMIT", "ROLLBACK",
}
_GO_LINE = re.compile(r"\s*GO(?:\s+\d+)?\s*(?:--.*)?$", re.IGNORECASE)
_FIRST_WORD = re.compile(r"\s*([A-Za-z_]+)")
# Code with no statement end or comment in it, whole quoted strings and names
# included; it stops where something opens that this line does not close.
_PLAIN_CODE = re.compile(
    r"""(?:[^'\["\-/;]|-(?!-)|/(?!\*)|\[[^\]]*(?:\]\][^\]]*)*\]|'[^']*(?:''[^']*)*'|"[^"]*(?:""[^"]*)*")*"""
)
_COMMENT_SPECIAL = re.compile(r"/\*|\*/")


def detect_encoding(head: bytes) -> tuple[str, int]:
    """(codec, BOM length). Without a BOM, zero high bytes mean UTF-16 LE."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    sample = head[:512]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
        return "utf-16-le", 0
    return "utf-8", 0


def looks_like_tsql(head: bytes) -> bool:
    encoding, skip = detect_encoding(head)
    text = head[skip:].decode(encoding, errors="replace")
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("--", "/*")):
            continue
        match = _FIRST_WORD.match(stripped)
        return bool(match) and (match.group(1).upper() in STATEMENT_KEYWORDS or bool(_GO_LINE.match(stripped)))
    return False


def decoded_lines(path: Path, position: list[int]) -> Iterator[tuple[int, str]]:
    """Numbered lines with their '\\n' kept; position[0] follows the bytes read."""
    with path.open("rb") as file:
        head = file.read(4)
        encoding, skip = detect_encoding(head + file.read(508))
        file.seek(skip)
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        line_number, pending = 1, ""
        while True:
            chunk = file.read(CHUNK_BYTES)
            position[0] = file.tell()
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                good = chunk[: max(error.start, 0)].decode(encoding, errors="ignore")
                line = line_number + (pending + good).count("\n")
                raise SourceError(
                    path, f"wrong encoding: bytes that are not {encoding.upper()} ({error.reason})", line
                ) from None
            parts = (pending + text).split("\n")
            pending = parts.pop()
            for part in parts:
                yield line_number, part + "\n"
                line_number += 1
            if not chunk:
                break
        if pending:
            yield line_number, pending


@dataclass
class Statement:
    line: int
    text: str


@dataclass
class _Scanner:
    """Where a line leaves us: in code, a string, a bracketed name or a comment."""

    state: str = "code"
    depth: int = 0
    opened_at: int = 0
    splits: list[int] = field(default_factory=list)

    def scan(self, text: str, line: int) -> None:
        """Follow quoting through one line; remember `;` that end statements."""
        self.splits.clear()
        pos, end = 0, len(text)
        while pos < end:
            if self.state == "code":
                pos = _PLAIN_CODE.match(text, pos).end()
                if pos >= end:
                    return
                if text.startswith("--", pos):
                    return
                if text[pos] == ";":
                    pos += 1
                    self.splits.append(pos)
                    continue
                self.opened_at = line
                if text.startswith("/*", pos):
                    self.state, self.depth, pos = "comment", 1, pos + 2
                else:
                    self.state = {"'": "string", "[": "bracket", '"': "dquote"}[text[pos]]
                    pos += 1
            elif self.state == "comment":
                match = _COMMENT_SPECIAL.search(text, pos)
                if match is None:
                    return
                pos = match.end()
                self.depth += 1 if match.group() == "/*" else -1
                if self.depth == 0:
                    self.state = "code"
            else:
                close = {"string": "'", "bracket": "]", "dquote": '"'}[self.state]
                index = text.find(close, pos)
                if index < 0:
                    return
                if text.startswith(close * 2, index):
                    pos = index + 2
                else:
                    pos, self.state = index + 1, "code"


def statements(path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[Statement | None]:
    """Statements in order; None marks each `GO` (the end of a batch).

    A dump that ends inside a string, or with statements after its last GO,
    was cut short: both are errors naming the line.
    """
    scanner = _Scanner()
    buffer: list[str] = []
    start = 0
    batch_start: int | None = None

    def flush() -> Iterator[Statement]:
        nonlocal buffer, batch_start
        text = "".join(buffer)
        buffer = []
        if _meaningful(text):
            batch_start = start if batch_start is None else batch_start
            yield Statement(start, text)

    for number, text in lines:
        if scanner.state == "code":
            if _GO_LINE.match(text):
                yield from flush()
                batch_start = None
                yield None
                continue
            word = _FIRST_WORD.match(text)
            if word and word.group(1).upper() in STATEMENT_KEYWORDS:
                yield from flush()
        if not buffer:
            start = number
        scanner.scan(text, number)
        if scanner.splits:
            cut = 0
            for split in scanner.splits:
                buffer.append(text[cut:split])
                yield from flush()
                start, cut = number, split
            text = text[cut:]
            if not text.strip():
                continue
        buffer.append(text)
    if scanner.state != "code":
        what = {"string": "string", "bracket": "bracketed name", "dquote": "quoted name",
                "comment": "comment"}[scanner.state]
        raise SourceError(path, f"unterminated {what} (the dump looks truncated)", scanner.opened_at)
    yield from flush()
    if batch_start is not None:
        raise SourceError(path, "the last batch does not end with GO (the dump looks truncated)", batch_start)


def _meaningful(text: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", text, flags=re.DOTALL)
    return bool(without_comments.strip())


# The C#-era Entity Framework tables and how their columns map onto rows.
EF_TABLES = {
    "users": ("user_id", "username", "email", "pw_hash"),
    "messages": ("message_id", "useruser_id", "text", "pub_date", "flagged"),
    "follows": ("followerid", "followedid"),
}
_REQUIRED = {
    "users": ("user_id", "username"),
    "messages": ("useruser_id", "text"),
    "follows": ("followerid", "followedid"),
}
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?\s*(Z|[+-]\d{2}:\d{2})?$")

T = TokenType


@dataclass
class _Header:
    """`INSERT [dbo].[t] ([cols]) VALUES`, read once and reused while it repeats."""

    text: str
    newlines: int
    name: str
    table: str
    columns: list[str]
    positions: list[int | None] | None


class InsertReader:
    """Turns `INSERT [dbo].[t] ([cols]) VALUES (…), (…)` into staged rows.

    sqlglot's T-SQL tokenizer does the lexing (N'…' strings, '' escapes,
    bracketed names, numbers); this reads the token stream of the one
    statement shape a data script has. Dumps repeat the same INSERT header
    for every row, so the header is tokenized once and only the values of
    the following statements are.
    """

    def __init__(self, path: Path):
        self.path = path
        self.tokenizer = TSQL.Tokenizer()
        self.tables_seen: dict[str, int] = {}
        self.ignored: dict[str, int] = {}
        #: Documented rules applied to messages, counted by name (see rows.BELOW_MICROSECOND).
        self.adjusted: dict[str, int] = {}
        self._header: _Header | None = None

    def error(self, message: str, line: int) -> SourceError:
        return SourceError(self.path, message, line)

    def _tokenize(self, text: str, line: int):
        try:
            return self.tokenizer.tokenize(text)
        except TokenError as error:
            raise self.error(f"cannot read the statement: {error}", line) from None

    def rows(self, statement: Statement) -> list[tuple[str, rows.StagedRow]]:
        text, header = statement.text, self._header
        if header is not None and text.startswith(header.text):
            tokens = self._tokenize(text[len(header.text):], statement.line)
            index, line_base = 0, statement.line + header.newlines
        else:
            tokens = self._tokenize(text, statement.line)
            header, index = self._read_header(tokens, text, statement.line)
            self._header, line_base = header, statement.line
        tuples = self._read_values(tokens, index, line_base)
        self.tables_seen[header.table] = self.tables_seen.get(header.table, 0) + len(tuples)
        if header.positions is None:
            self.ignored[header.name] = self.ignored.get(header.name, 0) + len(tuples)
            return []
        convert = getattr(self, f"_{header.table}")
        width, positions = len(header.columns), header.positions
        out = []
        for values, line in tuples:
            if len(values) != width:
                raise self.error(f"unsupported INSERT: {len(values)} values for {width} columns", line)
            out.append((header.table, convert([values[i] if i is not None else None for i in positions], line)))
        return out

    def _fail(self, message: str, tokens, index: int, line_base: int) -> SourceError:
        token = tokens[index] if index < len(tokens) else (tokens[-1] if tokens else None)
        line = line_base + (token.line - 1 if token is not None else 0)
        return self.error(f"unsupported INSERT: {message}", line)

    def _expect(self, tokens, index: int, kinds: tuple, what: str, line_base: int) -> int:
        if index >= len(tokens) or tokens[index].token_type not in kinds:
            seen = repr(tokens[index].text) if index < len(tokens) else "the end of the statement"
            raise self._fail(f"expected {what}, found {seen}", tokens, index, line_base)
        return index + 1

    def _read_header(self, tokens, text: str, line_base: int) -> tuple[_Header, int]:
        i = self._expect(tokens, 0, (T.INSERT,), "INSERT", line_base)
        if i < len(tokens) and tokens[i].token_type is T.INTO:
            i += 1
        i = self._expect(tokens, i, (T.IDENTIFIER, T.VAR), "a table name", line_base)
        name = tokens[i - 1].text
        while i < len(tokens) and tokens[i].token_type is T.DOT:
            i = self._expect(tokens, i + 1, (T.IDENTIFIER, T.VAR), "a table name", line_base)
            name = tokens[i - 1].text
        i = self._expect(tokens, i, (T.L_PAREN,), "the column list", line_base)
        columns = []
        while True:
            if i >= len(tokens):
                raise self._fail("the column list is not closed", tokens, i, line_base)
            columns.append(tokens[i].text.lower())
            i += 1
            if i < len(tokens) and tokens[i].token_type is T.COMMA:
                i += 1
                continue
            i = self._expect(tokens, i, (T.R_PAREN,), "')' after the columns", line_base)
            break
        i = self._expect(tokens, i, (T.VALUES,), "VALUES", line_base)
        table = name.lower()
        positions = None
        if table in EF_TABLES:
            for required in _REQUIRED[table]:
                if required not in columns:
                    raise self._fail(f"table {table} without its column [{required}]", tokens, 0, line_base)
            positions = [columns.index(c) if c in columns else None for c in EF_TABLES[table]]
        head = text[: tokens[i - 1].end + 1]
        return _Header(head, head.count("\n"), name, table, columns, positions), i

    def _read_values(self, tokens, i: int, line_base: int) -> list[tuple[list, int]]:
        tuples = []
        n = len(tokens)
        while True:
            i = self._expect(tokens, i, (T.L_PAREN,), "'(' before values", line_base)
            values = []
            while True:
                value, i = self._value(tokens, i, line_base)
                values.append(value)
                kind = tokens[i].token_type if i < n else None
                if kind is T.COMMA:
                    i += 1
                elif kind is T.R_PAREN:
                    i += 1
                    break
                else:
                    raise self._fail("expected ',' or ')' between values", tokens, i, line_base)
            tuples.append((values, line_base + tokens[i - 1].line - 1))
            if i < n and tokens[i].token_type is T.COMMA:
                i += 1
                continue
            break
        if i < n and tokens[i].token_type is T.SEMICOLON:
            i += 1
        if i < n:
            raise self._fail(f"unexpected {tokens[i].text!r} after the values", tokens, i, line_base)
        return tuples

    def _value(self, tokens, i: int, line_base: int):
        if i >= len(tokens):
            raise self._fail("a value is missing", tokens, i, line_base)
        token = tokens[i]
        kind = token.token_type
        if kind is T.NATIONAL_STRING or kind is T.STRING:
            return token.text, i + 1
        if kind is T.NUMBER:
            return _number(token.text), i + 1
        if kind is T.NULL:
            return None, i + 1
        if kind is T.DASH and i + 1 < len(tokens) and tokens[i + 1].token_type is T.NUMBER:
            return -_number(tokens[i + 1].text), i + 2
        word = token.text.upper()
        if word in ("CAST", "CONVERT") and i + 1 < len(tokens) and tokens[i + 1].token_type is T.L_PAREN:
            i += 2
            if word == "CONVERT":  # CONVERT(type, value[, style])
                i = self._skip_type(tokens, i, (T.COMMA,), line_base)
            value, i = self._value(tokens, i, line_base)
            if word == "CAST":  # CAST(value AS type)
                i = self._expect(tokens, i, (T.ALIAS,), "AS", line_base)
            return value, self._skip_type(tokens, i, (T.R_PAREN,), line_base)
        raise self._fail(f"value {token.text!r} is not a literal", tokens, i, line_base)

    def _skip_type(self, tokens, i: int, until: tuple, line_base: int) -> int:
        """Pass over a type such as DateTime2 or nvarchar(20), and what ends it."""
        depth = 0
        while i < len(tokens):
            kind = tokens[i].token_type
            if depth == 0 and kind in until:
                return i + 1
            depth += 1 if kind is T.L_PAREN else -1 if kind is T.R_PAREN else 0
            i += 1
        raise self._fail("an unfinished CAST or CONVERT", tokens, i, line_base)

    # -- the Entity Framework tables ----------------------------------------

    def _users(self, v: list, line: int) -> rows.StagedRow:
        return rows.user(self._int(v[0], "user_id", line), self._text(v[1], "username", line),
                         self._text(v[2], "email", line), self._text(v[3], "pw_hash", line), False)

    def _messages(self, v: list, line: int) -> rows.StagedRow:
        flagged = self._int(v[4], "flagged", line)
        return rows.message(
            self._int(v[0], "message_id", line), self._int(v[1], "Useruser_id", line),
            self._text(v[2], "text", line), self._time(v[3], line),
            None if flagged is None else flagged != 0,
        )

    def _follows(self, v: list, line: int) -> rows.StagedRow:
        return rows.follow(self._int(v[0], "FollowerId", line), self._int(v[1], "FollowedId", line))

    def _int(self, value, column: str, line: int) -> int | None:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if value is None:
            return value
        if not isinstance(value, int):
            raise self.error(f"[{column}] {value!r} is not an integer", line)
        return self._stored(value, rows.id_problem(value), column, line)

    def _text(self, value, column: str, line: int) -> str | None:
        if isinstance(value, int):  # a bare integer where text belongs: its digits are exact
            value = str(value)
        if value is None or not isinstance(value, str):
            return self._stored(value, value and "is a number where text belongs", column, line)
        return self._stored(value, rows.text_problem(value), column, line)

    def _stored(self, value, reason: str | None, column: str, line: int):
        """The value, or the error naming the line when `reason` says why the target cannot store it."""
        if reason:
            raise self.error(f"[{column}] {value!r} {reason}", line)
        return value

    def _time(self, value, line: int) -> int | None:
        """datetime2 keeps 100 ns; the target keeps microseconds, so the 7th digit goes (and is counted)."""
        if value is None:
            return None
        match = _TIME.match(str(value).strip())
        if match is None:
            raise self.error(f"[pub_date] {value!r} is not a date and time", line)
        date, clock, fraction, zone = match.groups()
        text = f"{date}T{clock}.{(fraction or '0')[:6].ljust(6, '0')}"
        if zone:
            text += "+00:00" if zone == "Z" else zone
        try:
            micros = rows.micros_of(datetime.fromisoformat(text))
        except ValueError:
            raise self.error(f"[pub_date] {value!r} is not a date and time", line) from None
        if reason := rows.micros_problem(micros):
            raise self.error(f"[pub_date] {value!r} {reason}", line)
        if (fraction or "")[6:].strip("0"):
            self.adjusted[rows.BELOW_MICROSECOND] = self.adjusted.get(rows.BELOW_MICROSECOND, 0) + 1
        return micros


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


class TsqlDumpSource(Source):
    kind = "mssql-tsql-dump"

    def staged_rows(self, progress: ProgressCallback) -> Iterator[rows.StagedRow]:
        total = self.path.stat().st_size
        position = [0]
        reader = InsertReader(self.path)
        counts = {table: 0 for table in EF_TABLES}
        known_tables: set[str] = set()
        next_report = 0
        for table in counts:
            progress(table, 0, 0, total)
        for statement in statements(self.path, decoded_lines(self.path, position)):
            if statement is None:
                continue
            head = statement.text.lstrip()[:6].upper()
            if head == "CREATE":
                known_tables.update(self._created_table(statement.text))
                continue
            if head != "INSERT":
                continue
            for table, row in reader.rows(statement):
                counts[table] += 1
                yield row
            if position[0] >= next_report:
                # Bytes decoded run ahead of statements read: never "done" before the end.
                for table, count in counts.items():
                    progress(table, count, min(position[0], total - 1), None)
                next_report = position[0] + CHUNK_BYTES
        for table, count in counts.items():
            progress(table, count, total, total)
        known_tables.update(t for t in reader.tables_seen if t in EF_TABLES)
        if not known_tables:
            found = ", ".join(sorted(reader.tables_seen)) or "no tables"
            raise SourceError(
                self.path,
                f"unknown schema: no C#-era tables (users, messages, follows) in the dump; found {found}",
            )
        self.ignored = dict(reader.ignored)
        self.adjusted = {"messages": dict(reader.adjusted)} if reader.adjusted else {}

    @staticmethod
    def _created_table(text: str) -> set[str]:
        match = re.match(r"\s*CREATE\s+TABLE\s+(?:\[?\w+\]?\.)*\[?(\w+)\]?", text, re.IGNORECASE)
        return {match.group(1).lower()} if match and match.group(1).lower() in EF_TABLES else set()
