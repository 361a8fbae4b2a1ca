"""Many waitress threads writing at once: nothing fails, nothing is lost."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from twooter.extensions import db
from twooter.data.tables import Follow, Message

WRITERS = 8
POSTS_EACH = 15


def followed(n: int, i: int) -> int:
    """The writer that writer n follows in round i: any other, never themselves."""
    return (n + 1 + i % (WRITERS - 1)) % WRITERS


def test_concurrent_posts_and_follows_all_succeed(server, make_client):
    visitors = []
    for n in range(WRITERS):
        visitor = make_client()
        visitor.register_and_login(f"writer {n}")
        visitors.append(visitor)

    def write(n: int) -> list[int]:
        visitor = visitors[n]
        statuses = []
        for i in range(POSTS_EACH):
            statuses.append(visitor.add_message(f"twoot {i} by writer {n}").status_code)
            statuses.append(visitor.follow(f"writer {followed(n, i)}").status_code)
        return statuses

    with ThreadPoolExecutor(WRITERS) as pool:
        results = [status for statuses in pool.map(write, range(WRITERS)) for status in statuses]

    assert results == [200] * (WRITERS * POSTS_EACH * 2)
    with server.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == WRITERS * POSTS_EACH
        expected_pairs = {(n, followed(n, i)) for n in range(WRITERS) for i in range(POSTS_EACH)}
        assert db.session.scalar(select(func.count()).select_from(Follow)) == len(expected_pairs)
