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
  '.' / '..' (`renamed_unreachable`), and a name over the length the rules
  allow (`renamed_too_long`): every stored name is one the rules accept.
* A new name is the old one without the characters names refuses (or
  "user" when nothing usable is left), cut to fit, then "-2", "-3", … : the
  first whose key no kept name, target name or earlier new name has.

Each rename is counted as a conflict of its source's users and listed in
the report (old name, new name), so the admin can tell the people.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from twooter import names

NORMALIZED, CASE_VARIANT, RESERVED, UNREACHABLE, TOO_LONG = (
    "name_normalized", "renamed_case_variant", "renamed_reserved", "renamed_unreachable", "renamed_too_long")


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


def _reason(problem: str) -> str:
    """The report's name for why a name the rules refuse needs another."""
    return {names.RESERVED: RESERVED, names.TOO_LONG: TOO_LONG}.get(problem, UNREACHABLE)


def _usable_base(name: str) -> str:
    kept = "".join(ch for ch in name if names.bad_character(ch) is None).strip()
    return "user" if kept in ("", ".", "..") else kept


def _new_name(form: str, taken: dict[str, str]) -> str:
    """The first free name `<base>-<n>`, n = 2, 3, …, within the length the rules allow."""
    base, number = _usable_base(form), 2
    while True:
        suffix = f"-{number}"
        candidate = base[:names.MAX_USERNAME_LENGTH - len(suffix)].rstrip() + suffix
        if names.name_key(candidate) not in taken and not names.name_problem(candidate, names.RESERVED_NAMES):
            return candidate
        number += 1


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
    order = [(source, seq, raw, names.canonical(raw)) for source, seq, raw in staged]
    problems = names.name_problems({form for *_, form in order}, names.RESERVED_NAMES)
    for source, seq, raw, form in order:
        if form in chosen:
            continue
        key = names.name_key(form)
        reason = _reason(problems[form]) if form in problems else None
        if reason is None and taken.get(key, form) != form:
            reason = CASE_VARIANT
        if reason is None:
            taken[key] = form
            chosen[form] = Decision(form, key, None)
        else:
            chosen[form] = Decision("", "", reason)  # named below, once every kept name is known
    for form, decision in chosen.items():
        if decision.username == "":
            new = _new_name(form, taken)
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
