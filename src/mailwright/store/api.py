"""The store's interface: the only way protocol code reaches accounts, mailboxes and messages.

Protocol code (smtp, pop3, imap) and the CLI depend on this module only, never on a backend.
Storage code never formats a protocol response: it returns these types or raises `StoreError`s,
and each protocol maps them to its own replies.

Durability contract (every backend):
- When `deliver()` or `pop3_commit()` returns, the change is on disk: message files fsynced and
  renamed, their directory fsynced, and the rows that reference them committed and fsynced.
  Concurrent callers share one transaction and one fsync (group commit).
- A crash at any moment leaves either the whole change or none of it visible; at worst an
  unreferenced file remains under tmp/ or blobs/, which `mailwright check --repair` may remove.
- Removing messages (expunge, move, POP3 delete, deleting a mailbox or an account) is durable
  and visible when the call returns; the space of the bodies no message references any more is
  given back shortly after, in the background, or at the next start after a crash.

Threading: the synchronous methods are safe from any thread (the event loop calls the cheap
lookups directly; each thread gets its own read connection). Async methods must be awaited on
the event loop; they never block it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from mailwright.message import MessageInfo
    from mailwright.store.changes import ChangeBus

Pop3Policy = Literal["delete", "keep"]
POP3_POLICIES: tuple[Pop3Policy, ...] = ("delete", "keep")
FlagMode = Literal["add", "remove", "replace"]
# SEARCH keys answered by the full-text index (RFC 9051 6.4.4): BODY looks in the decoded text
# parts, TEXT in those and the header fields.
TextField = Literal["TEXT", "BODY"]
FLAG_MODES: tuple[FlagMode, ...] = ("add", "remove", "replace")
# Mailbox names use "/" as the hierarchy delimiter (RFC 3501 5.1.1); "INBOX" in any case is INBOX.
HIERARCHY_DELIMITER = "/"
INBOX = "INBOX"
# The system flags the store keeps (RFC 3501 2.3.2; \Recent is a session matter, not stored).
SYSTEM_FLAGS: tuple[str, ...] = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


class StoreError(Exception):
    """Base of every error the store reports on purpose."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class InUse(StoreError):
    """Refused because something still depends on it (e.g. a domain that has accounts)."""


class InvalidAddress(StoreError):
    pass


class InvalidName(StoreError):
    """A mailbox name the store cannot hold (empty, an empty level such as "a//b", a control
    character)."""


class Forbidden(StoreError):
    """Refused by rule, whatever the state: e.g. deleting INBOX (RFC 3501 6.3.4) or renaming a
    mailbox into its own subtree."""


class StorageUnavailable(StoreError):
    """Disk full, read-only file system, or the database is locked: a temporary failure.

    Protocols answer with a temporary error (SMTP 451/452, POP3 -ERR [SYS/TEMP], IMAP NO
    [UNAVAILABLE]) and nothing acknowledged before is affected (docs/security.md).
    """


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str  # canonical form: see `normalize_address`
    pop3_policy: Pop3Policy = "delete"


@dataclass(frozen=True, slots=True)
class AccountSummary:
    address: str
    messages: int
    size: int  # octets in all mailboxes
    pop3_policy: Pop3Policy
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Alias:
    source: str  # "user@domain", or "@domain" for a catch-all
    target: str  # any address; a local account or a remote address (then queued)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a mailbox, as POP3 lists it."""

    uid: int
    size: int  # octets of the stored file (CRLF line endings, trace headers included)
    blob: str  # SHA-256 hex of the stored file
    uidl: str  # unique and stable forever (RFC 1939 7): never reused for another message


