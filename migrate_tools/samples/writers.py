"""Writers for every source shape, streaming, so the same code makes the
shipped samples, the test fixtures and the benchmark's million-row sources.

Rows are plain tuples:
  users    (id, username, email, pw_hash)
  follows  (follower_id, followed_id)
  messages (id, author_id, text, pub_date: datetime (UTC) or None, flagged)
"""
from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from twooter.snapshot import iso_utc, write_document

# The original MiniTwit schema.sql, as its SQLite databases have it.
MINITWIT_SCHEMA = """
drop table if exists user;
create table user (
  user_id integer primary key autoincrement,
  username string not null,
  email string not null,
  pw_hash string not null
);
drop table if exists follower;
create table follower (
  who_id integer,
  whom_id integer
);
drop table if exists message;
create table message (
  message_id integer primary key autoincrement,
  author_id integer not null,
  text string not null,
  pub_date integer,
  flagged integer
);
"""


def werkzeug_pbkdf2(password: str, salt: str, iterations: int = 50_000) -> str:
    """A Werkzeug `pbkdf2:sha256` hash with a chosen salt, so samples are reproducible."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()
    return f"pbkdf2:sha256:{iterations}${salt}${digest}"


def csharp_sha256(password: str) -> str:
    """The C#-era format: each SHA-256 byte as an unpadded decimal number."""
    return "".join(str(byte) for byte in hashlib.sha256(password.encode("utf-8")).digest())


def write_minitwit_sqlite(path: Path, users: Iterable, follows: Iterable, messages: Iterable) -> None:
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(MINITWIT_SCHEMA)
        connection.executemany("INSERT INTO user VALUES (?, ?, ?, ?)", users)
        connection.executemany("INSERT INTO follower VALUES (?, ?)", follows)
        connection.executemany(
            "INSERT INTO message VALUES (?, ?, ?, ?, ?)",
            ((i, a, t, None if d is None else int(d.timestamp()), f) for i, a, t, d, f in messages),
        )
        connection.commit()
    finally:
        connection.close()


def write_snapshot(path: Path, users: Iterable, follows: Iterable, messages: Iterable,
                   exported_at: datetime) -> None:
    with path.open("w", encoding="utf-8") as out:
        write_document(
            out,
            ({"id": i, "username": n, "email": e, "pw_hash": h, "is_admin": False} for i, n, e, h in users),
            ({"follower_id": a, "followed_id": b} for a, b in follows),
            ({"id": i, "author_id": a, "text": t, "pub_date": None if d is None else iso_utc(d),
              "flagged": bool(f)} for i, a, t, d, f in messages),
            exported_at=exported_at,
        )


def _nstring(value: str | None) -> str:
    return "NULL" if value is None else "N'" + value.replace("'", "''") + "'"


def _datetime2(moment: datetime | None) -> str:
    if moment is None:
        return "NULL"
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"
    return f"CAST(N'{text}' AS DateTime2)"


def _int(value) -> str:
    return "NULL" if value is None else str(int(value))


_CREATE = {
    "users": """CREATE TABLE [dbo].[users](
	[user_id] [int] IDENTITY(1,1) NOT NULL,
	[username] [nvarchar](20) NULL,
	[email] [nvarchar](max) NULL,
	[pw_hash] [nvarchar](100) NULL,
 CONSTRAINT [PK_users] PRIMARY KEY CLUSTERED 
(
	[user_id] ASC
)WITH (PAD_INDEX = OFF, STATISTICS_NORECOMPUTE = OFF, IGNORE_DUP_KEY = OFF, ALLOW_ROW_LOCKS = ON, ALLOW_PAGE_LOCKS = ON) ON [PRIMARY]
) ON [PRIMARY] TEXTIMAGE_ON [PRIMARY]""",
    "messages": """CREATE TABLE [dbo].[messages](
	[message_id] [int] IDENTITY(1,1) NOT NULL,
	[Useruser_id] [int] NULL,
	[text] [nvarchar](max) NULL,
	[pub_date] [datetime2](7) NOT NULL,
	[flagged] [int] NULL,
 CONSTRAINT [PK_messages] PRIMARY KEY CLUSTERED 
(
	[message_id] ASC
)WITH (PAD_INDEX = OFF, STATISTICS_NORECOMPUTE = OFF, IGNORE_DUP_KEY = OFF, ALLOW_ROW_LOCKS = ON, ALLOW_PAGE_LOCKS = ON) ON [PRIMARY]
) ON [PRIMARY] TEXTIMAGE_ON [PRIMARY]""",
    "follows": """CREATE TABLE [dbo].[follows](
	[FollowerId] [int] NOT NULL,
	[FollowedId] [int] NOT NULL,
 CONSTRAINT [PK_follows] PRIMARY KEY CLUSTERED 
(
	[FollowerId] ASC,
	[FollowedId] ASC
)WITH (PAD_INDEX = OFF, STATISTICS_NORECOMPUTE = OFF, IGNORE_DUP_KEY = OFF, ALLOW_ROW_LOCKS = ON, ALLOW_PAGE_LOCKS = ON) ON [PRIMARY]
) ON [PRIMARY]""",
}


