"""Move Twooter's data into PostgreSQL from every earlier stage, once and verified.

The pipeline: sources (MiniTwit or Twooter SQLite, an MSSQL-era T-SQL dump, a
JSON snapshot) stream rows into staging tables inside one PostgreSQL
transaction; the merge plan maps them onto Twooter's schema by documented
rules; the load writes them; verification compares checksums; the report
counts every row. Nothing is committed unless verification agrees.
"""