@dataclass(frozen=True, slots=True)
class EnvelopeRecipient:
    address: str  # as given in RCPT TO (no angle brackets)
    params: Mapping[str, str | None] = field(default_factory=dict)  # NOTIFY, ORCPT (RFC 3461)


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str  # "" for the null reverse-path
    mail_params: Mapping[str, str | None] = field(default_factory=dict)  # BODY, RET, ENVID...
    helo: str = ""
    client_ip: str = ""
    authenticated_as: str | None = None


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    id: int
    name: str  # "/"-delimited, UTF-8 (the IMAP layer encodes modified UTF-7 on the wire)
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None  # RFC 6154 attribute, e.g. "\\Sent"
    subscribed: bool


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """What STATUS reports (RFC 3501 6.3.10, RFC 9051 6.3.11 with SIZE and DELETED)."""

    id: int
    messages: int
    recent: int  # always 0: \Recent is optional in RFC 9051 and not kept
    unseen: int  # messages without \Seen
    deleted: int  # messages with \Deleted
    size: int  # octets of all messages
    uidnext: int
    uidvalidity: int
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message of a mailbox, as IMAP sees it."""

    uid: int
    blob: str  # SHA-256 hex of the stored file (`Store.blob_path`)
    size: int
    internal_date: int  # seconds since the epoch (UTC)
    flags: frozenset[str]  # system flags ("\\Seen") and keywords ("$Junk")
    modseq: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    """For APPENDUID (RFC 4315 3)."""

    uidvalidity: int
    uid: int


@dataclass(frozen=True, slots=True)
class FlagChange:
    uid: int
    flags: frozenset[str]  # the message's flags after the change
    modseq: int


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One outbound queue row: one remote recipient of one stored message."""

    id: int
    blob: str  # the stored file (starts with our own Return-Path line)
    mail_from: str  # "" for the null reverse-path
    mail_params: Mapping[str, str | None]  # BODY, RET, ENVID, SMTPUTF8 as received
    rcpt: str
    rcpt_params: Mapping[str, str | None]  # NOTIFY, ORCPT (RFC 3461)
    origin: Mapping[str, str | None]  # helo, client_ip, authenticated_as of the submission
    created: float  # seconds since the epoch: when it was accepted (DSN Arrival-Date)
    next_attempt: float
    attempts: int
    last_error: str | None
    delay_warned: bool  # the delay DSN went out (or was not wanted)


class StagedMessage(Protocol):
    """A message being received: bytes go to a temporary file and are hashed as they arrive.

    It is not durable and not visible until passed to `Store.deliver()`; `abort()` removes it.
    """

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str:
        """The content address of what was written so far (the blob's name once stored)."""
        ...

    def write(self, data: bytes) -> None: ...

    def read(self) -> bytes:
        """Everything written so far (before delivery; blocking file I/O for a large one)."""
        ...

    def replace_head(self, head: bytes, length: int) -> None:
        """Replace the first `length` octets written with `head` (re-hashing the whole), so the
        inbound checks can add Authentication-Results above our Received header."""
        ...

    def abort(self) -> None: ...


