"""Generated simulator scenarios replayed over sockets exactly as the simulator sends them.

Zero errors (wrong status, refused, no answer), then the database holds
exactly the users, messages and follow pairs the scenario implies. How fast
the answers come (the simulator's 0.3 s) is measured by bench.replay, not
asserted here: a busy machine may be slow, never wrong.
"""
from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections import defaultdict
from urllib.parse import urlsplit

import sqlalchemy as sa

from tests.scenario import ANSWER_TIMEOUT, Outcome, error_counts, generate, replay, send, slower_than
from tests.servers import ServerProcess
from twooter.extensions import db


def stored_state(app) -> tuple[dict[str, str], list[tuple[str, str]], set[tuple[str, str]]]:
    with app.app_context():
        users = dict(db.session.execute(sa.text("SELECT username, email FROM users")).all())
        messages = [
            tuple(row)
            for row in db.session.execute(
                sa.text(
                    "SELECT u.username, m.text FROM messages m JOIN users u ON u.id = m.author_id"
                    " ORDER BY m.id"
                )
            )
        ]
        follows = {
            tuple(row)
            for row in db.session.execute(
                sa.text(
                    "SELECT a.username, b.username FROM follows f"
                    " JOIN users a ON a.id = f.follower_id JOIN users b ON b.id = f.followed_id"
                )
            )
        }
        db.session.remove()
    return users, messages, follows


def by_author(messages: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for author, text in messages:
        grouped[author].append(text)
    return dict(grouped)


def host_and_port(server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname, parts.port


def latest_id(server) -> int:
    with urllib.request.urlopen(server.url + "/latest", timeout=ANSWER_TIMEOUT) as response:
        return json.load(response)["latest"]


def describe(outcomes) -> str:
    failed = [outcome for outcome in outcomes if outcome.error]
    return "; ".join(
        f"{o.action.kind} #{o.action.latest} -> {o.status} ({o.error}, {o.seconds * 1000:.0f} ms)"
        for o in failed[:10]
    )


def test_sequential_replay_leaves_exactly_the_expected_state(app, server):
    scenario = generate(seed=2026, users=120, actions=3000)
    host, port = host_and_port(server)

    outcomes = replay(host, port, scenario.actions)

    assert error_counts(outcomes) == {}, describe(outcomes)
    users, messages, follows = stored_state(app)
    assert users == scenario.expected.users
    assert messages == scenario.expected.messages
    assert follows == scenario.expected.follows
    assert latest_id(server) == scenario.actions[-1].latest
    # Duplicates, repeated follows and unfollows of strangers were all exercised.
    kinds = {(o.action.kind, o.status) for o in outcomes}
    assert {("register", 400), ("register", 204), ("follow", 204), ("unfollow", 204), ("tweet", 204)} <= kinds


def test_eight_concurrent_clients_lose_nothing(app):
    scenario = generate(seed=8, users=64, actions=2400, clients=8)
    with ServerProcess(app) as server:
        _replay_concurrently(app, server, scenario)


def _replay_concurrently(app, server, scenario) -> None:
    host, port = host_and_port(server)
    results: list[list] = [[] for _ in scenario.streams]

    def client(index: int) -> None:
        results[index] = replay(host, port, scenario.streams[index])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(scenario.streams))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = [outcome for stream in results for outcome in stream]
    assert len(outcomes) == len(scenario.actions)
    assert error_counts(outcomes) == {}, describe(outcomes)
    users, messages, follows = stored_state(app)
    assert users == scenario.expected.users
    assert by_author(messages) == by_author(scenario.expected.messages)
    assert follows == scenario.expected.follows
    assert latest_id(server) in {stream[-1].latest for stream in scenario.streams}


def test_replayer_counts_refused_connections_and_timeouts(server):
    host, port = host_and_port(server)
    with socket.socket() as probe:  # bound but not listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        assert send(host, probe.getsockname()[1], "GET", "/latest", None)[2] == "refused"
    with socket.socket() as silent:  # listening, never answering: the connection waits in the backlog
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        status, _seconds, error = send(host, silent.getsockname()[1], "GET", "/latest", None, timeout=0.5)
        assert (status, error) == (None, "timeout")
    status, _seconds, error = send(host, port, "GET", "/latest", None)
    assert (status, error) == (200, None)


def test_slow_answers_are_counted_against_the_budget_not_as_errors():
    action = generate(seed=1, users=2, actions=3).actions[0]
    outcomes = [Outcome(action, 204, seconds, None) for seconds in (0.01, 0.2999, 0.3001, 2.5)]
    assert slower_than(outcomes) == 2
    assert slower_than(outcomes, 0.1) == 3
    assert error_counts(outcomes) == {}
