"""Session ids: generation, validation, optional signing, and the name a
session's record is stored under.

An id is ``SESSION_ID_LENGTH`` random bytes from :mod:`secrets`, base64url
without padding. Anything else a client sends is rejected before it can reach
a store.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable

from itsdangerous import BadSignature, Signer

from .compat import LegacyIdReader


def encoded_length(nbytes: int) -> int:
    """Characters of base64url without padding for *nbytes* bytes."""
    return (nbytes * 4 + 2) // 3


def new_id(nbytes: int) -> str:
    return secrets.token_urlsafe(nbytes)


def record_name(sid: str, hashed: bool) -> str:
    """The name session *sid*'s record is stored under (its key is
    ``SESSION_KEY_PREFIX`` + the name).

    *hashed* (``SESSION_HASH_IDS``): the SHA-256 of the id, base64url without
    padding, so that whoever reads the store (a backup, a replica, a log of
    keys) finds no id a client could present. A plain hash suffices: an id
    holds 128 random bits or more (a 3.0 UUID4: 122), far too many to find
    by hashing guesses.
    Otherwise the id itself.
    """
    if not hashed:
        return sid
    digest = hashlib.sha256(sid.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class IdCodec:
    """Turns ids into cookie values and cookie values back into trusted ids."""

    def __init__(self, nbytes: int, secret_keys: Iterable[str | bytes] | None = None) -> None:
        self.nbytes = nbytes
        self._pattern = re.compile(rf"[A-Za-z0-9_-]{{{encoded_length(nbytes)}}}")
        keys = [k.encode() if isinstance(k, str) else k for k in secret_keys or ()]
        self._has_fallbacks = len(keys) > 1
        # itsdangerous signs with the last key and verifies with all of them.
        self._signer = (
            Signer(keys[::-1], salt="quart-session", digest_method=hashlib.sha256) if keys else None
        )
        self._legacy = LegacyIdReader(keys)

    def new(self) -> str:
        return new_id(self.nbytes)

    def is_valid(self, sid: str) -> bool:
        return self._pattern.fullmatch(sid) is not None

    def to_cookie(self, sid: str) -> str:
        if self._signer is None:
            return sid
        return self._signer.sign(sid).decode()

    def from_cookie(self, value: str) -> str | None:
        """The id in a cookie value, or None if it is malformed or badly signed."""
        if self._signer is not None:
            try:
                value = self._signer.unsign(value).decode()
            except BadSignature:
                return None
        return value if self.is_valid(value) else None

    def needs_resigning(self, value: str, sid: str) -> bool:
        """Whether cookie *value* (holding *sid*) was signed with a fallback
        key: the response then re-sends it signed with the current one."""
        return self._has_fallbacks and value != self.to_cookie(sid)

    def from_legacy_cookie(self, value: str) -> str | None:
        """The Quart-Session 3.0 id (a UUID4) in a cookie value, or None."""
        return self._legacy.read(value)