def write_tsql_dump(path: Path, users: Iterable, follows: Iterable, messages: Iterable, *,
                    encoding: str = "utf-16", rows_per_insert: int = 1, database: str = "MiniTwit") -> None:
    """A script shaped like SSMS "Generate Scripts" (schema and data) writes it.

    `encoding="utf-16"` gives UTF-16 LE with a BOM and CRLF lines, as SSMS
    does; rows_per_insert > 1 writes multi-row INSERTs as mssql-scripter can.
    """
    with path.open("w", encoding=encoding, newline="") as file:
        # CRLF between statements, as SSMS writes; newlines inside data stay as they are.
        def structure(text: str) -> None:
            file.write(text.replace("\n", "\r\n"))

        structure(f"USE [{database}]\nGO\n")
        for table in ("follows", "messages", "users"):
            structure(f"/****** Object:  Table [dbo].[{table}]    Script Date: 3/1/2021 10:00:00 AM ******/\n")
            structure("SET ANSI_NULLS ON\nGO\nSET QUOTED_IDENTIFIER ON\nGO\n")
            structure(_CREATE[table] + "\nGO\n")
        tables = (
            ("follows", "[FollowerId], [FollowedId]", follows, lambda r: f"{_int(r[0])}, {_int(r[1])}", False),
            ("messages", "[message_id], [Useruser_id], [text], [pub_date], [flagged]", messages,
             lambda r: f"{_int(r[0])}, {_int(r[1])}, {_nstring(r[2])}, {_datetime2(r[3])}, {_int(r[4])}", True),
            ("users", "[user_id], [username], [email], [pw_hash]", users,
             lambda r: f"{_int(r[0])}, {_nstring(r[1])}, {_nstring(r[2])}, {_nstring(r[3])}", True),
        )
        for table, columns, rows, values, identity in tables:
            if identity:
                structure(f"SET IDENTITY_INSERT [dbo].[{table}] ON \n\n")
            batch: list[str] = []
            for row in rows:
                batch.append(f"({values(row)})")
                if len(batch) == rows_per_insert:
                    file.write(f"INSERT [dbo].[{table}] ({columns}) VALUES {', '.join(batch)}\r\n")
                    batch = []
            if batch:
                file.write(f"INSERT [dbo].[{table}] ({columns}) VALUES {', '.join(batch)}\r\n")
            if identity:
                structure(f"SET IDENTITY_INSERT [dbo].[{table}] OFF\n")
            structure("GO\n")
        structure(
            "ALTER TABLE [dbo].[messages]  WITH CHECK ADD  CONSTRAINT [FK_messages_users_Useruser_id] "
            "FOREIGN KEY([Useruser_id])\nREFERENCES [dbo].[users] ([user_id])\nGO\n"
            "ALTER TABLE [dbo].[messages] CHECK CONSTRAINT [FK_messages_users_Useruser_id]\nGO\n"
            "CREATE NONCLUSTERED INDEX [IX_messages_Useruser_id] ON [dbo].[messages]\n(\n\t[Useruser_id] ASC\n)"
            "WITH (PAD_INDEX = OFF, STATISTICS_NORECOMPUTE = OFF, SORT_IN_TEMPDB = OFF, DROP_EXISTING = OFF, "
            "ONLINE = OFF, ALLOW_ROW_LOCKS = ON, ALLOW_PAGE_LOCKS = ON) ON [PRIMARY]\nGO\n"
            "USE [master]\nGO\n"
            f"ALTER DATABASE [{database}] SET  READ_WRITE \nGO\n"
        )
