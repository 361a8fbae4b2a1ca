"""The data layer: tables, the engine, the unit of work, and queries grouped by feature.

* tables.py      tables and column types (UTC timestamps on both databases)
* engine.py      engine settings per database, SQLite's write lock, migrations on start
* unit.py        `writing()` / `reading()`: one transaction, committed once, retried exactly
* accounts.py    users by name or id, new users, password hashes, the admin flag
* follows.py     who follows whom
* timelines.py   twoots, page cursors and the three timelines
* simulator.py   the simulator's writes by username, and its latest action id

Query and change functions run inside the caller's unit of work and never
commit; only unit.py ends transactions.
"""
