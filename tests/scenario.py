"""Simulator scenarios: generated actions, the state they must leave, and a replayer.

The replayer sends as the MiniTwit simulator does: one connection per request
(`Connection: close`), and an error counted for every unexpected status,
refused connection or missing answer. The simulator also gives up on an
answer after 0.3 s; that is a speed budget, so the replayer waits
generously (tests assert correctness on a busy machine) and says how long
each answer took: `slower_than` counts the answers over the budget, which
bench.replay reports.
"""
from __future__ import annotations

import http.client
import json
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import quote

SIMULATOR_AUTHORIZATION = "Basic c2ltdWxhdG9yOnN1cGVyX3NhZmUh"
SIMULATOR_BUDGET = 0.3  # seconds: the simulator's own timeout
ANSWER_TIMEOUT = 30.0  # seconds without a byte before the replayer calls it "timeout"

FIRST_NAMES = (
    "Roger", "Zoë", "Łukasz", "Søren", "José", "Ingrid", "Mei", "Анна", "Ole", "Ağa",
    "Chloé", "Björn", "Nuño", "Amélie", "Yūki", "Dvořák", "Kalle", "Renée", "Jürgen", "Siân",
)
LAST_NAMES = (
    "Histand", "Ångström", "Żółkiewski", "Kierkegaard", "Muñoz", "Bergström", "東京",
    "Петрова", "Ødegård", "Çelik", "Brontë", "Eriksen", "García Márquez", "O'Brien", "Lévy",
)
WORDS = (
    "the", "simulator", "posts", "twoots", "about", "coffee", "København", "naïve", "café",
    "<b>bold</b>", "\"quoted\"", "it's", "東京", "smørrebrød", "50%", "a&b", "emoji🙂", "über",
    "new\nline", "tab\there", "ÆØÅ", "?latest=1", "#tag", "@mention", "ünïcödé",
)


@dataclass(frozen=True)
class Action:
    """One simulator request and the status it must get."""

    latest: int
    kind: str  # register | tweet | follow | unfollow
    username: str
    body: dict
    expected_status: int

    @property
    def method(self) -> str:
        return "POST"

    @property
    def path(self) -> str:
        base = {
            "register": "/register",
            "tweet": f"/msgs/{quote(self.username, safe='')}",
            "follow": f"/fllws/{quote(self.username, safe='')}",
            "unfollow": f"/fllws/{quote(self.username, safe='')}",
        }[self.kind]
        return f"{base}?latest={self.latest}"


@dataclass
class Expected:
    """What the database must hold after every action ran."""

    users: dict[str, str] = field(default_factory=dict)  # username -> email
    messages: list[tuple[str, str]] = field(default_factory=list)  # (author, text), posting order
    follows: set[tuple[str, str]] = field(default_factory=set)  # (follower, followed)


@dataclass
class Scenario:
    streams: list[list[Action]]  # one per client; no two streams touch the same user
    expected: Expected

    @property
    def actions(self) -> list[Action]:
        return [action for stream in self.streams for action in stream]


def _names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    while len(names) < count:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name in taken:
            name = f"{name} {len(names)}"
        taken.add(name)
        names.append(name)
    return names


def _text(rng: random.Random) -> str:
    if rng.random() < 0.01:
        return ("long " * 200)[:1000]
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 25)))


