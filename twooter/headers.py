"""Browser-side defences sent with every response (Flask-Talisman).

* `Content-Security-Policy`: scripts, styles and requests only from this
  site; no inline script or style, no `eval` (htmx is configured not to need
  it, see `templates/layout.html`); images also from Gravatar (avatars);
  forms post only here; `frame-ancestors 'none'`.
* `X-Frame-Options: DENY` for browsers that predate `frame-ancestors`:
  no site, this one included, can frame a page, so a click on Follow or
  Share inside someone else's frame cannot happen (clickjacking).
* `X-Content-Type-Options: nosniff`, `Referrer-Policy:
  strict-origin-when-cross-origin`.

HTTPS redirects and HSTS are left to the edge that terminates TLS; session
cookie flags stay as `twooter.config` sets them.
"""
from __future__ import annotations

from flask import Flask
from flask_talisman import DENY, Talisman

AVATAR_ORIGIN = "https://www.gravatar.com"

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": ["'self'", AVATAR_ORIGIN],
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
REFERRER_POLICY = "strict-origin-when-cross-origin"


def init_app(app: Flask) -> None:
    """Send the headers above on every response of `app`, error pages and static files included."""
    Talisman(
        app,
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options=DENY,
        referrer_policy=REFERRER_POLICY,
        x_content_type_options=True,
        force_https=False,
        strict_transport_security=False,
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=app.config["SESSION_COOKIE_HTTPONLY"],
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
        # Only the policies this module names: no experimental headers on top.
        permissions_policy={},
        document_policy={},
        feature_policy={},
    )
