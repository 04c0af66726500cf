"""argon2id password hashing (argon2-cffi, RFC 9106 parameters)."""

from __future__ import annotations

import contextlib
import functools
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommended option: t=3, m=64 MiB, p=4 (~150 ms
# here). Verification runs in a worker thread so that it never stalls the event loop.
_HASHER: Final = argon2.PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so both paths cost the same (no user enumeration
    by timing). Made on first use, not at import: every process (the CLI too) would pay ~0.2 s."""
    return _HASHER.hash("mailwright-dummy-password")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches `stored_hash`; None means an unknown user (still one verify).

    argon2's own verify compares the digests in constant time. A stored value that is not a
    hash (an account whose password was disabled by hand) costs one dummy verify as well, so
    that no path answers faster than another.
    """
    try:
        _HASHER.verify(stored_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError):
        return False
    except InvalidHashError:
        with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
            _HASHER.verify(_dummy_hash(), password)
        return False
    return stored_hash is not None
