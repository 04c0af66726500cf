"""Who has a data directory's store open: a shared flock(2) on `<data>/store.lock`.

Why: `mailwright check --repair` may remove files that no committed row references (temp
files, orphan blobs), but a running server or admin command is at that moment writing such
files for deliveries not yet committed. Every open store holds a shared lock for its whole
life; the check asks for the exclusive lock without waiting: granted means nobody else has the
store open, so every unreferenced file is a crash's leftover; refused means some are in flight
and only old ones may go (check.py, its grace period).

flock, not a pid file: the kernel drops the lock when the process dies, kill -9 included, so a
crash never leaves a stale "running" marker. (flock and SQLite's POSIX locks do not interact.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final

LOCK_NAME: Final = "store.lock"
# A file unreferenced for this long is no delivery in flight: an SMTP DATA or IMAP APPEND ends
# (or times out) in minutes; Dovecot's and Postfix's temp-file sweeps wait hours, too. (Here,
# not in check.py, so that the CLI's option default costs no import of the store.)
DEFAULT_GRACE: Final = 3600.0


def _open(data_dir: Path) -> int:
    path = data_dir / LOCK_NAME
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        if not path.exists():
            raise
        # A read-only file system or file: flock needs no write access.
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def hold_shared(data_dir: Path) -> int:
    """Take the shared lock (waits while a repair holds the exclusive one); returns the fd to
    give to `release` when the store closes."""
    fd = _open(data_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


def try_exclusive(data_dir: Path) -> int | None:
    """The exclusive lock if no store is open on `data_dir` (its fd, for `release`), else None.
    While it is held, a store opening on the directory waits."""
    fd = _open(data_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def in_use(data_dir: Path) -> bool:
    """True while some process (this one included) has the store of `data_dir` open."""
    fd = try_exclusive(data_dir)
    if fd is None:
        return True
    release(fd)
    return False


def release(fd: int) -> None:
    os.close(fd)  # closing the last descriptor drops the flock
