"""Encryption at rest: SESSION_ENCRYPTION_KEYS and the sealed record format.

A sealed payload is::

    FORMAT (1 byte) | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

The key id is the start of a SHA-256 of the key (never the key), so that a
record names the key that sealed it: rotation opens it with that key alone,
and a log line can say which key is missing. The associated data is the header
and the record's store key, so a record copied under another key, or with its
header edited, fails authentication like any other tampering.

The first key seals; every key opens. Nothing here knows of stores or sessions:
``stores/sealed.py`` applies it to every record.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import SessionConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: The first byte of every sealed payload. No plaintext record starts with it:
#: JSON starts with "{", msgpack maps and pickle at 0x80 or above, markers at 0x00.
FORMAT = b"\x01"
KEY_LENGTH = 32
KEY_ID_LENGTH = 4
NONCE_LENGTH = 12
TAG_LENGTH = 16
HEADER_LENGTH = len(FORMAT) + KEY_ID_LENGTH
#: What sealing adds to a payload's size.
OVERHEAD = HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH
_URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_KEY_ID_LABEL = b"quart-session encryption key id\x00"


class Unreadable(ValueError):
    """A payload no configured key opens. Its message names at most a key id."""


class NotSealed(Unreadable):
    """A payload that was never sealed (stored before encryption was on)."""


def parse_keys(value: Any) -> tuple[bytes, ...]:
    """SESSION_ENCRYPTION_KEYS as raw 32-byte keys (() for None).

    Each key is 32 bytes, or URL-safe base64 text of 32 bytes (what
    ``secrets.token_urlsafe(32)`` prints). Errors say which key is wrong and
    why, never what it holds.
    """
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise SessionConfigError(
            "SESSION_ENCRYPTION_KEYS must be a list of keys (a single key too: [key]), "
            f"not a {type(value).__name__}"
        )
    if not value:
        raise SessionConfigError(
            "SESSION_ENCRYPTION_KEYS is empty: give at least one key, or None to store "
            "sessions unencrypted"
        )
    return tuple(_parse_key(index, key) for index, key in enumerate(value))


def _parse_key(index: int, key: object) -> bytes:
    where = f"SESSION_ENCRYPTION_KEYS[{index}]"
    if isinstance(key, bytes):
        raw = key
    elif isinstance(key, str):
        if not _URLSAFE_BASE64.fullmatch(key):
            raise SessionConfigError(
                f"{where} is not URL-safe base64 text (make one with secrets.token_urlsafe(32))"
            )
        try:
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        except ValueError:
            raise SessionConfigError(f"{where} is not valid URL-safe base64 text") from None
    else:
        raise SessionConfigError(
            f"{where} must be bytes or base64 text, not a {type(key).__name__}"
        )
    if len(raw) != KEY_LENGTH:
        raise SessionConfigError(
            f"{where} is {len(raw)} bytes long (decoded), not {KEY_LENGTH}: make one with "
            "secrets.token_urlsafe(32) or secrets.token_bytes(32)"
        )
    return raw


def require_cryptography() -> None:
    """SessionConfigError naming the extra if the ``cryptography`` package is missing."""
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
    except ImportError:
        raise SessionConfigError(
            "SESSION_ENCRYPTION_KEYS needs the cryptography package: "
            'pip install "quart-session[encryption]"'
        ) from None


def key_id(key: bytes) -> bytes:
    """The id a sealed payload names its key by (reveals nothing of the key)."""
    return hashlib.sha256(_KEY_ID_LABEL + key).digest()[:KEY_ID_LENGTH]


class Keyring:
    """Seals with the first of *keys*, opens with any of them."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        require_cryptography()
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        # Imported here, once: the package is optional (the "encryption" extra).
        self._invalid_tag = InvalidTag

        if not keys:
            raise SessionConfigError("a keyring needs at least one key")
        self._ciphers: dict[bytes, list[AESGCM]] = {}
        for key in keys:
            self._ciphers.setdefault(key_id(key), []).append(AESGCM(key))
        self.current_id = key_id(keys[0])
        self._sealer = AESGCM(keys[0])
        self._header = FORMAT + self.current_id

    def __repr__(self) -> str:
        ids = ", ".join(kid.hex() for kid in self._ciphers)
        return f"Keyring(key ids: {ids})"

    def seal(self, store_key: str, payload: bytes) -> bytes:
        """*payload* sealed for the record at *store_key*."""
        nonce = secrets.token_bytes(NONCE_LENGTH)
        header = self._header
        sealed = self._sealer.encrypt(nonce, payload, header + _associated(store_key))
        return header + nonce + sealed

    def open(self, store_key: str, sealed: bytes) -> bytes:
        """The payload *sealed* holds for the record at *store_key*;
        ``NotSealed`` or ``Unreadable`` if it is not one this keyring opens."""
        if sealed[:1] != FORMAT:
            raise NotSealed("the record is not encrypted")
        if len(sealed) < OVERHEAD:
            raise Unreadable("the encrypted record is truncated")
        header = sealed[:HEADER_LENGTH]
        kid = header[len(FORMAT) :]
        ciphers = self._ciphers.get(kid)
        if ciphers is None:
            raise Unreadable(f"the record was encrypted by a key not configured (id {kid.hex()})")
        nonce = sealed[HEADER_LENGTH : HEADER_LENGTH + NONCE_LENGTH]
        associated = header + _associated(store_key)
        for cipher in ciphers:  # more than one only if two key ids collide
            try:
                return cipher.decrypt(nonce, sealed[HEADER_LENGTH + NONCE_LENGTH :], associated)
            except self._invalid_tag:
                continue
        raise Unreadable(
            f"the record fails authentication under key id {kid.hex()} "
            "(altered, or copied from another session)"
        )

    def is_current(self, sealed: bytes) -> bool:
        """Whether *sealed* names the key that seals now (rotation skips it)."""
        return sealed[:HEADER_LENGTH] == self._header


def _associated(store_key: str) -> bytes:
    # surrogatepass: a key is whatever text the engine made; never fail on it.
    return store_key.encode("utf-8", "surrogatepass")
