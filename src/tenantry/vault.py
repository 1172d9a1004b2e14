"""Secrets at rest: AES-GCM with a 256-bit key (SPEC §14).

A sealed text reads `v1.<key id>.<urlsafe base64 of nonce + ciphertext + tag>`. The nonce is 96
random bits per seal (never reused with one key for any practical number of seals); the key id
is a short digest of the key, so that opening tries the key that sealed the text first and
`rotate` knows whether a text is already under the current key. The key id is authenticated
(associated data): a text cannot be passed off as sealed by another key.

The key is TENANTRY_ENCRYPTION_KEY (urlsafe base64 of 32 bytes) or, when unset, one generated
once into `encryption.key` in the data folder (mode 0600, like the secret key). Older keys in
TENANTRY_ENCRYPTION_OLD_KEYS still open what they sealed until `tenantry secrets rotate` has
re-sealed everything under the current key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from tenantry.settings import Settings

KEY_FILE = "encryption.key"
KEY_BYTES = 32
NONCE_BYTES = 12
_VERSION = "v1"


class VaultError(Exception):
    """A sealed text cannot be opened: a wrong key, or a damaged text. Says nothing of the secret."""


def parse_key(text: str) -> bytes:
    """A key as configured (urlsafe base64 of 32 bytes, padding optional); ValueError otherwise."""
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("an encryption key is the urlsafe base64 text of 32 random bytes") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"an encryption key is 32 bytes (urlsafe base64), this one is {len(key)}")
    return key


def new_key() -> str:
    """A fresh key, as TENANTRY_ENCRYPTION_KEY takes it."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_id(key: bytes) -> str:
    # Eight hex digits of a digest: enough to tell a handful of keys apart, too short to help
    # anyone guess the key.
    return hashlib.sha256(b"tenantry-vault-key-id:" + key).hexdigest()[:8]


class Vault:
    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        for one in (key, *old_keys):
            if len(one) != KEY_BYTES:
                raise ValueError("an encryption key is 32 bytes")
        self._current = (key_id(key), AESGCM(key))
        self._keys = [self._current] + [(key_id(old), AESGCM(old)) for old in old_keys if old != key]

    @property
    def current_key_id(self) -> str:
        return self._current[0]

    def seal(self, plain: str) -> str:
        kid, aead = self._current
        nonce = os.urandom(NONCE_BYTES)
        box = aead.encrypt(nonce, plain.encode(), _aad(kid))
        return f"{_VERSION}.{kid}.{base64.urlsafe_b64encode(nonce + box).decode()}"

    def open(self, sealed: str) -> str:
        """The plain text; the key named by the text first, then the current key, then the old
        ones (a key id is only a hint). VaultError when none opens it."""
        kid, data = _split(sealed)
        nonce, box = data[:NONCE_BYTES], data[NONCE_BYTES:]
        for _, aead in sorted(self._keys, key=lambda item: item[0] != kid):
            try:
                return aead.decrypt(nonce, box, _aad(kid)).decode()
            except (InvalidTag, UnicodeDecodeError):
                continue
        raise VaultError("The stored secrets cannot be opened with the configured keys.")

    def is_current(self, sealed: str) -> bool:
        return _split(sealed)[0] == self.current_key_id

    def rotate(self, sealed: str) -> str:
        """The same secret sealed under the current key (unchanged when it already is)."""
        if self.is_current(sealed):
            self.open(sealed)  # still refuses a damaged text
            return sealed
        return self.seal(self.open(sealed))


def _aad(kid: str) -> bytes:
    return f"tenantry-vault:{_VERSION}:{kid}".encode()


def _split(sealed: str) -> tuple[str, bytes]:
    parts = sealed.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise VaultError("The stored secrets are damaged.")
    try:
        data = base64.urlsafe_b64decode(parts[2])
    except (binascii.Error, ValueError):
        raise VaultError("The stored secrets are damaged.") from None
    if len(data) < NONCE_BYTES + 16:
        raise VaultError("The stored secrets are damaged.")
    return parts[1], data


def load_vault(settings: Settings) -> Vault:
    """The vault of these settings: TENANTRY_ENCRYPTION_KEY, else the key kept in the data folder
    (generated once, readable by its owner only; of processes racing to create it, one wins and
    the others read its key)."""
    if settings.encryption_key:
        key = parse_key(settings.encryption_key)
    else:
        key = parse_key(ensure_key_file(settings.data_dir / KEY_FILE))
    old = [parse_key(item) for item in settings.encryption_old_keys.split(",") if item.strip()]
    return Vault(key, old)


def ensure_key_file(path: Path) -> str:
    """The key kept at `path`, made first if there is none."""
    from tenantry.settings import create_key_file

    if not path.exists():
        create_key_file(path, new_key())
    return path.read_text().strip()
