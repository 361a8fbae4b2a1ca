"""The site's icon at `/favicon.ico`, where browsers and crawlers look for it unasked.

Without it every first visit asked `/<username>` for a user called
"favicon.ico" and logged a failed request. The file is `static/favicon.ico`
(a 32×32 PNG inside an ICO), served by the static endpoint, so it is cached
and logged like any other static file.
"""
from __future__ import annotations

from flask import Flask

ICON = "favicon.ico"


def init_app(app: Flask) -> None:
    """Serve `static/favicon.ico` of `app` at `/favicon.ico` too."""
    # Same endpoint, fixed filename: url_for("static", filename=ICON) builds /favicon.ico.
    app.add_url_rule(f"/{ICON}", endpoint="static", defaults={"filename": ICON})
