"""Domains, accounts, aliases and the lookups delivery makes on them (a mixin of
`SqliteStore`, kept apart from the message path for size).

Invariants, on top of sqlite.py's:
- Addresses and domains are keys only in their canonical form (`api.normalize_address`,
  `api.normalize_domain`); lookups fed a malformed address answer "not found" instead of raising,
  because they are fed whatever a client typed.
- Every write is one writer op (group commit, writer.py); the admin CLI in another process
  writes through its own store on the same database and waits for the lock (busy_timeout).
- Account and mailbox ids are never reused (AUTOINCREMENT): a stale session id cannot reach a
  new account.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from mailwright.store.api import (
    POP3_POLICIES,
    Account,
    AccountSummary,
    Alias,
    AlreadyExists,
    InUse,
    InvalidAddress,
    NotFound,
    Pop3Policy,
    normalize_address,
    normalize_domain,
)
from mailwright.store.changes import ChangeBus, MailboxDeleted
from mailwright.store.schema import allocate_uidvalidity as _allocate_uidvalidity
from mailwright.store.writer import Transaction

T = TypeVar("T")

# Created with every account (RFC 6154 special-use attributes), so IMAP clients find them.
DEFAULT_MAILBOXES: Final = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def check_policy(policy: str) -> None:
    if policy not in POP3_POLICIES:
        raise ValueError(f"unknown POP3 policy {policy!r}; expected one of {POP3_POLICIES}")


class SqliteAdminOps:
    """Admin and lookup methods of `SqliteStore` (see the module docstring)."""

    if TYPE_CHECKING:  # provided by SqliteStore
        _changes: ChangeBus

        def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        def _one(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

        def _write(self, op: Callable[[Transaction], T]) -> T: ...

        def _release_blobs(self, tx: Transaction, counts: Counter[str]) -> None: ...

    @staticmethod
    def _domain_id(conn: sqlite3.Connection, domain: str) -> int:
        row = conn.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()
        if row is None:
            raise NotFound(f"{domain} is not a local domain")
        return int(row[0])

    @staticmethod
    def _account_id(conn: sqlite3.Connection, address: str) -> int:
        row = conn.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
        if row is None:
            raise NotFound(f"no account {address}")
        return int(row[0])

    # ----- admin ---------------------------------------------------------------------------------
    def add_domain(self, name: str) -> None:
        domain = normalize_domain(name)

        def op(tx: Transaction) -> None:
            try:
                tx.conn.execute(
                    "INSERT INTO domains (name, created) VALUES (?, ?)", (domain, int(time.time()))
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"domain {domain} exists") from None

        self._write(op)

    def remove_domain(self, name: str) -> None:
        domain = normalize_domain(name)

        def op(tx: Transaction) -> None:
            domain_id = self._domain_id(tx.conn, domain)
            for table in ("accounts", "aliases"):
                if tx.conn.execute(
                    f"SELECT 1 FROM {table} WHERE domain_id = ? LIMIT 1", (domain_id,)
                ).fetchone():
                    raise InUse(f"domain {domain} still has {table}")
            tx.conn.execute("DELETE FROM domains WHERE id = ?", (domain_id,))

        self._write(op)

    def list_domains(self) -> list[str]:
        return [row[0] for row in self._all("SELECT name FROM domains ORDER BY name")]

    def add_account(
        self, address: str, password_hash: str, pop3_policy: Pop3Policy = "delete"
    ) -> Account:
        canonical = normalize_address(address)
        if canonical.startswith("@"):
            raise InvalidAddress(f"an account needs a local part: {address!r}")
        check_policy(pop3_policy)

        def op(tx: Transaction) -> Account:
            conn = tx.conn
            domain_id = self._domain_id(conn, _domain_of(canonical))
            if conn.execute(
                "SELECT 1 FROM accounts WHERE address = ? UNION ALL "
                "SELECT 1 FROM aliases WHERE source = ?",
                (canonical, canonical),
            ).fetchone():
                raise AlreadyExists(f"{canonical} is already an account or an alias")
            now = int(time.time())
            account_id = conn.execute(
                "INSERT INTO accounts (address, domain_id, password_hash, pop3_policy, created) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (canonical, domain_id, password_hash, pop3_policy, now),
            ).fetchone()[0]
            first = _allocate_uidvalidity(conn, len(DEFAULT_MAILBOXES))
            conn.executemany(
                "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use, created) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (account_id, name, first + i, special, now)
                    for i, (name, special) in enumerate(DEFAULT_MAILBOXES)
                ],
            )
            conn.executemany(
                "INSERT INTO subscriptions (account_id, name) VALUES (?, ?)",
                [(account_id, name) for name, _ in DEFAULT_MAILBOXES],
            )
            return Account(int(account_id), canonical, pop3_policy)

        return self._write(op)

    def remove_account(self, address: str) -> None:
        canonical = normalize_address(address)

        def op(tx: Transaction) -> None:
            conn = tx.conn
            account_id = self._account_id(conn, canonical)
            # One JSON value rather than a row per blob (each row is a GIL hand-off).
            (counts,) = conn.execute(
                "SELECT json_group_object(blob, n) FROM (SELECT m.blob, count(*) AS n "
                "FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                "WHERE b.account_id = ? GROUP BY m.blob)",
                (account_id,),
            ).fetchone()
            refs: Counter[str] = Counter(json.loads(counts))
            # Cascades to messages and expunged. Aliases pointing at the account go too: left
            # behind they would turn into a relay to a local address that no longer exists.
            gone = [
                MailboxDeleted(int(mailbox_id))
                for (mailbox_id,) in conn.execute(
                    "DELETE FROM mailboxes WHERE account_id = ? RETURNING id", (account_id,)
                )
            ]
            tx.after_commit(lambda: self._changes.publish(list(gone)))
            conn.execute("DELETE FROM aliases WHERE target = ?", (canonical,))
            conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
            self._release_blobs(tx, refs)

        self._write(op)

    def set_password_hash(self, address: str, password_hash: str) -> None:
        canonical = normalize_address(address)

        def op(tx: Transaction) -> None:
            cur = tx.conn.execute(
                "UPDATE accounts SET password_hash = ? WHERE address = ?",
                (password_hash, canonical),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no account {canonical}")

        self._write(op)

    def set_pop3_policy(self, address: str, policy: Pop3Policy) -> None:
        canonical = normalize_address(address)
        check_policy(policy)

        def op(tx: Transaction) -> None:
            cur = tx.conn.execute(
                "UPDATE accounts SET pop3_policy = ? WHERE address = ?", (policy, canonical)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no account {canonical}")

        self._write(op)

    def list_accounts(self) -> list[AccountSummary]:
        rows = self._all(
            "SELECT a.address, a.pop3_policy, count(m.id), coalesce(sum(m.size), 0), "
            "  (SELECT group_concat(source, ' ') FROM "
            "     (SELECT source FROM aliases WHERE target = a.address ORDER BY source)) "
            "FROM accounts a "
            "LEFT JOIN mailboxes b ON b.account_id = a.id "
            "LEFT JOIN messages m ON m.mailbox_id = b.id "
            "GROUP BY a.id ORDER BY a.address"
        )
        return [
            AccountSummary(
                address=address,
                messages=int(count),
                size=int(size),
                pop3_policy=policy,
                aliases=tuple(aliases.split(" ")) if aliases else (),
            )
            for address, policy, count, size, aliases in rows
        ]

    def add_alias(self, source: str, target: str) -> None:
        canonical_source = normalize_address(source)
        canonical_target = normalize_address(target)
        if canonical_target.startswith("@"):
            raise InvalidAddress(f"an alias target needs a local part: {target!r}")

        def op(tx: Transaction) -> None:
            conn = tx.conn
            domain_id = self._domain_id(conn, _domain_of(canonical_source))
            if conn.execute(
                "SELECT 1 FROM accounts WHERE address = ?", (canonical_source,)
            ).fetchone():
                raise AlreadyExists(f"{canonical_source} is an account")
            try:
                conn.execute(
                    "INSERT INTO aliases (source, target, domain_id, created) VALUES (?, ?, ?, ?)",
                    (canonical_source, canonical_target, domain_id, int(time.time())),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(
                    f"alias {canonical_source} -> {canonical_target} exists"
                ) from None

        self._write(op)

    def remove_alias(self, source: str, target: str | None = None) -> None:
        canonical_source = normalize_address(source)
        canonical_target = None if target is None else normalize_address(target)

        def op(tx: Transaction) -> None:
            if canonical_target is None:
                cur = tx.conn.execute("DELETE FROM aliases WHERE source = ?", (canonical_source,))
            else:
                cur = tx.conn.execute(
                    "DELETE FROM aliases WHERE source = ? AND target = ?",
                    (canonical_source, canonical_target),
                )
            if cur.rowcount == 0:
                raise NotFound(f"no alias {canonical_source}")

        self._write(op)

    def list_aliases(self) -> list[Alias]:
        rows = self._all("SELECT source, target FROM aliases ORDER BY source, target")
        return [Alias(source, target) for source, target in rows]

    # ----- lookups -------------------------------------------------------------------------------
    def get_account(self, address: str) -> Account | None:
        found = self.get_credentials(address)
        return found[0] if found else None

    def get_credentials(self, address: str) -> tuple[Account, str] | None:
        try:
            canonical = normalize_address(address)
        except InvalidAddress:
            return None
        row = self._one(
            "SELECT id, address, pop3_policy, password_hash FROM accounts WHERE address = ?",
            (canonical,),
        )
        if row is None:
            return None
        return Account(int(row[0]), row[1], row[2]), row[3]

    def is_local_domain(self, domain: str) -> bool:
        try:
            canonical = normalize_domain(domain)
        except InvalidAddress:
            return False
        return self._one("SELECT 1 FROM domains WHERE name = ?", (canonical,)) is not None

    def alias_targets(self, address: str) -> list[str]:
        try:
            canonical = normalize_address(address)
        except InvalidAddress:
            return []
        sql = "SELECT target FROM aliases WHERE source = ? ORDER BY id"
        targets = [row[0] for row in self._all(sql, (canonical,))]
        if not targets and not canonical.startswith("@"):
            catch_all = "@" + _domain_of(canonical)
            targets = [row[0] for row in self._all(sql, (catch_all,))]
        return targets

    def addresses_of(self, account_id: int) -> frozenset[str]:
        row = self._one("SELECT address FROM accounts WHERE id = ?", (account_id,))
        if row is None:
            return frozenset()
        sources = self._all("SELECT source FROM aliases WHERE target = ?", (row[0],))
        return frozenset([row[0], *(source for (source,) in sources)])
