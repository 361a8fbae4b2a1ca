"""The home timeline query against a plain reading of its definition, page by page."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from tests import seed as seeding
from twooter.data import tables, timelines
from twooter.extensions import db

PAGE = 5


@pytest.mark.parametrize("seed", [1, 2])
def test_home_pages_are_own_and_followed_twoots_newest_first(app, seed):
    """More followed authors than a page holds (so quiet ones are cut off),
    shared timestamps, flagged twoots, a self-follow and unfollowed authors."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    with app.app_context():
        users = [seeding.user(f"author{n}", f"author{n}@example.com", "x") for n in range(14)]
        reader = users[0]
        followed = users[1:11]
        for user in followed + [reader]:
            seeding.follow(reader, user)
        for n in range(120):
            # Few distinct times, so that many twoots tie on pub_date.
            when = start + timedelta(minutes=rng.randrange(25))
            # The last followed authors only wrote early on: the cutoff must skip them.
            author = rng.choice(users if n >= 20 else followed[-3:])
            twoot_id = seeding.twoot(author, f"twoot {n}", when)
            if rng.random() < 0.1:
                seeding.flag(twoot_id)

        readable = {user.id for user in followed} | {reader.id}
        expected = sorted(
            (
                (twoot.pub_date, twoot.id)
                for twoot in db.session.execute(db.select(tables.Message)).scalars()
                if twoot.author_id in readable and not twoot.flagged
            ),
            reverse=True,
        )

        seen, cursor = [], None
        while True:
            page = timelines.home_timeline(reader.id, cursor, PAGE)
            assert len(page.twoots) <= PAGE
            seen += [(twoot.pub_date, twoot.id) for twoot in page.twoots]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected
