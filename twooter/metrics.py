"""Prometheus instruments of one app instance, and the /metrics page that exposes them.

Every instrument lives here. Each app has its own registry (tests build many
apps in one process, and each waitress process is one instance that
Prometheus scrapes on its own, never through the load balancer).

Requests are counted by route rule (`/<username>`, never the raw path, so a
user is not a series), method and status, with a latency histogram per rule.
Domain events are counted when they are committed: `on_commit("twoot")`
next to the code that makes the change counts it only if the session's
transaction then commits (a rollback forgets it). Log records are counted
by level as the writer builds them.

/metrics is not public. By default only loopback may read it; more networks
(TWOOTER_METRICS_ALLOW) or a bearer token (TWOOTER_METRICS_TOKEN) by
configuration. A request that says it came through a proxy (Forwarded or
X-Forwarded-For; waitress drops those unless told to trust the proxy) needs
the token, and a proxy on an allowed address must not pass /metrics on.
Anyone else gets 404, as if there were no such page.
"""
from __future__ import annotations

import hmac
import ipaddress
import platform
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from sqlalchemy import event
from sqlalchemy.orm import Session

from .logwriter.levels import RECORD_LEVELS

EXTENSION = "twooter_metrics"
DEFAULT_ALLOWED = "127.0.0.0/8 ::1/128"
# Our requests take about a millisecond; the default buckets start at 5 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A method is whatever the client sends; only these become label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_ROUTE = "(no route)"
# How a retried unit of work ended: its retry committed, or it failed again and the request failed.
DB_RETRY_OUTCOMES = ("committed", "failed")
_PENDING = "twooter_metrics_pending"

# Simulator endpoints -> the action they are, by method (None: any method).
SIMULATOR_ACTIONS: dict[str, dict[str | None, str]] = {
    "simapi.latest": {None: "latest"},
    "simapi.public_messages": {None: "read_messages"},
    "simapi.user_messages": {"GET": "read_messages", "POST": "tweet"},
    "simapi.follows": {"GET": "read_follows", "POST": "follow"},
}

bp = Blueprint("metrics", __name__)

# A `_created` series beside every counter doubles what is scraped and stored; no rule or panel reads them.
disable_created_metrics()


class MetricsConfigError(ValueError):
    """A metrics setting that cannot be used, naming the variable."""


