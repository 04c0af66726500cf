"""The outbound queue's rows (a mixin of `SqliteStore`): what the runner and the CLI read and
change. Rows are inserted by `deliver()` (sqlite.py), one per (message, remote recipient).

Invariants, on top of sqlite.py's:
- A row holds one reference to its blob (`blobs.refcount`); deleting the row releases it in
  the same transaction (`_release_blobs`), so the file outlives every row that needs it.
- Rows are deleted only by `queue_done` (the runner, after the remote 250 or after the failure
  DSN is stored) and `queue_delete` (the CLI). A crash before either leaves the row due again:
  a duplicate at worst, never a loss (RFC 5321 4.5.4 asks for that trade).
- Every write tolerates rows gone meanwhile (another process, the CLI, deleted them): it acts
  on what is still there.
- Times are seconds since the epoch (float); `deliver()` writes whole seconds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from mailwright.store.api import NotFound, QueueEntry
from mailwright.store.writer import Transaction

T = TypeVar("T")

_COLUMNS: Final = (
    "id, blob, mail_from, mail_params, rcpt, rcpt_params, origin, created, next_attempt, "
    "attempts, last_error, delay_warned"
)


def _params(text: str) -> dict[str, str | None]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _entry(row: Sequence[Any]) -> QueueEntry:
    return QueueEntry(
        id=int(row[0]),
        blob=row[1],
        mail_from=row[2],
        mail_params=_params(row[3]),
        rcpt=row[4],
        rcpt_params=_params(row[5]),
        origin=_params(row[6]),
        created=float(row[7]),
        next_attempt=float(row[8]),
        attempts=int(row[9]),
        last_error=row[10],
        delay_warned=bool(row[11]),
    )


class SqliteQueueOps:
    """Queue reads and writes; the host class provides the plumbing below (sqlite.py)."""

    if TYPE_CHECKING:  # provided by SqliteStore

        def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        def _one(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

        def _write(self, op: Callable[[Transaction], T]) -> T: ...

        async def _awrite(self, op: Callable[[Transaction], T]) -> T: ...

        def _release_blobs(self, tx: Transaction, counts: Counter[str]) -> None: ...

    # ----- reads ---------------------------------------------------------------------------------
    def queue_entries(
        self, *, due_before: float | None = None, limit: int | None = None
    ) -> list[QueueEntry]:
        sql = f"SELECT {_COLUMNS} FROM queue"
        params: list[Any] = []
        if due_before is not None:
            sql += " WHERE next_attempt <= ?"
            params.append(due_before)
        sql += " ORDER BY next_attempt, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_entry(row) for row in self._all(sql, params)]

    def queue_entry(self, entry_id: int) -> QueueEntry | None:
        row = self._one(f"SELECT {_COLUMNS} FROM queue WHERE id = ?", (entry_id,))
        return None if row is None else _entry(row)

    def queue_next_due(self) -> float | None:
        row = self._one("SELECT min(next_attempt) FROM queue")
        return None if row is None or row[0] is None else float(row[0])

    # ----- the runner ----------------------------------------------------------------------------
    async def queue_done(self, ids: Sequence[int]) -> None:
        wanted = sorted(set(ids))
        if wanted:
            await self._awrite(lambda tx: self._delete_rows(tx, wanted))

    async def queue_defer(self, ids: Sequence[int], next_attempt: float, error: str) -> None:
        wanted = json.dumps(sorted(set(ids)))

        def op(tx: Transaction) -> None:
            tx.conn.execute(
                "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (next_attempt, error, wanted),
            )

        await self._awrite(op)

    async def queue_mark_warned(self, ids: Sequence[int]) -> None:
        wanted = json.dumps(sorted(set(ids)))

        def op(tx: Transaction) -> None:
            tx.conn.execute(
                "UPDATE queue SET delay_warned = 1 WHERE id IN (SELECT value FROM json_each(?))",
                (wanted,),
            )

        await self._awrite(op)

    # ----- the CLI (synchronous; another process than the server) --------------------------------
    def queue_retry(self, ids: Sequence[int] | None = None, now: float | None = None) -> int:
        when = time.time() if now is None else now

        def op(tx: Transaction) -> int:
            if ids is None:
                cursor = tx.conn.execute("UPDATE queue SET next_attempt = ?", (when,))
            else:
                cursor = tx.conn.execute(
                    "UPDATE queue SET next_attempt = ? "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (when, json.dumps(sorted(set(ids)))),
                )
            return int(cursor.rowcount)

        return self._write(op)

    def queue_delete(self, entry_id: int) -> None:
        if not self._write(lambda tx: self._delete_rows(tx, [entry_id])):
            raise NotFound(f"no queued message with id {entry_id}")

    def _delete_rows(self, tx: Transaction, ids: list[int]) -> int:
        """Delete the rows still there and release their blob references; how many went."""
        gone = tx.conn.execute(
            "DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?)) RETURNING blob",
            (json.dumps(ids),),
        ).fetchall()
        self._release_blobs(tx, Counter(blob for (blob,) in gone))
        return len(gone)
