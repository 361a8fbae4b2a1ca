"""Settings read from the environment, with defaults that suit one machine.

| variable                 | default                                   |
|--------------------------|-------------------------------------------|
| DATABASE_URL             | sqlite:///<instance>/twooter.sqlite        |
| SECRET_KEY               | generated once into <instance>/secret_key  |
| TWOOTER_INSTANCE_PATH    | ./instance next to the code                |
| SESSION_COOKIE_SECURE    | false (set true behind HTTPS)              |
| TWOOTER_TRUSTED_ORIGINS  | empty; space-separated extra origins       |
| TWOOTER_LOG_DIR          | <instance>/logs                            |
| TWOOTER_LOG_VIEW_DIR     | TWOOTER_LOG_DIR; the folder /logs shows (a central one) |
| TWOOTER_INSTANCE_NAME    | the host name; names this instance's files |
| TWOOTER_LOG_CONFIG       | <instance>/logging.json, else the default  |
| TWOOTER_LOG_COMPRESS_DAYS| 7 (gzip day files this old; 0: never)      |
| TWOOTER_LOG_RETENTION_DAYS| 30 (delete day files this old; 0: never)  |
| TWOOTER_DB_RETRY_SECONDS | 10 (time a request may spend retrying)     |
| TWOOTER_LOGIN_FAILURES_PER_ACCOUNT | 5 (failed logins of one name that lock it) |
| TWOOTER_LOGIN_FAILURES_PER_ADDRESS | 50 (failed logins from one address that lock it) |
| TWOOTER_LOGIN_FIRST_LOCK_SECONDS   | 15 (the first lock; each further failure doubles it) |
| TWOOTER_LOGIN_LONGEST_LOCK_SECONDS | 300 (the longest lock) |
| TWOOTER_TRUSTED_PROXY    | none; the proxy addresses, space-separated ("*": any peer), whose X-Forwarded-For `serve` believes |
| TWOOTER_METRICS          | on; off removes /metrics and its counting  |
| TWOOTER_METRICS_ALLOW    | 127.0.0.0/8 ::1/128: who may read /metrics |
| TWOOTER_METRICS_TOKEN    | empty; a bearer token that may read it too |
| DATABASE_REPLICA_URL     | none; lag-tolerant reads come from it      |
| TWOOTER_READ_YOUR_WRITES_SECONDS | 5 (a writer reads the primary so long) |
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parent
# A built wheel carries templates/, static/ and migrations/ inside the package
# (setup.py maps them there); a checkout keeps them at the top of the tree.
INSTALLED_FROM_WHEEL = (PACKAGE_ROOT / "templates").is_dir()
# Installed, the package's parent is site-packages: no place for runtime data.
DEFAULT_INSTANCE_PATH = Path("instance") if INSTALLED_FROM_WHEEL else PROJECT_ROOT / "instance"

TRUE_WORDS = {"1", "true", "yes", "on"}


def shipped_folder(name: str) -> Path:
    """The folder `name` (templates, static, migrations) of this installation, wheel or checkout."""
    return (PACKAGE_ROOT if INSTALLED_FROM_WHEEL else PROJECT_ROOT) / name


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in TRUE_WORDS


def instance_path() -> Path:
    return Path(os.environ.get("TWOOTER_INSTANCE_PATH", DEFAULT_INSTANCE_PATH)).resolve()


def normalise_database_url(url: str) -> str:
    # Hosting platforms hand out "postgres://"; SQLAlchemy only knows the long name.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def load_or_create_secret_key(folder: Path) -> str:
    """Read the instance's secret key, creating it exactly once.

    Several processes may start together on one instance folder, so the file
    is created with O_EXCL and a loser of that race reads the winner's key.
    """
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            key = key_file.read_text().strip()
            if key:
                return key
            time.sleep(0.01)
        raise RuntimeError(f"{key_file} exists but is empty")
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def settings_from_environment(folder: Path) -> dict:
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{folder / 'twooter.sqlite'}"
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        # Reads that tolerate a moment's lag come from here (data/replica.py).
        "DATABASE_REPLICA_URL": normalise_database_url(os.environ.get("DATABASE_REPLICA_URL") or "") or None,
        "READ_YOUR_WRITES_SECONDS": float(os.environ.get("TWOOTER_READ_YOUR_WRITES_SECONDS", "5")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env_flag("SESSION_COOKIE_SECURE"),
        "TRUSTED_ORIGINS": os.environ.get("TWOOTER_TRUSTED_ORIGINS", "").split(),
        "TIMELINE_PAGE_SIZE": int(os.environ.get("TWOOTER_PAGE_SIZE", "30")),
        "LOG_DIR": os.environ.get("TWOOTER_LOG_DIR") or None,
        # Where rsyslog gathers every instance's files, for a viewer of them all.
        "LOG_VIEW_DIR": os.environ.get("TWOOTER_LOG_VIEW_DIR") or None,
        "LOG_INSTANCE_NAME": os.environ.get("TWOOTER_INSTANCE_NAME") or None,
        "LOG_CONFIG": os.environ.get("TWOOTER_LOG_CONFIG") or None,
        "LOG_COMPRESS_AFTER_DAYS": int(os.environ.get("TWOOTER_LOG_COMPRESS_DAYS", "7")),
        "LOG_DELETE_AFTER_DAYS": int(os.environ.get("TWOOTER_LOG_RETENTION_DAYS", "30")),
        # How long a unit of work may retry a database that is away before the
        # request answers 503 with Retry-After (a failover takes seconds).
        "DATABASE_RETRY_SECONDS": float(os.environ.get("TWOOTER_DB_RETRY_SECONDS", "10")),
        "LOGIN_FAILURES_PER_ACCOUNT": int(os.environ.get("TWOOTER_LOGIN_FAILURES_PER_ACCOUNT", "5")),
        "LOGIN_FAILURES_PER_ADDRESS": int(os.environ.get("TWOOTER_LOGIN_FAILURES_PER_ADDRESS", "50")),
        "LOGIN_FIRST_LOCK_SECONDS": float(os.environ.get("TWOOTER_LOGIN_FIRST_LOCK_SECONDS", "15")),
        "LOGIN_LONGEST_LOCK_SECONDS": float(os.environ.get("TWOOTER_LOGIN_LONGEST_LOCK_SECONDS", "300")),
        "TRUSTED_PROXY": os.environ.get("TWOOTER_TRUSTED_PROXY", ""),
        "METRICS_ENABLED": env_flag("TWOOTER_METRICS", True),
        "METRICS_ALLOW": os.environ.get("TWOOTER_METRICS_ALLOW") or "127.0.0.0/8 ::1/128",
        "METRICS_TOKEN": os.environ.get("TWOOTER_METRICS_TOKEN") or "",
    }
