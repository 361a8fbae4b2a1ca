"""Simulator-style traffic through the edge, while something breaks: who got what answer, and when.

Several clients, each on users of its own, send the simulator's registrations,
tweets, follows and unfollows (with `latest`), and read pages and API lists in
between. Every request is recorded with its start and end on one clock, so a
test can ask what happened before, during and after a fault.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, replace
from urllib.parse import quote

from tests.scenario import Action, exchange, generate

REQUEST_TIMEOUT = 20.0  # generous: a request may wait out a failover
_runs = itertools.count(1)


@dataclass(frozen=True)
class Request:
    client: int
    method: str
    path: str
    kind: str  # register | tweet | follow | unfollow | read
    status: int | None
    error: str | None  # transport error: "refused", "timeout", "failed"
    started: float  # time.monotonic()
    ended: float
    action: Action | None = None
    retry_after: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def failed(self) -> bool:
        """No answer, or a server error (5xx): what a client has to treat as 'did not work'."""
        return self.status is None or self.status >= 500


def made_unique(actions: list[Action], tag: str) -> list[Action]:
    """The scenario's actions on users of this run only (names end in `tag`), each tweet's text made
    unique by its `latest` id, so the database can be counted per tweet."""
    def renamed(name: str) -> str:
        return f"{name}{tag}"

    unique = []
    for action in actions:
        body = dict(action.body)
        if action.kind == "register":
            body["username"] = renamed(body["username"])
        elif action.kind == "tweet" and body["content"]:
            # The id goes first and the length stays, so a text at the length limit stays valid.
            text, mark = body["content"], f"#{action.latest} "
            body["content"] = (mark + text)[:max(len(text), len(mark) + 1)]
        else:
            body = {key: renamed(value) for key, value in body.items()}
        unique.append(replace(action, username=renamed(action.username), body=body))
    return unique


class Traffic:
    """`clients` threads sending a generated scenario to `host:port` until stopped or done."""

    def __init__(self, host: str, port: int, *, clients: int = 4, actions: int = 4000, seed: int = 11,
                 pause: float = 0.005, reads: bool = True):
        scenario = generate(seed, users=clients * 20, actions=actions, clients=clients)
        tag = f"{seed}x{next(_runs)}"
        self.streams = [made_unique(stream, tag) for stream in scenario.streams]
        self.host, self.port, self.pause, self.reads = host, port, pause, reads
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _send(self, client: int, method: str, path: str, body: dict | None, kind: str,
              action: Action | None = None) -> Request:
        started = time.monotonic()
        status, _seconds, error, headers = exchange(self.host, self.port, method, path, body, REQUEST_TIMEOUT)
        request = Request(client, method, path, kind, status, error, started, time.monotonic(), action,
                          headers.get("Retry-After"))
        with self._lock:
            self.requests.append(request)
        return request

    def _client(self, index: int) -> None:
        reads = ["/public", "/msgs?no=20", "/latest"]
        for step, action in enumerate(self.streams[index]):
            if self._stop.is_set():
                return
            self._send(index, "POST", action.path, action.body, action.kind, action)
            if self.reads:
                path = reads[step % len(reads)] if step % 4 else f"/{quote(action.username, safe='')}"
                self._send(index, "GET", path, None, "read")
            time.sleep(self.pause)

    def __enter__(self) -> "Traffic":
        for thread in self._threads:
            thread.start()
        return self

    def running(self) -> bool:
        """Whether any client still has actions to send."""
        return any(thread.is_alive() for thread in self._threads)

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 10)

    # What happened -------------------------------------------------------------
    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def gets(self) -> list[Request]:
        return [r for r in self.requests if r.method == "GET"]

    def in_flight_at(self, moment: float) -> list[Request]:
        return [r for r in self.requests if r.started <= moment <= r.ended]

    def tweets(self) -> list[Request]:
        return [r for r in self.posts() if r.kind == "tweet"]