class Store(abc.ABC):
    """Accounts, domains, aliases, mailboxes, messages and the outbound queue."""

    # ----- admin (CLI) -------------------------------------------------------------------
    @abc.abstractmethod
    def add_domain(self, name: str) -> None:
        """Raises AlreadyExists, InvalidAddress."""

    @abc.abstractmethod
    def remove_domain(self, name: str) -> None:
        """Raises NotFound, InUse (accounts or aliases still use it)."""

    @abc.abstractmethod
    def list_domains(self) -> list[str]: ...

    @abc.abstractmethod
    def add_account(
        self, address: str, password_hash: str, pop3_policy: Pop3Policy = "delete"
    ) -> Account:
        """Creates the account and its mailboxes (INBOX plus the special-use ones).

        Raises AlreadyExists, InvalidAddress, NotFound (the domain is not local).
        """

    @abc.abstractmethod
    def remove_account(self, address: str) -> None:
        """Removes the account, its mailboxes and messages; raises NotFound."""

    @abc.abstractmethod
    def set_password_hash(self, address: str, password_hash: str) -> None: ...

    @abc.abstractmethod
    def set_pop3_policy(self, address: str, policy: Pop3Policy) -> None: ...

    @abc.abstractmethod
    def list_accounts(self) -> list[AccountSummary]: ...

    @abc.abstractmethod
    def add_alias(self, source: str, target: str) -> None:
        """`source` must be on a local domain and not an account; raises AlreadyExists, NotFound."""

    @abc.abstractmethod
    def remove_alias(self, source: str, target: str | None = None) -> None: ...

    @abc.abstractmethod
    def list_aliases(self) -> list[Alias]: ...

    # ----- lookups (cheap; callable on the event loop) ---------------------------------------
    @abc.abstractmethod
    def get_account(self, address: str) -> Account | None: ...

    @abc.abstractmethod
    def get_credentials(self, address: str) -> tuple[Account, str] | None:
        """(account, argon2 hash) for a login name, or None. Only auth/ uses the hash."""

    @abc.abstractmethod
    def is_local_domain(self, domain: str) -> bool: ...

    @abc.abstractmethod
    def alias_targets(self, address: str) -> list[str]:
        """Targets of an exact alias, else of the domain's catch-all; [] when neither exists."""

    @abc.abstractmethod
    def addresses_of(self, account_id: int) -> frozenset[str]:
        """The account's own address and every alias source that points to it."""

    # ----- delivery ---------------------------------------------------------------------------
    @abc.abstractmethod
    def stage(self) -> StagedMessage:
        """A new temporary message file (under <data>/tmp/)."""

    @abc.abstractmethod
    async def deliver(
        self,
        message: StagedMessage,
        envelope: Envelope,
        local_accounts: Sequence[int],
        remote_recipients: Sequence[EnvelopeRecipient],
        *,
        junk: bool = False,
    ) -> None:
        """Store one copy of the message for all local accounts (their INBOX) and queue it for the
        remote recipients, in one transaction. Durable when it returns (see module docstring).
        `junk`: the local copies go to each account's \\Junk mailbox instead (INBOX if it has
        none): the inbound checks' verdict (mailauth.policy).
        Raises StorageUnavailable on disk full / read-only / locked."""

    # ----- mailboxes (POP3 view of INBOX) ---------------------------------------------------------
    @abc.abstractmethod
    def pop3_messages(self, account_id: int) -> list[StoredMessage]:
        """INBOX in UID order, without messages this account's POP3 sessions already deleted."""

    @abc.abstractmethod
    def blob_path(self, blob: str) -> Path:
        """The immutable file holding a message (read it; never write it)."""

    @abc.abstractmethod
    async def pop3_commit(self, account_id: int, uids: Sequence[int], policy: Pop3Policy) -> None:
        """POP3 UPDATE state: 'delete' expunges the messages from INBOX (an expunge IMAP sees),
        'keep' hides them from later POP3 sessions only. One transaction; durable on return."""

    # ----- IMAP: mailboxes ----------------------------------------------------------------
    # Names: "/" is the hierarchy delimiter; "INBOX" (and "inbox/x"'s first level) in any case
    # means INBOX; every other name is case-sensitive. Invalid names raise InvalidName.
    @abc.abstractmethod
    def list_mailboxes(self, account_id: int) -> list[MailboxInfo]:
        """Every mailbox of the account, by name; [] for an unknown account."""

    @abc.abstractmethod
    def mailbox(self, account_id: int, name: str) -> MailboxInfo | None:
        """One mailbox by name, or None (also for an invalid name)."""

    @abc.abstractmethod
    def mailbox_status(self, account_id: int, name: str) -> MailboxStatus | None:
        """Counts for STATUS/SELECT, or None when there is no such mailbox."""

    @abc.abstractmethod
    def subscriptions(self, account_id: int) -> list[str]:
        """Subscribed names, by name; they may name mailboxes that do not exist (LSUB)."""

    @abc.abstractmethod
    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> MailboxInfo:
        """Create `name` and any missing parents ("a/b/c" makes "a" and "a/b", as Dovecot does);
        a trailing "/" is dropped (RFC 3501 6.3.3). Each new mailbox gets a fresh UIDVALIDITY.
        Raises AlreadyExists, NotFound (no such account), InvalidName."""

    @abc.abstractmethod
    async def delete_mailbox(self, account_id: int, name: str) -> None:
        """Delete a mailbox and its messages (their blobs are released as by an expunge).
        Subscriptions are kept (RFC 3501 6.3.6). Raises NotFound, Forbidden (INBOX), InUse
        (it has inferior mailboxes: we do not keep \\Noselect placeholders)."""

    @abc.abstractmethod
    async def rename_mailbox(self, account_id: int, old: str, new: str) -> MailboxInfo:
        """Rename `old` and its inferiors; missing parents of `new` are created. The mailbox
        keeps its id, UIDs and UIDVALIDITY (safe: UIDVALIDITY values are unique across all
        mailboxes ever, so no client can have cached `new` with this value). Renaming INBOX
        moves all its messages to a new mailbox `new` (fresh UIDVALIDITY) and leaves INBOX
        empty, its inferiors unrenamed (RFC 3501 6.3.5). Subscriptions stay with the names.
        Returns the renamed (or new) mailbox. Raises NotFound, AlreadyExists, Forbidden
        (`new` inside `old`), InvalidName."""

    @abc.abstractmethod
    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """SUBSCRIBE/UNSUBSCRIBE a name, which need not exist (RFC 3501 6.3.6). Idempotent."""

    # ----- IMAP: messages ------------------------------------------------------------------
    # Every write below is durable when it returns (same contract as deliver) and is
    # published on `changes` only after its commit.
    @abc.abstractmethod
    def mailbox_messages(self, mailbox_id: int) -> list[MessageRecord]:
        """All messages of the mailbox in UID order ([] for an unknown mailbox)."""

    @abc.abstractmethod
    async def append(
        self,
        account_id: int,
        mailbox: str,
        message: StagedMessage,
        flags: Sequence[str] = (),
        internal_date: int | None = None,
    ) -> AppendResult:
        """Add a staged message to a mailbox (IMAP APPEND). `internal_date` in seconds since the
        epoch, default now. Raises NotFound (no such mailbox: IMAP answers [TRYCREATE])."""

    @abc.abstractmethod
    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: FlagMode,
        flags: Sequence[str],
        unchanged_since: int | None = None,
    ) -> list[FlagChange]:
        """Add, remove or replace flags. Each message whose flags change gets its own new
        MODSEQ (the mailbox's HIGHESTMODSEQ + 1, RFC 7162); unchanged ones are not reported.
        With `unchanged_since`, messages whose MODSEQ is above it are left alone (CONDSTORE).
        UIDs that do not exist are ignored. Raises NotFound (no such mailbox)."""

    @abc.abstractmethod
    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove the messages flagged \\Deleted (only those in `uids` when given: UID EXPUNGE,
        RFC 4315 2.1); returns their UIDs in order. They are remembered in `expunged` with one
        new MODSEQ, as POP3's delete does. Raises NotFound (no such mailbox)."""

    @abc.abstractmethod
    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Copy messages (same blob, flags and internal date) to another mailbox; returns
        (source UID, new UID) pairs in source UID order (COPYUID, RFC 4315 3). Raises
        NotFound (either mailbox)."""

    @abc.abstractmethod
    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Copy, then expunge from the source, in one transaction (RFC 6851)."""

    # ----- IMAP: parsed messages and full-text search ----------------------------------------
    # Each blob is analyzed once, when it first enters a mailbox (deliver or append): ENVELOPE,
    # BODY and BODYSTRUCTURE as ready-to-send bytes and part offsets are stored with it, in the
    # same transaction; its decoded text goes into a full-text index shortly after the commit,
    # in the background (search_text is exact meanwhile).
    @abc.abstractmethod
    def message_info(self, blob: str) -> MessageInfo:
        """Parsed facts of a stored message (`MessageRecord.blob`), from the stored metadata;
        a blob stored without it (or with an older FORMAT_VERSION) is analyzed from its file,
        the result kept in memory only. Its `text` is not stored: reading it decodes it from
        the file (FETCH never needs it). Raises NotFound for an unknown blob (or one removed
        meanwhile). Safe from any thread; cheap: an LRU cache of parsed MessageInfo keyed by
        blob (bounded in entries and memory) answers repeated FETCHes."""

    @abc.abstractmethod
    def message_infos(self, blobs: Sequence[str]) -> dict[str, MessageInfo]:
        """`message_info` for many blobs, with one query for the cache misses. Blobs unknown
        to the store (expunged and released meanwhile) are missing from the result rather than
        failing the lot. A cold batch costs ~8 microseconds per message (10,000 in ~80 ms on
        the 2-core target): run a whole mailbox's worth off the event loop."""

    @abc.abstractmethod
    def search_text(self, mailbox_id: int, field: TextField, needle: str) -> frozenset[int]:
        """UIDs of the mailbox's messages whose decoded text contains `needle` as a
        case-insensitive substring (RFC 9051 6.4.4; both sides `str.casefold()`ed, as the
        search evaluator's `fold` does). BODY: the decoded text parts; TEXT: those and every
        top-level header field as "name: value" (RFC 2047 decoded). An empty needle matches
        every message; an unknown mailbox gives an empty set. Uses the full-text index, and
        for messages not indexed yet the same test on their text."""

    @property
    @abc.abstractmethod
    def changes(self) -> ChangeBus:
        """The change bus: events published after their commit (see store/changes.py)."""

    # ----- outbound queue (queue/runner.py delivers; the CLI inspects and nudges) ---------------
    # One row per (message, remote recipient), written by `deliver()`. A row leaves the queue
    # only through `queue_done` (after the remote 250, or once its failure DSN is stored) or
    # `queue_delete`: a crash in between leaves it queued, so the worst case is a duplicate.
    @abc.abstractmethod
    def queue_size(self) -> int: ...

    @abc.abstractmethod
    def queue_entries(
        self, *, due_before: float | None = None, limit: int | None = None
    ) -> list[QueueEntry]:
        """Rows in (next_attempt, id) order; only those with next_attempt <= due_before when
        given."""

    @abc.abstractmethod
    def queue_entry(self, entry_id: int) -> QueueEntry | None: ...

    @abc.abstractmethod
    def queue_next_due(self) -> float | None:
        """The earliest next_attempt of any row, or None when the queue is empty."""

    @abc.abstractmethod
    async def queue_done(self, ids: Sequence[int]) -> None:
        """Delivered, or failed for good (its DSN already stored): the rows go, with their
        references to the blob. Ids already gone are ignored. Durable on return."""

    @abc.abstractmethod
    async def queue_defer(self, ids: Sequence[int], next_attempt: float, error: str) -> None:
        """A temporary failure: attempts += 1, last_error = error, retry at next_attempt."""

    @abc.abstractmethod
    async def queue_mark_warned(self, ids: Sequence[int]) -> None:
        """The delay DSN for these rows was stored (RFC 3464: send it once)."""

    @abc.abstractmethod
    def queue_retry(self, ids: Sequence[int] | None = None, now: float | None = None) -> int:
        """Make rows due now (all of them when `ids` is None); returns how many. For the CLI,
        from any thread or process; the runner notices at its next poll."""

    @abc.abstractmethod
    def queue_delete(self, entry_id: int) -> None:
        """Drop one row without a DSN (the CLI). Raises NotFound."""

    # ----- life cycle -----------------------------------------------------------------------------
    @abc.abstractmethod
    async def aclose(self) -> None:
        """Finish pending commits, then close. Safe to call twice."""

    @abc.abstractmethod
    def close(self) -> None:
        """Synchronous close for the CLI (no event loop)."""


