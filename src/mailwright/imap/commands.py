"""IMAP commands as typed, frozen values: RFC 3501 (IMAP4rev1), RFC 9051 (IMAP4rev2) and the
extensions of issue 4 (IDLE 2177, UNSELECT 3691, NAMESPACE 2342, ID 2971, ENABLE 5161,
UIDPLUS 4315, MOVE 6851, SASL-IR 4959, LIST-EXTENDED 5258, LIST-STATUS 5819, SPECIAL-USE 6154,
ESEARCH 4731, SEARCHRES 5182, BINARY 3516, STATUS=SIZE 8438).

Every command carries its `tag`. Mailbox names are already decoded (modified UTF-7 or UTF-8)
and "INBOX" is upper-cased in any spelling (RFC 9051 5.1). `uid=True` marks the "UID" prefix.
The parser builds these once; the session dispatches with `match` and `assert_never`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from mailwright.imap.search import SearchKey
from mailwright.imap.sequence import SequenceSet


@dataclass(frozen=True, slots=True)
class Capability:
    tag: str


@dataclass(frozen=True, slots=True)
class Noop:
    tag: str


@dataclass(frozen=True, slots=True)
class Logout:
    tag: str


@dataclass(frozen=True, slots=True)
class StartTls:
    tag: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """`initial_response` is the decoded SASL-IR (RFC 4959): None if absent, b"" for "="."""

    tag: str
    mechanism: str
    initial_response: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Login:
    tag: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Enable:
    """RFC 5161: capability names, upper-cased."""

    tag: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Select:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Examine:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Create:
    """`special_use` holds the RFC 6154 5.1 USE attributes (e.g. "\\Sent"), if any."""

    tag: str
    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    tag: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class List:
    """LIST, with RFC 5258 selection and return options (upper-cased atoms).

    `return_status` is the RFC 5819 STATUS return option's items, None when not asked.
    """

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    return_status: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Lsub:
    tag: str
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace:
    tag: str


@dataclass(frozen=True, slots=True)
class Status:
    """Items upper-cased: MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED APPENDLIMIT."""

    tag: str
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append:
    """The head of an APPEND; `size` octets follow as `AppendChunk`s, then `AppendEnd`.

    `binary` is True for a literal8 (~{n}, RFC 3516 4.4 / RFC 9051 6.3.12).
    """

    tag: str
    mailbox: str
    flags: tuple[str, ...]
    internal_date: datetime.datetime | None
    size: int
    synchronizing: bool
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Idle:
    tag: str


@dataclass(frozen=True, slots=True)
class Check:
    tag: str


@dataclass(frozen=True, slots=True)
class Close:
    tag: str


@dataclass(frozen=True, slots=True)
class Unselect:
    tag: str


@dataclass(frozen=True, slots=True)
class Expunge:
    """EXPUNGE, or UID EXPUNGE (RFC 4315 2.1 / RFC 9051 6.4.9) when `uid_set` is given."""

    tag: str
    uid_set: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """`return_options` is None for a plain SEARCH, () for "RETURN ()" (= ALL, RFC 4731 3.1)."""

    tag: str
    key: SearchKey
    uid: bool = False
    charset: str | None = None
    return_options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A BODY[...] section (RFC 9051 6.4.5): part numbers, then HEADER, HEADER.FIELDS,
    HEADER.FIELDS.NOT, TEXT or MIME (or None for the whole part); header names upper-cased."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """A plain data item: ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE
    RFC822.TEXT BODY BODYSTRUCTURE UID (RFC 9051 6.4.5)."""

    name: str


@dataclass(frozen=True, slots=True)
class FetchBody:
    """BODY[section]<origin.length> or BODY.PEEK[...]; `partial` is (origin, length)."""

    section: Section
    peek: bool = False
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class FetchBinary:
    """BINARY[part]<partial>, BINARY.PEEK[...], or BINARY.SIZE[part] when `size` (RFC 3516)."""

    part: tuple[int, ...]
    peek: bool = False
    partial: tuple[int, int] | None = None
    size: bool = False


FetchItem = FetchAttr | FetchBody | FetchBinary


@dataclass(frozen=True, slots=True)
class Fetch:
    """Macros are expanded (RFC 9051 6.4.5): ALL, FAST, FULL; `macro` records which one."""

    tag: str
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    macro: str | None = None


@dataclass(frozen=True, slots=True)
class Store:
    """`mode` is "+" (add), "-" (remove) or "" (replace); `silent` for .SILENT."""

    tag: str
    sequence: SequenceSet
    mode: str
    silent: bool
    flags: tuple[str, ...]
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Copy:
    tag: str
    sequence: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    tag: str
    sequence: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Id:
    """RFC 2971: field/value pairs, or None for "ID NIL"."""

    tag: str
    params: tuple[tuple[str, str | None], ...] | None


Command = (
    Capability | Noop | Logout | StartTls | Authenticate | Login | Enable | Select | Examine
    | Create | Delete | Rename | Subscribe | Unsubscribe | List | Lsub | Namespace | Status
    | Append | Idle | Check | Close | Unselect | Expunge | Search | Fetch | Store | Copy | Move
    | Id
)
