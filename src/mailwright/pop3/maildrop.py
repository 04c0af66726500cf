"""One session's view of a maildrop (RFC 1939 5-7). Pure: built from the store's listing, it
answers STAT/LIST/UIDL, marks deletions and undoes them; the session commits `deleted_uids()` in
the UPDATE state.

RFC 1939 5: message numbers start at 1 and stay the same for the whole session, deletions
included; a number of a message marked as deleted names no message. Sizes are the stored
octets (CRLF line endings), i.e. exactly what RETR sends before byte-stuffing.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwright.store.api import StoredMessage


class Maildrop:
    def __init__(self, messages: Sequence[StoredMessage]) -> None:
        self._messages: tuple[StoredMessage, ...] = tuple(messages)
        self._deleted: set[int] = set()  # message numbers marked by DELE

    def get(self, number: int) -> StoredMessage | None:
        """The message numbered `number`, or None if there is none or it is marked deleted."""
        if not 1 <= number <= len(self._messages) or number in self._deleted:
            return None
        return self._messages[number - 1]

    def delete(self, number: int) -> bool:
        """DELE: mark; False if there is no such (undeleted) message."""
        if self.get(number) is None:
            return False
        self._deleted.add(number)
        return True

    def reset(self) -> int:
        """RSET: unmark everything; returns how many messages the maildrop now shows."""
        self._deleted.clear()
        return len(self._messages)

    def stat(self) -> tuple[int, int]:
        """STAT: (count, octets) of the messages not marked deleted."""
        live = [m for n, m in self._numbered()]
        return len(live), sum(m.size for m in live)

    def listing(self) -> list[tuple[int, int]]:
        """LIST without argument: (number, size) of every undeleted message."""
        return [(n, m.size) for n, m in self._numbered()]

    def uid_listing(self) -> list[tuple[int, str]]:
        """UIDL without argument: (number, unique-id) of every undeleted message."""
        return [(n, m.uidl) for n, m in self._numbered()]

    def deleted_uids(self) -> list[int]:
        """The store UIDs to commit at QUIT, in message order."""
        return [self._messages[n - 1].uid for n in sorted(self._deleted)]

    def __len__(self) -> int:
        return len(self._messages) - len(self._deleted)

    def _numbered(self) -> list[tuple[int, StoredMessage]]:
        return [
            (n, m) for n, m in enumerate(self._messages, start=1) if n not in self._deleted
        ]
