"""The run's account: per source and table, what was read, written, merged, skipped, and proven."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .plan import TableTally
from .usernames import NORMALIZED, Rename
from .verify import Check

TABLES = ("users", "follows", "messages")
PATHS = {
    "staged": "every source staged, one merge plan",
    "direct": "one MiniTwit file straight into an empty target",
}


@dataclass
class SourceReport:
    path: str
    kind: str
    tables: dict[str, TableTally] = field(default_factory=dict)
    read_check: dict[str, Check] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    #: The source's values as its reader decoded them against what was staged of them.
    value_check: Check | None = None

    def count_adjusted(self, adjusted: dict[str, dict[str, int]]) -> None:
        """Add the values the source's reader changed by a documented rule to the conflicts."""
        for table, counts in adjusted.items():
            conflicts = self.tables.setdefault(table, TableTally()).conflicts
            for reason, n in counts.items():
                conflicts[reason] = conflicts.get(reason, 0) + n

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "kind": self.kind,
            "tables": {t: tally.__dict__ for t, tally in self.tables.items()},
            "read_check": {t: check.as_dict() for t, check in self.read_check.items()},
            "value_check": None if self.value_check is None else self.value_check.as_dict(),
            "ignored_tables": self.ignored,
        }


@dataclass
class Report:
    target: str
    dry_run: bool
    merge: bool
    sources: list[SourceReport] = field(default_factory=list)
    target_before: dict[str, int] = field(default_factory=dict)
    revision_before: str | None = None
    verification: dict[str, Check] = field(default_factory=dict)
    committed: bool = False
    seconds: float = 0.0
    #: A key of PATHS (see pipeline and direct).
    method: str = "staged"
    #: Users stored under another name than the one they had (see usernames).
    renames: list[Rename] = field(default_factory=list)

    def totals(self) -> dict[str, TableTally]:
        totals = {table: TableTally() for table in TABLES}
        for source in self.sources:
            for table, tally in source.tables.items():
                total = totals[table]
                total.read += tally.read
                total.written += tally.written
                total.merged += tally.merged
                for into, extra in ((total.skipped, tally.skipped), (total.conflicts, tally.conflicts)):
                    for reason, n in extra.items():
                        into[reason] = into.get(reason, 0) + n
        return totals

    @property
    def accounted(self) -> bool:
        """Every row read has exactly one fate."""
        return all(
            t.read == t.written + t.merged + sum(t.skipped.values())
            for source in self.sources for t in source.tables.values()
        )

    @property
    def ok(self) -> bool:
        checks = [c for s in self.sources for c in s.read_check.values()] + list(self.verification.values())
        checks += [s.value_check for s in self.sources if s.value_check is not None]
        return bool(self.verification) and self.accounted and all(c.ok for c in checks)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "committed": self.committed,
            "dry_run": self.dry_run,
            "merge": self.merge,
            "method": self.method,
            "target": self.target,
            "target_revision_before": self.revision_before,
            "target_rows_before": self.target_before,
            "seconds": round(self.seconds, 3),
            "sources": [s.as_dict() for s in self.sources],
            "tables": {t: tally.__dict__ for t, tally in self.totals().items()},
            "verification": {t: c.as_dict() for t, c in self.verification.items()},
            "renames": [{**r.as_dict(), "source": self.sources[r.source].path} for r in self.renames],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def render(self, console: Console) -> None:
        table = Table(title="migrate_tools report", title_justify="left")
        for column in ("source", "table", "read", "written", "merged", "skipped", "conflicts"):
            table.add_column(column, justify="right" if column in ("read", "written", "merged") else "left")
        rows = [((f"{i + 1}. {Path(s.path).name}", s.kind), s.tables) for i, s in enumerate(self.sources)]
        rows.append((("all sources", ""), self.totals()))
        for index, (labels, tallies) in enumerate(rows):
            for line, name in enumerate(TABLES):
                tally = tallies.get(name, TableTally())
                table.add_row(
                    labels[line] if line < len(labels) else "", name, str(tally.read), str(tally.written),
                    str(tally.merged), _reasons(tally.skipped), _reasons(tally.conflicts),
                    end_section=name == TABLES[-1] and index < len(rows) - 1,
                )
        console.print(table)
        if self.renames:
            renamed = Table(title="users stored under a new name (tell them)", title_justify="left")
            for column in ("source", "old name", "new name", "why"):
                renamed.add_column(column)
            for rename in self.renames:
                # An NFC change is invisible: escape what was stored.
                old = ascii(rename.old) if rename.reason == NORMALIZED else repr(rename.old)
                renamed.add_row(f"{rename.source + 1}", old, rename.new, rename.reason)
            console.print(renamed)
        checks = Table(title="verification (target after load)", title_justify="left")
        for column in ("table", "expected rows", "actual rows", "checksum", "result"):
            checks.add_column(column)
        for name, check in self.verification.items():
            checks.add_row(
                name, str(check.expected_rows), str(check.actual_rows),
                f"{check.actual_checksum & (2**64 - 1):016x}", "ok" if check.ok else "MISMATCH",
            )
        read_ok = all(c.ok for s in self.sources for c in s.read_check.values())
        console.print(checks)
        console.print(f"read checks (rows read = rows accounted for): {'ok' if read_ok else 'MISMATCH'}")
        for index, source in enumerate(self.sources):
            if source.value_check is not None:
                console.print(f"value check {index + 1} (values decoded = values staged, "
                              f"{source.value_check.expected_rows} rows): "
                              f"{'ok' if source.value_check.ok else 'MISMATCH'}")
        console.print(f"load path: {self.method} ({PATHS[self.method]})")
        if self.dry_run:
            outcome = "dry run: checked everything, wrote nothing"
        elif self.committed:
            outcome = "committed"
        else:
            outcome = "NOT committed: the target is unchanged"
        console.print(f"{'OK' if self.ok else 'FAILED'}: {outcome} ({self.seconds:.1f} s)")


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) or "-"
