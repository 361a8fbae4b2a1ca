"""The data layer's contract: query and change functions never commit; only the unit of work does."""
from __future__ import annotations

import inspect
from datetime import datetime, timezone

import pytest
from sqlalchemy import event, func, select

from tests import seed
from twooter.data import accounts, follows, simulator, timelines
from twooter.data.tables import Message
from twooter.data.unit import writing
from twooter.extensions import db

DATA_MODULES = (accounts, follows, simulator, timelines)
WHEN = datetime(2026, 5, 1, tzinfo=timezone.utc)


def _calls(ann, bob) -> dict:
    """One call of every public function of the data modules, with real arguments."""
    cursor = timelines.Cursor(WHEN, 10)
    return {
        "accounts.storable_name": lambda: accounts.storable_name("ann"),
        "accounts.user_by_name": lambda: accounts.user_by_name("ann"),
        "accounts.signed_in_user": lambda: accounts.signed_in_user(bob.id),
        "accounts.create_user": lambda: accounts.create_user("cat", "cat@example.com", "x"),
        "accounts.replace_password_hash": lambda: accounts.replace_password_hash(ann.id, "x", "y"),
        "accounts.grant_admin": lambda: accounts.grant_admin("ann"),
        "follows.set_following": lambda: follows.set_following(ann.id, bob.id, True),
        "follows.is_following": lambda: follows.is_following(ann.id, bob.id),
        "follows.followed_names": lambda: follows.followed_names(ann.id, 10),
        "simulator.post_message_by_name": lambda: simulator.post_message_by_name("ann", "by name"),
        "simulator.user_ids_by_name": lambda: simulator.user_ids_by_name("ann", "bob"),
        "simulator.record_latest_action": lambda: simulator.record_latest_action(99),
        "simulator.latest_action": simulator.latest_action,
        "timelines.add_message": lambda: timelines.add_message(ann.id, "direct", WHEN),
        "timelines.public_timeline": lambda: timelines.public_timeline(cursor, 5),
        "timelines.user_timeline": lambda: timelines.user_timeline(ann.id, None, 5),
        "timelines.home_timeline": lambda: timelines.home_timeline(ann.id, cursor, 5),
        "timelines.latest_messages": lambda: timelines.latest_messages(5, ann.id),
    }


def _public_functions() -> set[str]:
    return {
        f"{module.__name__.rsplit('.', 1)[1]}.{name}"
        for module in DATA_MODULES
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and not name.startswith("_")
    }


def test_every_public_data_function_is_checked():
    with_names = set(_calls(None, None))
    assert _public_functions() == with_names


def test_no_data_function_commits_or_ends_the_transaction(app):
    commits = []
    count = commits.append
    with app.app_context():
        ann, bob = seed.user("ann"), seed.user("bob")
        event.listen(db.engine, "commit", count)
        try:
            for name, call in _calls(ann, bob).items():
                db.session.connection()  # a transaction is open before each call...
                call()
                assert commits == [], f"{name} committed"
                assert db.session().in_transaction(), f"{name} ended the transaction"
            # ...and everything they wrote goes when it rolls back.
            db.session.rollback()
        finally:
            event.remove(db.engine, "commit", count)
        assert db.session.scalar(select(func.count()).select_from(Message)) == 0
        assert accounts.user_by_name("cat") is None
        assert simulator.latest_action() is None


def test_the_unit_of_work_commits_once(app):
    commits = []
    count = commits.append
    with app.app_context():
        ann = seed.user("ann")
        db.session.rollback()  # end the read seed.user left open
        event.listen(db.engine, "commit", count)

        def post_twice():
            timelines.add_message(ann.id, "one", WHEN)
            timelines.add_message(ann.id, "two", WHEN)
            simulator.record_latest_action(5)

        try:
            writing(post_twice)
        finally:
            event.remove(db.engine, "commit", count)
        assert len(commits) == 1
        assert db.session.scalar(select(func.count()).select_from(Message)) == 2


def test_a_failing_unit_leaves_nothing(app):
    with app.app_context():
        ann = seed.user("ann")

        def fail_halfway():
            timelines.add_message(ann.id, "half", WHEN)
            simulator.record_latest_action(6)
            raise LookupError("the work itself failed")

        with pytest.raises(LookupError):
            writing(fail_halfway)
        assert db.session.scalar(select(func.count()).select_from(Message)) == 0
        assert simulator.latest_action() is None