def normalize_address(address: str) -> str:
    """Canonical form used as the key everywhere: domain lowercased and IDNA-encoded to ASCII
    (RFC 5890), local part lowercased (like Postfix and Dovecot with default settings, we treat
    local parts case-insensitively, RFC 5321 2.4 leaves it to the receiving host).

    Raises InvalidAddress for anything that is not local@domain.
    """
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    local, sep, domain = address.rpartition("@")
    if not sep or not domain or any(c.isspace() or c in "<>," for c in address):
        raise InvalidAddress(f"not an address: {address!r}")
    domain = normalize_domain(domain)
    if local == "":
        return "@" + domain  # catch-all alias form
    return f"{local.lower()}@{domain}"


# Dovecot's default mailbox_list_... limits are in this range; a name is a key in an index and
# echoed in LIST replies, so an unbounded one would be a cheap way to bloat both.
MAX_MAILBOX_NAME = 1000


def normalize_mailbox_name(name: str) -> str:
    """Canonical mailbox name: "INBOX" in any case (also as the first level, "inbox/x") is
    "INBOX" (RFC 3501 5.1); everything else is kept, case-sensitive.

    Raises InvalidName for an empty name or level ("a//b", "/a", "a/"), control characters
    (RFC 3501 5.1: they would not survive the wire), a path-like name ("../x", "a/./b", "~x"),
    or a name over MAX_MAILBOX_NAME.
    """
    if not name or len(name) > MAX_MAILBOX_NAME:
        raise InvalidName("empty or overlong mailbox name")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidName(f"control character in mailbox name {name!r}")
    levels = name.split(HIERARCHY_DELIMITER)
    if any(not level for level in levels):
        raise InvalidName(f"empty level in mailbox name {name!r}")
    # Names are keys, never paths, so "../bob" could only ever be alice's own; but a level "."
    # or ".." or a leading "~" (another user's namespace, RFC 2342 5) only serves to confuse
    # clients, logs and any tool that maps names to files. Dovecot refuses them too.
    if name.startswith("~") or any(level in (".", "..") for level in levels):
        raise InvalidName(f"mailbox name looks like a path: {name!r}")
    if levels[0].upper() == INBOX:
        levels[0] = INBOX
    return HIERARCHY_DELIMITER.join(levels)


def normalize_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    if not domain or len(domain) > 253:
        raise InvalidAddress(f"not a domain: {domain!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise InvalidAddress(f"not a domain: {domain!r}") from None
    labels = ascii_domain.split(".")
    if any(not label or len(label) > 63 for label in labels):
        raise InvalidAddress(f"not a domain: {domain!r}")
    if not all(c.isalnum() or c in "-_" for label in labels for c in label):
        raise InvalidAddress(f"not a domain: {domain!r}")
    return ascii_domain
