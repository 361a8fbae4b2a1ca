"""How many password guesses a name or a client address gets: login throttling.

The rule (the README states it for operators):

* **Per account.** The name typed is counted by its name key (as a digest), whether or not
  a user has it (so a refusal says nothing about which names exist). The
  5th failed login in a row, from anywhere, refuses that name's logins for
  15 s; each failure after a lock has run out doubles the lock, up to 5
  minutes. A successful login forgets the count, and so does an hour
  without failures.
* **Per client address.** The same ladder from the 50th failure, over all
  names: one client cannot try a common password on many accounts.

Why this shape: the per-account ladder caps guessing of one password at a
few attempts per lock, whatever number of addresses an attacker uses; its
short ceiling means that someone who wants to lock a person out must keep
failing, and the person waits at most 5 minutes after the last failure.
The per-address limit catches what the account count cannot see (many
names, one client) and sits high enough for people behind one shared
address.

Counting happens in the database, so every instance sees the same counts.
Each attempt claims its place before the password is checked, in one
statement that also sets the lock it earns, so parallel attempts on any
number of instances cannot slip past a lock; a successful attempt gives its
claim back. No HTTP here: callers pass the client's address.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from flask import current_app
from sqlalchemy import Text, bindparam, case, delete, null, or_, select, tuple_, update

from . import accounts
from .extensions import db
from .models import LoginThrottle, User, UTCDateTime, _insert_into, utcnow
from .names import name_key

log = logging.getLogger("twooter.security")

ACCOUNT, ADDRESS = "account", "address"
# Quiet time after which failures are forgotten (at least twice the longest lock).
FORGET_AFTER = timedelta(hours=1)
T = TypeVar("T")
# Stale rows one login attempt sweeps at most.
SWEEP = 100


@dataclass(frozen=True)
class Rule:
    """One scope's ladder: `failures_before_lock` failures lock for `first_lock`,
    each further failure doubles it, up to `longest_lock`."""

    failures_before_lock: int
    first_lock: timedelta
    longest_lock: timedelta

    def ladder(self) -> list[timedelta]:
        """The lock after the k-th, (k+1)-th, … failure; the last entry holds from then on."""
        locks, lock = [], self.first_lock
        while lock < self.longest_lock:
            locks.append(lock)
            lock *= 2
        locks.append(self.longest_lock)
        return locks


@dataclass(frozen=True)
class Policy:
    account: Rule
    address: Rule

    @property
    def forget_after(self) -> timedelta:
        return max(FORGET_AFTER, 2 * self.account.longest_lock, 2 * self.address.longest_lock)

    def rule(self, scope: str) -> Rule:
        return self.account if scope == ACCOUNT else self.address


def policy_from(config: Mapping) -> Policy:
    """The policy an app's settings describe (LOGIN_* keys, see config.py)."""
    first = timedelta(seconds=config["LOGIN_FIRST_LOCK_SECONDS"])
    longest = max(first, timedelta(seconds=config["LOGIN_LONGEST_LOCK_SECONDS"]))
    return Policy(
        account=Rule(config["LOGIN_FAILURES_PER_ACCOUNT"], first, longest),
        address=Rule(config["LOGIN_FAILURES_PER_ADDRESS"], first, longest),
    )


class LoginRefused(Exception):
    """Logins for this name or from this address are locked; try again in `retry_after` seconds."""

    def __init__(self, scope: str, subject: str, retry_after: int):
        self.scope, self.subject, self.retry_after = scope, subject, retry_after
        whose = "for this name" if scope == ACCOUNT else "from your address"
        super().__init__(
            f"Too many failed logins {whose}; try again in {retry_after} "
            f"second{'s' if retry_after != 1 else ''}."
        )


@dataclass(frozen=True)
class _Claim:
    scope: str
    subject: str
    failures: int  # counting this attempt
    locked_until: datetime | None  # the lock this attempt earns if it fails


def _subject(scope: str, username: str, address: str) -> str:
    if scope == ADDRESS:
        return address
    # A digest of the key: any name typed, however long or odd (NUL, which
    # PostgreSQL cannot store), becomes a short row key of its own.
    return hashlib.sha256(name_key(username).encode("utf-8", "surrogatepass")).hexdigest()


@functools.cache
def _claim_statement(dialect: str, first_rung: int, rungs: int):
    """The upsert that counts an attempt and sets the lock it earns, for a ladder
    of `rungs` locks from the `first_rung`-th failure; values are parameters.

    Built once per database kind and ladder: composing it costs more than
    running it.
    """
    table = LoginThrottle.__table__
    column = table.c
    now = bindparam("now", type_=UTCDateTime())
    until = [bindparam(f"until_{i}", type_=UTCDateTime()) for i in range(rungs)]
    counted = case(
        (column.last_failure < bindparam("forget_before", type_=UTCDateTime()), 1),
        else_=column.failures + 1,
    )
    lock_after = case(
        (counted < first_rung, null()),
        *[(counted == first_rung + i, until[i]) for i in range(rungs - 1)],
        else_=until[-1],
    )
    upsert = _insert_into(table, dialect).values(
        scope=bindparam("scope", type_=Text), subject=bindparam("subject", type_=Text), failures=1,
        last_failure=now, locked_until=bindparam("first_lock", type_=UTCDateTime()),
    )
    return upsert.on_conflict_do_update(
        index_elements=[column.scope, column.subject],
        set_={"failures": counted, "last_failure": now, "locked_until": lock_after},
        where=or_(column.locked_until.is_(None), column.locked_until <= now),
    ).returning(column.failures, column.locked_until)


