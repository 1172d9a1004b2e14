"""API keys and passwords.

API keys carry 256 random bits, so a fast hash (SHA-256) is enough to store them safely: there is
nothing to guess. Passwords are chosen by people and get argon2.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

KEY_PREFIX = "tnt"

_passwords = PasswordHash((Argon2Hasher(),))


@dataclass(frozen=True)
class NewKey:
    prefix: str
    secret: str  # the whole token the caller sends; shown once
    secret_hash: str


def new_api_key() -> NewKey:
    prefix = secrets.token_hex(6)
    token = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix=prefix, secret=token, secret_hash=hash_token(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_prefix(token: str) -> str | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    if not stored_hash:
        return False
    return _passwords.verify(password, stored_hash)


def generate_password() -> str:
    return secrets.token_urlsafe(12)
