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

Threading: the synchronous methods are safe from any thread (the event loop calls the cheap
lookups directly; each thread gets its own read connection). Async methods must be awaited on
the event loop; they never block it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Pop3Policy = Literal["delete", "keep"]
POP3_POLICIES: tuple[Pop3Policy, ...] = ("delete", "keep")


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


class StorageUnavailable(StoreError):
    """Disk full, read-only file system, or the database is locked: a temporary failure.

    Protocols answer with a temporary error (SMTP 451/452, POP3 -ERR [SYS/TEMP], IMAP NO
    [SERVERBUG]) and nothing acknowledged before is affected.
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


class StagedMessage(Protocol):
    """A message being received: bytes go to a temporary file and are hashed as they arrive.

    It is not durable and not visible until passed to `Store.deliver()`; `abort()` removes it.
    """

    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

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
    ) -> None:
        """Store one copy of the message for all local accounts (their INBOX) and queue it for the
        remote recipients, in one transaction. Durable when it returns (see module docstring).
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

    # ----- outbound queue (delivery comes in a later issue) ------------------------------------
    @abc.abstractmethod
    def queue_size(self) -> int: ...

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
