"""The SEARCH key tree (RFC 9051 6.4.4 and 9, RFC 3501 6.4.4 and 9), as frozen values.

A top-level list of keys is an `And`. Strings are decoded text (the charset is on `Search`);
dates are calendar dates (the session applies the timezone rules of RFC 9051 6.4.4).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from mailwright.imap.sequence import SequenceSet

# Keys without arguments. NEW, OLD, RECENT and UNKEYWORD's siblings are RFC 3501 only; RFC 9051
# dropped \Recent, but IMAP4rev1 clients still send them.
FLAG_KEYS = frozenset({
    "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
    "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN",
})
TEXT_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
DATE_KEYS = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})


@dataclass(frozen=True, slots=True)
class FlagKey:
    """ALL, SEEN, UNSEEN, NEW, ... (upper-cased)."""

    name: str


@dataclass(frozen=True, slots=True)
class KeywordKey:
    keyword: str
    negated: bool = False  # UNKEYWORD


@dataclass(frozen=True, slots=True)
class TextKey:
    """BCC BODY CC FROM SUBJECT TEXT TO <string>."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class HeaderKey:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class DateKey:
    """BEFORE ON SINCE (internal date) and SENTBEFORE SENTON SENTSINCE (Date: header)."""

    op: str
    date: datetime.date


@dataclass(frozen=True, slots=True)
class SizeKey:
    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SetKey:
    """A sequence set, or a UID set when `uid` (the UID search key)."""

    sequence: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[SearchKey, ...]


SearchKey = FlagKey | KeywordKey | TextKey | HeaderKey | DateKey | SizeKey | SetKey | Not | Or | And
