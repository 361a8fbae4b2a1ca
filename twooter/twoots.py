"""Posting twoots and reading timelines: the work behind the timeline pages, no HTTP."""
from __future__ import annotations

from .data import timelines as stored
from .data.tables import Message, User, utcnow
from .data.timelines import Cursor, TimelinePage
from .data.unit import reading, writing

__all__ = ["Cursor", "TimelinePage", "home_page", "post", "public_page", "user_page"]


def post(author: User, text: str) -> Message:
    """Store a twoot by `author` (text already checked by inputs.twoot_problem) and return it.

    The returned Message is not attached to the session; it carries its
    author for rendering. Raises DatabaseUnavailable when the database stays away.
    """
    when = utcnow()
    message_id = writing(lambda: stored.add_message(author.id, text, when))
    return Message(id=message_id, author_id=author.id, author=author, text=text, pub_date=when,
                   flagged=False)


def public_page(before: Cursor | None, size: int) -> TimelinePage:
    """A page of everyone's twoots, newest first, older than `before`."""
    return reading(lambda: stored.public_timeline(before, size))


def user_page(author: User, before: Cursor | None, size: int) -> TimelinePage:
    """A page of one author's twoots."""
    return reading(lambda: stored.user_timeline(author.id, before, size))


def home_page(reader: User, before: Cursor | None, size: int) -> TimelinePage:
    """A page of the reader's own and followed users' twoots."""
    return reading(lambda: stored.home_timeline(reader.id, before, size))
