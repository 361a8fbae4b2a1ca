"""A loopback TCP proxy in front of PostgreSQL that breaks connections at chosen moments.

It reads the client's side of PostgreSQL's wire protocol (a startup message,
then typed messages: one byte, a 32-bit length, the body) just far enough to
recognise a simple query, such as the COMMIT psycopg2 sends, and passes
everything through unchanged until told otherwise. TLS must be off
(`sslmode=disable`) for it to read anything.
"""
from __future__ import annotations

import socket
import struct
import threading
from typing import Callable

import sqlalchemy as sa

# What to do with the message that matched.
FORWARD_THEN_CUT = "forward then cut"  # the server gets it and answers; the client never hears back
CUT = "cut"  # neither side gets it: the connection is gone
GO_AWAY = "go away"  # cut every connection and refuse new ones until come_back()

_STARTUP_CODES_WITHOUT_SESSION = {80877103, 80877104}  # SSLRequest, GSSENCRequest


class PostgresProxy:
    """Listens on 127.0.0.1 (a free port) and relays to `target` (host, port).

    Use as a context manager; leaving it closes every socket it opened and
    joins its threads.
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._trigger: tuple[Callable[[bytes, bytes], bool], str] | None = None
        self._away = threading.Event()
        self._stopping = threading.Event()
        self.fired = threading.Event()

    def url_for(self, database_url: str) -> str:
        """`database_url` pointed at this proxy, without TLS."""
        url = sa.make_url(database_url).set(host="127.0.0.1", port=self.port)
        url = url.update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
        return url.render_as_string(hide_password=False)

    def when(self, matches: Callable[[bytes, bytes], bool], action: str) -> None:
        """Once: on the first client message for which `matches(type, body)` holds, do `action`."""
        self.fired.clear()
        with self._lock:
            self._trigger = (matches, action)

    def come_back(self) -> None:
        self._away.clear()

    # --- inside -------------------------------------------------------------

    def __enter__(self) -> "PostgresProxy":
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._cut_all()
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=10)
        assert not any(thread.is_alive() for thread in self._threads), "a proxy thread did not stop"

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="pgproxy")
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _cut(self, *socks: socket.socket) -> None:
        for sock in socks:
            with self._lock:
                self._sockets.discard(sock)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _cut_all(self) -> None:
        with self._lock:
            socks = list(self._sockets)
        self._cut(*socks)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._away.is_set():
                client.close()  # the server is "down": the client sees its connection closed
                continue
            server = socket.create_connection(self.target, timeout=10)
            server.settimeout(None)
            client.settimeout(None)
            self._track(client)
            self._track(server)
            answered = threading.Event()
            self._spawn(self._client_to_server, client, server, answered)
            self._spawn(self._server_to_client, server, client, answered)

    def _server_to_client(self, server: socket.socket, client: socket.socket,
                          swallow: threading.Event) -> None:
        try:
            while chunk := server.recv(65536):
                if swallow.is_set():
                    break  # the server has answered (so it has acted); the client never hears it
                client.sendall(chunk)
        except OSError:
            pass
        self._cut(server, client)

    def _matched_action(self, kind: bytes, body: bytes) -> str | None:
        with self._lock:
            if self._trigger is None or not self._trigger[0](kind, body):
                return None
            action = self._trigger[1]
            self._trigger = None
        self.fired.set()
        return action

    def _client_to_server(self, client: socket.socket, server: socket.socket,
                          swallow_answer: threading.Event) -> None:
        buffer = b""
        in_startup = True
        try:
            while chunk := client.recv(65536):
                buffer += chunk
                while True:
                    if in_startup:
                        if len(buffer) < 8:
                            break
                        (length,) = struct.unpack("!I", buffer[:4])
                        if len(buffer) < length:
                            break
                        (code,) = struct.unpack("!I", buffer[4:8])
                        message, buffer = buffer[:length], buffer[length:]
                        in_startup = code in _STARTUP_CODES_WITHOUT_SESSION
                        server.sendall(message)
                        continue
                    if len(buffer) < 5:
                        break
                    kind = buffer[:1]
                    (length,) = struct.unpack("!I", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    message, buffer = buffer[:1 + length], buffer[1 + length:]
                    action = self._matched_action(kind, message[5:])
                    if action == FORWARD_THEN_CUT:
                        # The other thread cuts both sides once the server answers.
                        swallow_answer.set()
                        server.sendall(message)
                        return
                    if action is not None:
                        if action == GO_AWAY:
                            self._away.set()
                            self._cut_all()
                        self._cut(client, server)
                        return
                    server.sendall(message)
        except OSError:
            pass
        self._cut(client, server)


def simple_query(prefix: str) -> Callable[[bytes, bytes], bool]:
    """Matches a simple query ('Q') whose text starts with `prefix` (case as psycopg2 sends it)."""
    wanted = prefix.encode()
    return lambda kind, body: kind == b"Q" and body.startswith(wanted)
