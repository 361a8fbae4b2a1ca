"""Names registered under older rules, resolved by one rule into names the app can serve.

The rules of what a name may be and how two names compare are twooter.names'
(`canonical`, `name_key`, `name_problem`); this module only decides, for
every user the sources bring, the name it is stored under:

* Same person: appearances whose canonical (NFC) names are equal are one user,
  as the old systems' exact names were. A name stored in another normal form
  is stored in NFC (`name_normalized`); it looks and logs in the same.
* Same name, different people: canonical names that differ but share a key
  (case: "Alice" and "alice"). The target's user keeps the name; otherwise
  the earliest appearance (sources in the order given, rows in reading
  order) does. Every other one is renamed (`renamed_case_variant`).
* A name the app routes itself (`public`, `login`, … names.RESERVED_NAMES) is
  renamed (`renamed_reserved`), and so is a name no URL or login form can
  reach: with '/', control or invisible characters, spaces at either end, or
  '.' / '..' (`renamed_unreachable`). Over-long names are kept: they work.
* A new name is the old one without the characters names refuses (or
  "user" when nothing usable is left), then "-2", "-3", … : the first whose
  key no kept name, target name or earlier new name has.

Each rename is counted as a conflict of its source's users and listed in
the report (old name, new name), so the admin can tell the people.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from twooter import names

NORMALIZED, CASE_VARIANT, RESERVED, UNREACHABLE = (
    "name_normalized", "renamed_case_variant", "renamed_reserved", "renamed_unreachable")


@dataclass(frozen=True)
class Rename:
    """One old name stored under a new one, for the report."""

    source: int
    old: str
    new: str
    reason: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Decision:
    """Where one staged user row ends up: its stored name, that name's key, why it changed (or None)."""

    username: str
    key: str
    reason: str | None


def _problem(name: str) -> str | None:
    """Why a name needs another (a reason above), or None; length alone is no reason."""
    problem = names.name_problem(name, names.RESERVED_NAMES)
    if problem is None or problem == names.TOO_LONG:
        return None
    return RESERVED if problem == names.RESERVED else UNREACHABLE


def _usable_base(name: str) -> str:
    kept = "".join(ch for ch in name if names.bad_character(ch) is None).strip()
    return "user" if kept in ("", ".", "..") else kept


def decide(target_names: Iterable[str], staged: Iterable[tuple[int, int, str]]
           ) -> tuple[dict[tuple[int, int], Decision], list[Rename]]:
    """Decide the stored name of every staged user row.

    `target_names`: the usernames the target holds (they stay as they are).
    `staged`: (source index, row seq, username as read) of the rows the plan
    keeps, in merge order (source, then seq). Returns the decision per
    (source, seq) and the renames, one per source and old name, in order.
    """
    taken = {names.name_key(name): name for name in target_names}  # key → the name that has it
    chosen: dict[str, Decision] = {}  # canonical name → its decision, first appearance first
    order: list[tuple[int, int, str, str]] = []
    for source, seq, raw in staged:
        form = names.canonical(raw)
        order.append((source, seq, raw, form))
        if form in chosen:
            continue
        key = names.name_key(form)
        reason = _problem(form)
        if reason is None and taken.get(key, form) != form:
            reason = CASE_VARIANT
        if reason is None:
            taken[key] = form
            chosen[form] = Decision(form, key, None)
        else:
            chosen[form] = Decision("", "", reason)  # named below, once every kept name is known
    for form, decision in chosen.items():
        if decision.username == "":
            base, number = _usable_base(form), 2
            while names.name_key(f"{base}-{number}") in taken or _problem(f"{base}-{number}"):
                number += 1
            new = f"{base}-{number}"
            taken[names.name_key(new)] = new
            chosen[form] = Decision(new, names.name_key(new), decision.reason)
    decisions, renames, listed = {}, [], set()
    for source, seq, raw, form in order:
        decision = chosen[form]
        if decision.reason is None and raw != form:
            decision = Decision(decision.username, decision.key, NORMALIZED)
        decisions[(source, seq)] = decision
        if decision.reason is not None and (source, raw) not in listed:
            listed.add((source, raw))
            renames.append(Rename(source, raw, decision.username, decision.reason))
    return decisions, renames
