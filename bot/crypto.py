"""Pseudonymous look-up keys and encryption at rest.

* ``lookup(channel, address)``: HMAC-SHA256 of a channel address under the deployment's look-up
  key. The same person on the same channel always gets the same key; the key reveals nothing.
* ``seal`` / ``open``: AES-256-GCM with a random nonce; the key id is stored beside each
  ciphertext so keys can be rotated (new data under the current key, old data still readable).
  The associated data binds a ciphertext to its purpose, so a body cannot be swapped for an
  address.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Callable, Optional, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.settings import Keys

NONCE_BYTES = 12
TAG_BYTES = 16


class DecryptionError(Exception):
    """A ciphertext could not be opened (unknown key id, tampered data, wrong purpose)."""


class KeyDestroyed(DecryptionError):
    """The ciphertext was sealed with an association's key that has been destroyed."""


KeyResolver = Callable[[str], Optional[bytes]]  # key id -> key, None if unknown; KeyDestroyed


class Vault:
    """Holds the keys of a deployment; never prints them."""

    def __init__(self, keys: Keys) -> None:
        if keys.current_key_id not in keys.data_keys:
            raise ValueError("current key id has no key")
        self._lookup_key = keys.lookup_key
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.data_keys.items()}
        self.current_key_id = keys.current_key_id
        # keys outside the deployment's (an association's own, bot/association_keys.py)
        self.resolver: Optional[KeyResolver] = None

    def __repr__(self) -> str:
        return f"Vault(current_key_id={self.current_key_id!r})"

    def lookup(self, channel: str, address: str) -> str:
        """Pseudonymous, stable look-up key of an address on a channel (hex)."""
        message = f"{channel}\x00{address}".encode()
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()

    def seal(self, plaintext: str, purpose: str, key_id: Optional[str] = None) -> Tuple[bytes, str]:
        """Encrypt text for storage, under the current deployment key or ``key_id`` (an
        association's); returns (ciphertext, key id)."""
        key_id = key_id or self.current_key_id
        nonce = os.urandom(NONCE_BYTES)
        cipher = self._cipher(key_id)
        data = cipher.encrypt(nonce, plaintext.encode("utf-8"), purpose.encode())
        return nonce + data, key_id

    def own_key(self, key_id: str) -> bool:
        """True for a deployment key (not an association's)."""
        return key_id in self._ciphers

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        key = self.resolver(key_id) if self.resolver is not None else None  # may raise KeyDestroyed
        if key is None:
            raise DecryptionError("unknown key id")
        return AESGCM(key)

    def open(self, ciphertext: bytes, key_id: str, purpose: str) -> str:
        """Decrypt what :meth:`seal` produced."""
        cipher = self._cipher(key_id)
        if len(ciphertext) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("ciphertext too short")
        try:
            data = cipher.decrypt(ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:], purpose.encode())
        except InvalidTag:
            raise DecryptionError("ciphertext does not authenticate") from None
        return data.decode("utf-8")


def new_token(nbytes: int = 24) -> str:
    """An opaque random token (URL-safe)."""
    import secrets

    return secrets.token_urlsafe(nbytes)
