"""Reading the log: the /logs viewer over the day files that twooter.logwriter writes.

reader.py (one day file by byte offset), browse.py (pages, new records, raw
lines and per-minute counts of an hour over every instance), query.py (what
the URL asks for, range-checked), routes.py (the blueprint). Every offset and
pattern on a line's bytes comes from twooter.logwriter.records.LINE.
"""