def _claim(scope: str, subject: str, rule: Rule, forget_after: timedelta, now: datetime) -> _Claim | None:
    """Count one attempt (uncommitted); None when the subject is locked at `now`."""
    ladder = [now + lock for lock in rule.ladder()]
    first_rung = rule.failures_before_lock
    connection = db.session.connection()
    statement = _claim_statement(connection.dialect.name, first_rung, len(ladder))
    parameters = {
        "scope": scope, "subject": subject, "now": now, "forget_before": now - forget_after,
        "first_lock": ladder[0] if first_rung <= 1 else None,
        **{f"until_{i}": until for i, until in enumerate(ladder)},
    }
    row = connection.execute(statement, parameters).first()
    return None if row is None else _Claim(scope, subject, row.failures, row.locked_until)


def _locked_until(scope: str, subject: str) -> datetime | None:
    """Until when the subject is locked; None if it is not counted at all."""
    return db.session.execute(
        select(LoginThrottle.locked_until).where(
            LoginThrottle.scope == scope, LoginThrottle.subject == subject
        )
    ).scalar_one_or_none()


def _give_back(claim: _Claim, rule: Rule) -> None:
    """Uncount an attempt that turned out not to be a failure, or was refused (uncommitted)."""
    column = LoginThrottle.__table__.c
    remaining = column.failures - 1
    db.session.execute(
        update(LoginThrottle.__table__)
        .where(column.scope == claim.scope, column.subject == claim.subject, column.failures > 0)
        .values(
            failures=remaining,
            locked_until=case((remaining < rule.failures_before_lock, null()), else_=column.locked_until),
        )
    )


def _forget(scope: str, subject: str) -> None:
    """Drop a subject's count (uncommitted)."""
    db.session.execute(
        delete(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.subject == subject)
    )


def _committed(work: Callable[[], T]) -> T:
    """Run `work` in a transaction of its own and commit it: a count must stand
    (and be seen by every instance) whatever the rest of the login does."""
    try:
        result = work()
        db.session.commit()
        return result
    except BaseException:
        db.session.rollback()
        raise


@functools.cache
def _sweep_statement():
    stale = (
        select(LoginThrottle.scope, LoginThrottle.subject)
        .where(LoginThrottle.last_failure < bindparam("forget_before", type_=UTCDateTime()))
        .limit(SWEEP)
        .with_for_update(skip_locked=True)
    )
    return delete(LoginThrottle).where(tuple_(LoginThrottle.scope, LoginThrottle.subject).in_(stale))


def _forget_stale(policy: Policy, now: datetime) -> None:
    """Drop up to SWEEP rows nobody has added to for `forget_after` (uncommitted).

    Rows another transaction holds are skipped, not waited for: a sweep
    never waits, so it cannot join a deadlock (SQLite has no row locks and
    needs no such care). A bounded batch keeps one login's cost flat after a
    spray of made-up names; each attempt adds at most two rows and sweeps up
    to SWEEP.
    """
    db.session.execute(_sweep_statement(), {"forget_before": now - policy.forget_after})


def login(username: str, password: str, address: str, now: datetime | None = None) -> User:
    """`accounts.authenticate`, behind the throttle.

    `address` is the client's address as the caller knows it. Returns the
    user; raises LoginRefused (with seconds to wait) while this name or this
    address is locked, and accounts.LoginError for a wrong name or password,
    which counts towards both locks. `now` (UTC-aware) is for tests.
    """
    now = now or utcnow()
    policy = policy_from(current_app.config)

    def claim_both() -> list[_Claim] | LoginRefused:
        # Address first, then name, in every transaction, and the sweep last
        # (it never waits): one order of row locks, so logins never deadlock.
        claims: list[_Claim] = []
        for scope in (ADDRESS, ACCOUNT):
            subject = _subject(scope, username, address)
            claim = _claim(scope, subject, policy.rule(scope), policy.forget_after, now)
            if claim is None:
                for earlier in claims:  # a refused attempt counts for nothing
                    _give_back(earlier, policy.rule(earlier.scope))
                until = _locked_until(scope, subject)
                wait = 1 if until is None else max(1, math.ceil((until - now).total_seconds()))
                _forget_stale(policy, now)
                return LoginRefused(scope, subject, wait)
            claims.append(claim)
        _forget_stale(policy, now)
        return claims

    claims = _committed(claim_both)
    if isinstance(claims, LoginRefused):
        raise claims
    address_claim, account_claim = claims
    try:
        user = accounts.authenticate(username, password)
    except accounts.LoginError:
        for claim in claims:
            _warn_if_locked(claim, username if claim.scope == ACCOUNT else address, now)
        raise

    def succeeded() -> None:
        _give_back(address_claim, policy.address)
        _forget(ACCOUNT, account_claim.subject)

    _committed(succeeded)
    return user


def _warn_if_locked(claim: _Claim, whom: str, now: datetime) -> None:
    if claim.locked_until is None:
        return
    seconds = round((claim.locked_until - now).total_seconds())
    shown = json.dumps(whom, ensure_ascii=False)
    whose = f"for {shown}" if claim.scope == ACCOUNT else f"from {shown}"
    log.warning("logins %s refused for %d s after %d failed logins", whose, seconds, claim.failures)

