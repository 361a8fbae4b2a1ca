"""Property-based fuzzing of every operation in the API's served OpenAPI description.

Whatever the path, query, credentials and body, the answer is never a 5xx,
its status is one the description lists, and every error is JSON with a reason.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scenario import SIMULATOR_AUTHORIZATION
from tests.twooter_client import TIMEOUT
from twooter import simapi

SPEC = json.loads(Path(simapi.OPENAPI_FILE).read_text())
OPERATIONS = [
    (path, method.upper()) for path, operations in SPEC["paths"].items() for method in operations
]
KNOWN_USERS = ("alice", "Roger Histand", "Zoë 東京")
# Any request may be refused as too large; the description lists the rest.
ALWAYS_ALLOWED = {"413"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
field_values = st.one_of(
    st.sampled_from(KNOWN_USERS), st.text(max_size=40), st.text(max_size=2000), json_values,
    st.just("x@y"), st.just(""), st.just("\x00"),
)
query_numbers = st.one_of(
    st.none(), st.integers(-(2**70), 2**70).map(str), st.text(max_size=10),
    st.sampled_from(["", "1.5", "+3", " 7", "0x1f", "٣"]),
)


def body_strategy(path: str, operation: dict):
    """Bodies shaped like the description's schema with wild values, any JSON, or raw bytes.

    /register always gets JSON: without it the request is the web form's.
    """
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    names = ["content", "username", "email", "pwd", "follow", "unfollow"]
    if schema:
        resolved = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        names = list(resolved.get("properties", {})) or ["follow", "unfollow"]
    shaped = st.fixed_dictionaries({}, optional={name: field_values for name in names})
    return st.one_of(
        st.none() if path != "/register" else st.nothing(),
        st.tuples(st.just("json"), shaped | json_values),
        st.tuples(st.just("raw"), st.binary(max_size=200)),
    )


def ensure_known_users(server) -> None:
    if getattr(server, "fuzz_users_ready", False):
        return
    for name in KNOWN_USERS:
        requests.post(server.url + "/register", json={"username": name, "email": "a@b", "pwd": "p"}, timeout=TIMEOUT)
    server.fuzz_users_ready = True


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_operation_ever_answers_5xx(server, path, method, data):
    ensure_known_users(server)
    operation = SPEC["paths"][path][method.lower()]
    url_path = path
    if "{username}" in path:
        # "." and ".." would be resolved away by the HTTP client before they reach the server.
        names = st.text(min_size=1, max_size=40).filter(lambda name: name not in (".", ".."))
        name = data.draw(st.one_of(st.sampled_from(KNOWN_USERS), names), "username")
        url_path = path.replace("{username}", quote(name, safe=""))
    params = {
        name: value
        for name in ("latest", "no")
        if (value := data.draw(query_numbers, name)) is not None
    }
    headers = {"Connection": "close"}
    authorization = data.draw(
        st.sampled_from([SIMULATOR_AUTHORIZATION, SIMULATOR_AUTHORIZATION, None, "Basic Zm9vOmJhcg==", "Bearer x"]),
        "authorization",
    )
    if authorization is not None:
        headers["Authorization"] = authorization
    body = data.draw(body_strategy(path, operation), "body") if "requestBody" in operation else None
    payload = None
    if body is not None:
        kind, value = body
        payload = json.dumps(value).encode("utf-8") if kind == "json" else value
        headers["Content-Type"] = "application/json"

    response = requests.request(
        method, server.url + url_path, params=params, headers=headers, data=payload, timeout=TIMEOUT
    )

    assert response.status_code < 500, response.text
    assert str(response.status_code) in set(operation["responses"]) | ALWAYS_ALLOWED, (
        response.status_code, response.text,
    )
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("application/json")
        error = response.json()
        assert error["status"] == response.status_code
        assert isinstance(error["error_msg"], str) and error["error_msg"]
    elif response.status_code == 200:
        assert isinstance(response.json(), (dict, list))
