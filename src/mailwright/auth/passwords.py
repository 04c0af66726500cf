"""argon2id password hashing (argon2-cffi, RFC 9106 parameters)."""

from __future__ import annotations

from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommended option: t=3, m=64 MiB, p=4 (~150 ms
# here). Verification runs in a worker thread so that it never stalls the event loop.
_HASHER: Final = argon2.PasswordHasher()
# Verified when the user does not exist, so both paths cost the same (no user enumeration by
# timing).
_DUMMY_HASH: Final = _HASHER.hash("mailwright-dummy-password")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches `stored_hash`; None means an unknown user (still one verify)."""
    try:
        _HASHER.verify(stored_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None
