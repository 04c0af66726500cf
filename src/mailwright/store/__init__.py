"""The store: the only place that knows how mail is kept (see `api` for the contract).

Invariants of the package:
- Protocol code imports `Store` and the types from here (or `store.api`), never a backend.
- Nothing is acknowledged before it is durable: message files fsynced and renamed, their
  directory fsynced, the rows referencing them committed with synchronous=FULL (sqlite.py).
- All writes go through one group-commit writer per process (writer.py).
- Commit first, then publish: the change bus (changes.py) hears of a change only after the
  commit that made it durable and visible, never of a rolled-back one.
- A message is parsed once, when its blob first enters a mailbox: its MessageInfo (ENVELOPE,
  BODYSTRUCTURE...) is committed with the blob; its full-text index row is written shortly
  after, in the background, and SEARCH is exact meanwhile (textindex.py, indexer.py).
"""

from __future__ import annotations

from pathlib import Path

from mailwright.store.api import (
    POP3_POLICIES,
    Account,
    AccountSummary,
    Alias,
    AlreadyExists,
    AppendResult,
    Envelope,
    EnvelopeRecipient,
    FlagChange,
    FlagMode,
    Forbidden,
    InUse,
    InvalidAddress,
    InvalidName,
    MailboxInfo,
    MailboxStatus,
    MessageRecord,
    NotFound,
    Pop3Policy,
    StagedMessage,
    StorageUnavailable,
    Store,
    StoredMessage,
    StoreError,
    TextField,
    normalize_address,
    normalize_domain,
    normalize_mailbox_name,
)
from mailwright.store.changes import (
    Appended,
    Change,
    ChangeBus,
    Expunged,
    FlagsChanged,
    MailboxDeleted,
    Subscription,
)
from mailwright.store.schema import SchemaTooNew
from mailwright.store.sqlite import SqliteStore

__all__ = [
    "POP3_POLICIES",
    "Account",
    "AccountSummary",
    "Alias",
    "AlreadyExists",
    "AppendResult",
    "Appended",
    "Change",
    "ChangeBus",
    "Envelope",
    "EnvelopeRecipient",
    "Expunged",
    "FlagChange",
    "FlagMode",
    "FlagsChanged",
    "Forbidden",
    "InUse",
    "InvalidAddress",
    "InvalidName",
    "MailboxDeleted",
    "MailboxInfo",
    "MailboxStatus",
    "MessageRecord",
    "NotFound",
    "Pop3Policy",
    "SchemaTooNew",
    "SqliteStore",
    "StagedMessage",
    "StorageUnavailable",
    "Store",
    "StoreError",
    "StoredMessage",
    "Subscription",
    "TextField",
    "normalize_address",
    "normalize_domain",
    "normalize_mailbox_name",
    "open_store",
]


def open_store(data_dir: Path, durable: bool = True) -> Store:
    """Open (creating and migrating if needed) the SQLite store in `data_dir`.

    Raises SchemaTooNew for a database written by a newer mailwright, StorageUnavailable when
    the directory cannot be written.
    """
    return SqliteStore(Path(data_dir), durable=durable)