@dataclass(frozen=True)
class Access:
    """Who may read /metrics: clients in `networks`, or anyone with the bearer `token`."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    token: str = ""

    @classmethod
    def parse(cls, allowed: str, token: str) -> "Access":
        """From TWOOTER_METRICS_ALLOW (CIDRs, spaces or commas between) and TWOOTER_METRICS_TOKEN."""
        networks = []
        for part in allowed.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise MetricsConfigError(f"TWOOTER_METRICS_ALLOW: {part!r} is not an address or network "
                                         "(e.g. 10.0.5.0/24)") from None
        return cls(tuple(networks), token)

    def admits(self, client: str, authorization: str, proxied: bool) -> bool:
        if self.token and hmac.compare_digest(authorization.encode("latin-1", "replace"),
                                              f"Bearer {self.token}".encode("latin-1", "replace")):
            return True
        if proxied:
            return False
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        if getattr(address, "ipv4_mapped", None):
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class Instruments:
    """The instruments of one app, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.requests = Counter("twooter_http_requests", "HTTP requests answered, by route rule, method and status.",
                                ["route", "method", "status"], registry=registry)
        self.latency = Histogram("twooter_http_request_duration_seconds",
                                 "Time from a request's arrival in the app to its response, by route rule.",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self.simulator_actions = Counter("twooter_simulator_actions",
                                         "Simulator API requests by action and outcome (ok, refused: 4xx, error: 5xx).",
                                         ["action", "outcome"], registry=registry)
        self.twoots = Counter("twooter_twoots_posted", "Twoots committed, by where they were posted (web, api).",
                              ["via"], registry=registry)
        self.registrations = Counter("twooter_registrations", "Users registered (committed), by web or api.",
                                     ["via"], registry=registry)
        self.logins = Counter("twooter_logins", "Logins on the web, by outcome (success, failure).",
                              ["outcome"], registry=registry)
        self.follows = Counter("twooter_follows", "Follow and unfollow changes committed, by change and via.",
                               ["change", "via"], registry=registry)
        self.log_records = Counter("twooter_log_records", "Log records written, by level.", ["level"],
                                   registry=registry)
        self.db_retries = Counter("twooter_db_retries",
                                  "Units of work retried after a transient database failure, by outcome.",
                                  ["outcome"], registry=registry)
        self.replica_reads = Counter("twooter_db_replica_reads", "Reads served by a database replica.",
                                     registry=registry)
        self.pool_in_use = Gauge("twooter_db_pool_connections_in_use",
                                 "Database connections checked out of this instance's pool.", registry=registry)
        self.log_free = Gauge("twooter_log_folder_free_bytes",
                              "Free bytes on the filesystem of the log folder (for non-root writers).",
                              registry=registry)
        self.log_size = Gauge("twooter_log_folder_filesystem_bytes", "Size of the log folder's filesystem.",
                              registry=registry)
        self.build = Info("twooter_build", "The running code.", registry=registry)
        self.config = Info("twooter_config", "Settings of this instance that explain its behaviour.",
                           registry=registry)
        self.started = Gauge("twooter_start_time_seconds", "When this instance's app was built (Unix time).",
                             registry=registry)
        self.started.set(time.time())
        self._request_children: dict[tuple[str, str, int], tuple] = {}
        self._log_children: dict[str, Any] = {}
        self._event_children: dict[tuple, Any] = {}
        self._by_event = {
            "twoot": self.twoots, "registration": self.registrations, "follow": self.follows,
        }
        # Series that exist from the start, at 0: a rate over them is 0, not "no data".
        for via in ("web", "api"):
            self.twoots.labels(via)
            self.registrations.labels(via)
            for change in ("follow", "unfollow"):
                self.follows.labels(change, via)
        for outcome in ("success", "failure"):
            self.logins.labels(outcome)
        for outcome in DB_RETRY_OUTCOMES:
            self.db_retries.labels(outcome)
        for level in RECORD_LEVELS:
            self.log_records.labels(level)
        for action in sorted({a for actions in SIMULATOR_ACTIONS.values() for a in actions.values()}
                             | {"register", "unfollow"}):
            for outcome in ("ok", "refused", "error"):
                self.simulator_actions.labels(action, outcome)

    def child(self, name: str, labels: dict[str, str]):
        """The counter of a domain event (`twoot`, `registration`, `follow`) with its labels."""
        key = (name, *sorted(labels.items()))
        found = self._event_children.get(key)
        if found is None:
            found = self._event_children[key] = self._by_event[name].labels(**labels)
        return found

    def request_children(self, route: str, method: str, status: int):
        """The request counter and latency histogram of one (route, method, status), made once.

        labels() takes a lock and checks its arguments on every call; a
        request should cost a dictionary lookup. Two threads making the same
        entry at once get the same children from labels().
        """
        key = (route, method, status)
        found = self._request_children.get(key)
        if found is None:
            found = self._request_children[key] = (
                self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
        return found

    def log_record_child(self, level: str):
        found = self._log_children.get(level)
        if found is None:
            found = self._log_children[level] = self.log_records.labels(level)
        return found


def _disk(folder: Path, what: str) -> float:
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return float("nan")
    return float(getattr(usage, what))


def _pool_in_use(engine) -> float:
    checked_out = getattr(engine.pool, "checkedout", None)
    return float(checked_out()) if checked_out else float("nan")


def init_app(app: Flask) -> None:
    """Build this app's instruments, time and count its requests, serve /metrics (unless METRICS_ENABLED is off)."""
    if not app.config.get("METRICS_ENABLED", True):
        return
    access = Access.parse(app.config.get("METRICS_ALLOW", DEFAULT_ALLOWED), app.config.get("METRICS_TOKEN") or "")
    instruments = Instruments(CollectorRegistry(auto_describe=True))
    app.extensions[EXTENSION] = instruments
    app.extensions[EXTENSION + ".access"] = access

    from .extensions import db
    from .logwriter import settings as log_settings

    with app.app_context():
        engine = db.engine
    instruments.pool_in_use.set_function(lambda: _pool_in_use(engine))
    folder = log_settings.of(app).folder
    instruments.log_free.set_function(lambda: _disk(folder, "free"))
    instruments.log_size.set_function(lambda: _disk(folder, "total"))
    instruments.build.info({"version": _version(), "python": platform.python_version()})
    instruments.config.info({
        "instance_name": log_settings.of(app).instance,
        "database": engine.dialect.name,
        "page_size": str(app.config.get("TIMELINE_PAGE_SIZE", "")),
        "metrics_networks": " ".join(str(network) for network in access.networks),
        "metrics_token": "set" if access.token else "unset",
    })

    # First, so that the time of every other hook is in the request's latency.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_count_request)
    app.register_blueprint(bp)


def _version() -> str:
    try:
        return metadata.version("twooter")
    except metadata.PackageNotFoundError:
        return "unknown"


def current() -> Instruments | None:
    """The instruments of the app at hand, or None (outside an app, or with metrics turned off)."""
    try:
        return current_app.extensions.get(EXTENSION)
    except RuntimeError:  # outside an app: cheaper to ask once than to check first on every record
        return None


# --- requests --------------------------------------------------------------------

def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    instruments = current_app.extensions[EXTENSION]
    started = g.get("metrics_started")
    # One lookup through the context-local proxy instead of one per attribute: this runs on every request.
    asked = request._get_current_object()
    rule = asked.url_rule
    route = rule.rule if rule is not None else NO_ROUTE
    method = asked.method if asked.method in KNOWN_METHODS else "other"
    status = response.status_code
    counter, latency = instruments.request_children(route, method, status)
    counter.inc()
    if started is not None:
        latency.observe(time.perf_counter() - started)
    action = _simulator_action(asked)
    if action is not None:
        outcome = "ok" if status < 400 else "refused" if status < 500 else "error"
        instruments.simulator_actions.labels(action, outcome).inc()
    return response


def _simulator_action(asked) -> str | None:
    endpoint = asked.endpoint or ""
    if endpoint == "auth.register":
        # The simulator registers on the web's path, with JSON.
        return "register" if asked.method == "POST" and asked.is_json else None
    actions = SIMULATOR_ACTIONS.get(endpoint)
    if actions is None:
        return None
    action = actions.get(asked.method) or actions.get(None)
    if action == "follow":
        body = asked.get_json(force=True, silent=True)
        if isinstance(body, dict) and "unfollow" in body:
            return "unfollow"
    return action


@bp.get("/metrics")
def metrics() -> Response:
    """This instance's metrics in Prometheus's text format, for the addresses and token configured."""
    access: Access = current_app.extensions[EXTENSION + ".access"]
    proxied = "Forwarded" in request.headers or "X-Forwarded-For" in request.headers
    if not access.admits(request.remote_addr or "", request.headers.get("Authorization", ""), proxied):
        abort(404)
    instruments: Instruments = current_app.extensions[EXTENSION]
    return Response(generate_latest(instruments.registry), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Cache-Control": "no-store"})


# --- domain events, counted when committed ------------------------------------------

def on_commit(name: str, **labels: str) -> None:
    """Count the domain event `name` (twoot, registration, follow) when the current transaction commits.

    Call it next to the change it counts: before the commit, the count waits
    for it (a rollback forgets it); after it, with no transaction open, the
    change is stored and is counted at once. Does nothing outside an app or
    with metrics turned off.
    """
    instruments = current()
    if instruments is None:
        return
    from .extensions import db

    child = instruments.child(name, labels)
    session = db.session()  # the request's own session, not the scoped proxy
    if session.in_transaction():
        session.info.setdefault(_PENDING, []).append(child)
    else:
        child.inc()


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for child in session.info.pop(_PENDING, ()):
        child.inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def count_login(success: bool) -> None:
    """One web login attempt, by outcome."""
    instruments = current()
    if instruments is not None:
        instruments.logins.labels("success" if success else "failure").inc()


def count_log_record(level: str) -> None:
    """One log record written (to however many targets), by its level name."""
    instruments = current()
    if instruments is not None:
        instruments.log_record_child(level).inc()


def count_db_retry(outcome: str) -> None:
    """A unit of work retried after a transient failure; `outcome` (DB_RETRY_OUTCOMES) is how the retry ended.

    ValueError for another outcome: the label values are a fixed set.
    """
    if outcome not in DB_RETRY_OUTCOMES:
        raise ValueError(f"a retry ends {' or '.join(DB_RETRY_OUTCOMES)}, not {outcome!r}")
    instruments = current()
    if instruments is not None:
        instruments.db_retries.labels(outcome).inc()


def count_replica_read() -> None:
    """A read that a replica served."""
    instruments = current()
    if instruments is not None:
        instruments.replica_reads.inc()