class _StreamBuilder:
    """Writes one client's actions, and what they must leave behind, on its own users."""

    def __init__(self, rng: random.Random, names: list[str], expected: Expected):
        self.rng = rng
        self.pending = list(names)
        self.registered: list[str] = []
        self.expected = expected
        self.actions: list[tuple[str, str, dict, int]] = []

    def register(self, name: str) -> None:
        body = {"username": name, "email": f"{quote(name, safe='')}@example.org", "pwd": f"pw {name}"}
        if name in self.expected.users:
            self.actions.append(("register", name, body, 400))
            return
        self.expected.users[name] = body["email"]
        self.registered.append(name)
        self.actions.append(("register", name, body, 204))

    def register_next(self) -> None:
        self.register(self.pending.pop(0))

    def tweet(self) -> None:
        author, text = self.rng.choice(self.registered), _text(self.rng)
        self.expected.messages.append((author, text))
        self.actions.append(("tweet", author, {"content": text}, 204))

    def follow(self) -> None:
        follower, followed = self.rng.choice(self.registered), self.rng.choice(self.registered)
        if follower != followed:  # following yourself answers 204 and changes nothing
            self.expected.follows.add((follower, followed))
        self.actions.append(("follow", follower, {"follow": followed}, 204))

    def unfollow(self) -> None:
        follower = self.rng.choice(self.registered)
        mine = sorted(pair for pair in self.expected.follows if pair[0] == follower)
        # Now and then unfollow someone not followed: it must change nothing.
        if mine and self.rng.random() < 0.8:
            followed = self.rng.choice(mine)[1]
        else:
            followed = self.rng.choice(self.registered)
        self.expected.follows.discard((follower, followed))
        self.actions.append(("unfollow", follower, {"unfollow": followed}, 204))

    def build(self, count: int) -> None:
        for _ in range(max(2, len(self.pending) * 2 // 3)):
            if self.pending:
                self.register_next()
        while len(self.actions) < count:
            roll = self.rng.random()
            if roll < 0.06:
                if self.pending:
                    self.register_next()
                else:
                    self.tweet()
            elif roll < 0.075:
                self.register(self.rng.choice(self.registered))  # a duplicate: 400
            elif roll < 0.60:
                self.tweet()
            elif roll < 0.85:
                self.follow()
            else:
                self.unfollow()
        while self.pending:
            self.register_next()


def generate(seed: int, users: int, actions: int, clients: int = 1) -> Scenario:
    """A deterministic scenario: `actions` requests over `users` users, split into `clients` disjoint streams."""
    rng = random.Random(seed)
    names = _names(rng, users)
    expected = Expected()
    builders = [
        _StreamBuilder(random.Random(rng.random()), names[index::clients], expected)
        for index in range(clients)
    ]
    for builder in builders:
        builder.build(actions // clients)
    # Action ids are unique over the whole scenario and rise within each stream.
    streams = [
        [
            Action(step * clients + index + 1, kind, name, body, status)
            for step, (kind, name, body, status) in enumerate(builder.actions)
        ]
        for index, builder in enumerate(builders)
    ]
    return Scenario(streams, expected)


# --- replaying over HTTP ------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    action: Action
    status: int | None
    seconds: float
    error: str | None  # None, "wrong status", "refused", "timeout" (no answer at all), "failed"


def send(host: str, port: int, method: str, path: str, body: dict | None,
         timeout: float = ANSWER_TIMEOUT,
         authorization: str = SIMULATOR_AUTHORIZATION) -> tuple[int | None, float, str | None]:
    """One request on its own connection: (status, seconds taken, transport error or None).

    `timeout` is seconds of silence on the socket before giving up ("timeout").
    """
    status, seconds, error, _headers = exchange(host, port, method, path, body, timeout, authorization)
    return status, seconds, error


def exchange(host: str, port: int, method: str, path: str, body: dict | None,
             timeout: float = ANSWER_TIMEOUT, authorization: str = SIMULATOR_AUTHORIZATION,
             ) -> tuple[int | None, float, str | None, Mapping[str, str]]:
    """`send`, plus the answer's headers, looked up without regard to case ({} when there was no answer).

    HAProxy sends header names in lower case; http.client keeps them as sent.
    """
    payload = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Connection": "close", "Authorization": authorization}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    started = time.perf_counter()
    answer_headers: Mapping[str, str] = {}
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        response.read()
        status, error = response.status, None
        answer_headers = response.msg
    except ConnectionRefusedError:
        status, error = None, "refused"
    except (socket.timeout, TimeoutError):
        status, error = None, "timeout"
    except (OSError, http.client.HTTPException):  # reset, or an answer cut short
        status, error = None, "failed"
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    return status, seconds, error, answer_headers


def replay(host: str, port: int, actions: list[Action], timeout: float = ANSWER_TIMEOUT,
           check_status: bool = True) -> list[Outcome]:
    outcomes = []
    for action in actions:
        status, seconds, error = send(host, port, action.method, action.path, action.body, timeout)
        if error is None and check_status and status != action.expected_status:
            error = "wrong status"
        outcomes.append(Outcome(action, status, seconds, error))
    return outcomes


def error_counts(outcomes: list[Outcome]) -> Counter:
    return Counter(outcome.error for outcome in outcomes if outcome.error is not None)


def slower_than(outcomes: list[Outcome], seconds: float = SIMULATOR_BUDGET) -> int:
    """How many answers took longer than `seconds` (those the simulator would count as errors)."""
    return sum(outcome.seconds > seconds for outcome in outcomes)
