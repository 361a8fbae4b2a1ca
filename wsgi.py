"""Entry point for any WSGI server: `waitress-serve wsgi:app`."""
from twooter import create_app

app = create_app()
