"""Content-addressed, immutable message files: `<data>/blobs/ab/<sha256hex>`.

Invariants (the order is what makes a crash safe):
1. Bytes arrive into `<data>/tmp/<random>` and are hashed with SHA-256 as they arrive.
2. Before a row references a file, the file is fsynced (`StagedBlob.finish`), it has its
   content address (`BlobFiles.publish`: a hard link, the moral equivalent of the rename) and
   that directory is fsynced: the prepare step of the writer's batch that commits the rows
   (writer.py); a large file is fsynced in a worker pool before (sqlite.py, INLINE_FSYNC_MAX).
   After the commit the temp name is unlinked.
3. Only a committed row makes a file under blobs/ trustworthy. A file at an address with no
   row (an orphan after a crash, possibly incomplete, or another delivery still in flight) is
   replaced, never reused (`BlobFiles.ensure`, under the database write lock). A referenced
   file never changes; the same content has the same name, so one copy serves every recipient.
4. A crash anywhere leaves at worst an unreferenced file in tmp/ or blobs/ (legal; a repair
   tool may delete it). Never a row pointing at a missing or partial file.

The 256 fan-out directories (first two hex digits) are created on first use, and blobs/ is
fsynced then so that the new directory's own name is durable too.

Disk-full and read-only errors surface as `StorageUnavailable`: SMTP answers 452/451 and the
client retries later; anything else is a bug and propagates.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

from mailwright.store.api import StorageUnavailable

if TYPE_CHECKING:
    from mailwright.store.textindex import Analysis

# Bytes kept in memory before a write(2): large enough that a 4 KB-100 KB message is one system
# call, small enough that 1,000 concurrent receptions cost at most 64 MB. A message that never
# fills it is still whole in memory at `finish()`, which keeps those bytes for the analysis at
# delivery (`raw()`): no re-read for most mail, and no memory beyond this same bound.
WRITE_BUFFER: Final = 64 * 1024
# errno values that mean "the disk cannot take this now", not "the code is wrong".
UNAVAILABLE_ERRNOS: Final = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO, errno.EFBIG}
)


def unavailable(exc: OSError) -> StorageUnavailable | None:
    """The StorageUnavailable an OSError stands for, or None when it is a bug."""
    if exc.errno in UNAVAILABLE_ERRNOS:
        return StorageUnavailable(f"storage unavailable: {os.strerror(exc.errno or 0)}")
    return None


def _reraise(exc: OSError) -> NoReturn:
    """Raise the StorageUnavailable `exc` stands for, else `exc` itself (a bug)."""
    mapped = unavailable(exc)
    if mapped is None:
        raise exc
    raise mapped from exc


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """write(2) until everything is written (short writes are legal for regular files)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(path: Path) -> None:
    """Make a rename/unlink in `path` durable (POSIX: the directory entry is separate data)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(fd_box: list[int], path: Path) -> None:
    """Finalizer: close and remove a temp file nobody delivered or aborted."""
    if fd_box:
        os.close(fd_box.pop())
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class StagedBlob:
    """A message being received (implements api.StagedMessage). Not thread-safe: one owner."""

    def __init__(self, tmp_dir: Path) -> None:
        self.path = tmp_dir / f"{secrets.token_hex(12)}.tmp"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            _reraise(exc)
        self._fd: list[int] = [fd]  # a box, so the finalizer sees the close
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._size = 0
        self._finished = False
        self._flushed = False  # some bytes went to the file before finish()
        self._raw: bytes | None = None  # the whole message, when finish() found it in memory
        # Set by the store between finish() and the commit (sqlite.py `_prepare_blob`): the
        # parsed facts and index text of a blob that is new to the store, else None.
        self.analysis: Analysis | None = None
        self._finalizer = weakref.finalize(self, _discard, self._fd, self.path)

    @property
    def size(self) -> int:
        return self._size

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        if self._finished or not self._finalizer.alive:
            raise RuntimeError("write to a finished or aborted message")
        self._hash.update(data)
        self._size += len(data)
        self._buffer += data
        if len(self._buffer) >= WRITE_BUFFER:
            try:
                self._flush()
            except BaseException:
                self.abort()  # nobody else holds the file yet
                raise

    def _flush(self) -> None:
        if self._buffer:
            self._flushed = True
            try:
                _write_all(self._fd[0], self._buffer)
            except OSError as exc:
                _reraise(exc)
            self._buffer.clear()

    def read(self) -> bytes:
        """Everything written so far, before `finish()` (api.StagedMessage.read): the inbound
        checks need the whole message (DKIM hashes the body). Blocking I/O when it is on disk."""
        if self._finished:
            return self.raw()
        if not self._flushed:
            return bytes(self._buffer)
        try:
            return self.path.read_bytes() + bytes(self._buffer)
        except OSError as exc:
            _reraise(exc)

    def replace_head(self, head: bytes, length: int) -> None:
        """Replace the first `length` octets with `head` (api.StagedMessage.replace_head).

        In memory this is a slice assignment; once bytes are on disk, the message is copied
        into a new temp file (head first, then the old bytes after `length`) which replaces
        the old one. Either way the SHA-256 and size are computed afresh, so the content
        address stays the hash of exactly the bytes that will be stored.
        """
        if self._finished or not self._finalizer.alive:
            raise RuntimeError("replace_head on a finished or aborted message")
        if not 0 <= length <= self._size:
            raise ValueError("replace_head beyond the end of the message")
        if not self._flushed:
            self._buffer[:length] = head
            self._size = len(self._buffer)
            self._hash = hashlib.sha256(self._buffer)
            return
        on_disk = self._size - len(self._buffer)
        new = StagedBlob(self.path.parent)
        try:
            new.write(head)
            with open(self.path, "rb") as old:
                old.seek(min(length, on_disk))
                while chunk := old.read(WRITE_BUFFER):
                    new.write(chunk)
            new.write(bytes(self._buffer[max(0, length - on_disk) :]))
        except OSError as exc:
            new.abort()
            _reraise(exc)
        except BaseException:
            new.abort()
            raise
        # Take over the new file; the old one goes (its finalizer closes and unlinks it), and
        # the new file's clean-up moves from `new` (about to be dropped) to this object.
        self._finalizer()
        new._finalizer.detach()
        self.path, self._fd = new.path, new._fd
        self._finalizer = weakref.finalize(self, _discard, self._fd, self.path)
        self._buffer, self._hash, self._size = new._buffer, new._hash, new._size
        self._flushed = new._flushed

    def finish(self, durable: bool) -> str:
        """Write the rest, fsync (when durable) and close; returns the SHA-256 hex.

        Runs off the event loop (fsync blocks), in a worker pool: the writer's per-batch
        prepare step, or before it for a large file. On failure it leaves the clean-up
        (`abort()`) to the caller.
        """
        if not self._finished:
            if not self._flushed:
                self._raw = bytes(self._buffer)
            self._flush()
            try:
                if durable:
                    os.fsync(self._fd[0])
            except OSError as exc:
                _reraise(exc)
            os.close(self._fd.pop())
            self._finished = True
        return self.sha256

    def raw(self) -> bytes:
        """The message's bytes, after `finish()`: kept from memory when the message never
        outgrew WRITE_BUFFER, else read back from the temp file (page cache, not the disk).
        Called in a worker (the writer's prepare step or the pool), never on the event loop."""
        if not self._finished:
            raise RuntimeError("raw() before finish()")
        if self._raw is not None:
            return self._raw
        try:
            return self.path.read_bytes()
        except OSError as exc:
            _reraise(exc)

    def abort(self) -> None:
        """Remove the temp file. Idempotent, and harmless after the message was placed."""
        self._finalizer()
        self._raw = None


class BlobFiles:
    """The blobs/ and tmp/ directories of one data directory."""

    def __init__(self, data_dir: Path, durable: bool) -> None:
        self.root = data_dir / "blobs"
        self.tmp = data_dir / "tmp"
        self.durable = durable
        created = False
        for directory in (self.root, self.tmp):
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                created = True
        if created and durable:
            fsync_dir(data_dir)
        # Fan-out directories whose entry in blobs/ this process has made durable.
        self._durable_fanout: set[str] = set()
        self._fanout_lock = threading.Lock()

    def _fanout(self, sha256: str) -> None:
        """Create blobs/ab/ on first use and make its name durable (fsync blobs/).

        Lazily, not all 256 at start: on this file system (ext4 with `discard`) each directory
        costs ~3 ms to remove, which every test data directory would pay. Every process fsyncs
        blobs/ once per fan-out directory before relying on it: another thread's mkdir is not
        proof that the entry is on disk yet.
        """
        name = sha256[:2]
        if name in self._durable_fanout:
            return
        (self.root / name).mkdir(exist_ok=True)
        if self.durable:
            fsync_dir(self.root)
        with self._fanout_lock:
            self._durable_fanout.add(name)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def stage(self) -> StagedBlob:
        return StagedBlob(self.tmp)

    def publish(self, staged: StagedBlob) -> bool:
        """Give a temp file its content address (a hard link) and make that name durable.

        Runs in the writer's prepare step after `StagedBlob.finish` (the data fsync), before
        the batch's transaction. A name under blobs/ is trusted only once a committed row
        references it; until then a file at an address may be incomplete (after a crash),
        and `ensure()` replaces rather than trusts it. If the name exists already (the same
        bytes, from another delivery), nothing is linked here; `ensure()` decides.

        Returns True when it made the name: then no committed row references these bytes
        (a committed row's file is at its address), so the blob is new to the store.
        """
        target = self.path(staged.sha256)
        try:
            self._fanout(staged.sha256)
            try:
                os.link(staged.path, target)
            except FileExistsError:
                return False  # a committed row vouches for it, or ensure() replaces it
            if self.durable:
                fsync_dir(target.parent)
        except OSError as exc:
            _reraise(exc)
        return True

    def ensure(self, staged: StagedBlob, committed: bool) -> Path | None:
        """Make the blob's address hold this (finished, fsynced) file or a committed one.

        Called under the database write lock, just before the rows are inserted; `committed`
        says whether a blobs row already references the address (committed, or earlier in
        this batch, whose content is then durable). Returns a directory the writer must fsync
        before committing, or None when the address is already right:
        - it is our own file (`publish()` linked it and fsynced its directory), or
        - a committed row vouches for the file there.
        Otherwise (the address is missing: garbage-collected meanwhile; or it holds an orphan or
        another in-flight delivery's not-yet-durable file) our file replaces it.
        """
        target = self.path(staged.sha256)
        try:
            if os.path.samefile(staged.path, target):
                return None
        except FileNotFoundError:
            pass
        if committed and target.exists():
            return None
        try:
            self._fanout(staged.sha256)
            os.replace(staged.path, target)
        except OSError as exc:
            _reraise(exc)
        return target.parent

    def unlink(self, sha256: str) -> None:
        """Remove an unreferenced blob (after the commit that dropped its last reference)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()
