"""A visitor of a running Twooter over HTTP, with the domain's verbs."""
from __future__ import annotations

from urllib.parse import quote

import requests

# Seconds: generous, because other work shares the machine; a healthy answer takes milliseconds.
TIMEOUT = 30


class TwooterClient:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url(path), timeout=TIMEOUT, **kwargs)

    def post(self, path: str, data=None, **kwargs) -> requests.Response:
        return self.http.post(self.url(path), data=data, timeout=TIMEOUT, **kwargs)

    def register(self, username: str, password: str = "default", password2: str | None = None,
                 email: str | None = None) -> requests.Response:
        return self.post(
            "/register",
            {
                "username": username,
                "password": password,
                "password2": password if password2 is None else password2,
                "email": email if email is not None else f"{username}@example.com",
            },
        )

    def login(self, username: str, password: str = "default") -> requests.Response:
        return self.post("/login", {"username": username, "password": password})

    def register_and_login(self, username: str, password: str = "default") -> requests.Response:
        self.register(username, password)
        return self.login(username, password)

    def logout(self) -> requests.Response:
        return self.get("/logout")

    def add_message(self, text: str) -> requests.Response:
        return self.post("/add_message", {"text": text})

    def follow(self, username: str) -> requests.Response:
        return self.get(f"/{quote(username)}/follow")

    def unfollow(self, username: str) -> requests.Response:
        return self.get(f"/{quote(username)}/unfollow")
