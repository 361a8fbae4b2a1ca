"""Password hashing: argon2id for everything new, legacy schemes for migrated users.

Migrated data carries two older formats that must keep working until the
user's next login, when the hash is upgraded:

* Werkzeug hashes (``pbkdf2:…``, ``scrypt:…``) from the original MiniTwit.
* The C#-era format: SHA-256 of the UTF-8 password, each of the 32 bytes
  written as an unpadded decimal number, all concatenated.
"""
from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from werkzeug.security import check_password_hash

# OWASP's minimum argon2id configuration: 19 MiB, 2 passes, 1 lane.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def legacy_csharp_hash(password: str) -> str:
    return "".join(str(byte) for byte in hashlib.sha256(password.encode("utf-8")).digest())


def scheme_of(stored: str) -> str:
    if stored.startswith("$argon2"):
        return "argon2"
    if stored.startswith(("pbkdf2:", "scrypt:")):
        return "werkzeug"
    if stored.isdigit():
        return "csharp-sha256"
    return "unknown"


def verify_password(stored: str, password: str) -> bool:
    scheme = scheme_of(stored)
    if scheme == "argon2":
        try:
            return _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    if scheme == "werkzeug":
        try:
            return check_password_hash(stored, password)
        except ValueError:
            return False
    if scheme == "csharp-sha256":
        return hmac.compare_digest(stored, legacy_csharp_hash(password))
    return False


def needs_upgrade(stored: str) -> bool:
    """True for any hash that is not argon2id with today's parameters."""
    if scheme_of(stored) != "argon2":
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
