"""Evaluate a SEARCH key tree (`mailwright.imap.search`) against messages (RFC 9051 6.4.4).

Pure: the session builds one `SearchContext` per message from the store's `MessageRecord` and
`MessageInfo`; the header bytes may be given as a callable, called at most once and only when a
key needs them (HEADER, FROM, TO, CC, BCC, SUBJECT, TEXT, SENT*).

Rules, with their source:
- String keys match a case-insensitive substring (RFC 9051 6.4.4). Both sides are casefolded,
  which is what "case-insensitive" means for the UTF-8 charset (RFC 9051 6.4.4.1 lets the
  server choose the comparator; RFC 5051 i;unicode-casemap also casefolds).
- FROM/TO/CC/BCC/SUBJECT/HEADER search the header field's value with RFC 2047 encoded-words
  decoded; every occurrence of the field counts. HEADER with an empty string matches any message
  that has the field (RFC 9051 6.4.4).
- BODY/TEXT go through one function, `default_text_match`, which searches `MessageInfo.text`.
  The session passes another `TextMatch` (the store's FTS5 index) to `matches`/`search`, and a
  `HeaderHint` that rules out, before their header is read, messages in which the index does
  not have a header key's value.
- `search` walks the key tree once per command (`compile_key` builds one predicate), not once
  per message; `matches` is the same rules read plainly, and the two are property-tested to
  agree.
- BEFORE/ON/SINCE compare the internal date's calendar date in the timezone the session gave
  it; SENTBEFORE/SENTON/SENTSINCE the Date: header's calendar date as written, "disregarding
  time and timezone" (RFC 9051 6.4.4). A message without a readable Date: uses its internal
  date instead, as Dovecot does, so that it is neither in every SENT* result nor in none.
- NEW = RECENT UNSEEN, OLD = NOT RECENT (RFC 3501 6.4.4); \\Recent is only what the session says
  (`recent`, False by default: RFC 9051 dropped it).
- "*" in a set is the largest number in use: `last_msn` or `last_uid` (RFC 9051 6.4.4 and 9);
  "$" is the saved result of RFC 5182, kept by the session as UIDs (`saved`).
- Evaluation never raises for any key tree the parser can build (property-tested).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_tz
from typing import Final, assert_never

from mailwright.imap.search import (
    And,
    DateKey,
    FlagKey,
    HeaderKey,
    KeywordKey,
    Not,
    Or,
    SearchKey,
    SetKey,
    SizeKey,
    TextKey,
)
from mailwright.imap.sequence import SequenceSet
from mailwright.message import MessageInfo
from mailwright.message.headers import first_fields, iter_fields
from mailwright.message.text import SEARCH_HEADERS, decode_header_value
from mailwright.store.api import MessageRecord

# Flag keys -> (flag, wanted). ALL, NEW, OLD and RECENT are handled apart.
_FLAG_KEYS: Final[dict[str, tuple[str, bool]]] = {
    "ANSWERED": ("\\answered", True), "UNANSWERED": ("\\answered", False),
    "DELETED": ("\\deleted", True), "UNDELETED": ("\\deleted", False),
    "DRAFT": ("\\draft", True), "UNDRAFT": ("\\draft", False),
    "FLAGGED": ("\\flagged", True), "UNFLAGGED": ("\\flagged", False),
    "SEEN": ("\\seen", True), "UNSEEN": ("\\seen", False),
}


@dataclass(slots=True, eq=False)
class SearchContext:
    """One message as SEARCH sees it.

    `flags` holds system flags ("\\Seen") and keywords; they compare case-insensitively
    (RFC 9051 2.3.2 and 9 `flag`). `header` is the message's header bytes (the top-level header
    block, as stored) or a callable that returns them. `internal_date` is a datetime, or the
    store's seconds since the epoch, turned into a datetime in `tz` only when a key needs it
    (most searches of a 10,000-message mailbox never look at it).
    """

    msn: int
    uid: int
    flags: frozenset[str]
    internal_date: datetime.datetime | int
    size: int
    info: MessageInfo | Callable[[], MessageInfo]
    header: bytes | Callable[[], bytes]
    last_msn: int
    last_uid: int
    modseq: int = 0
    recent: bool = False
    saved: frozenset[int] = frozenset()
    tz: datetime.tzinfo = datetime.UTC
    _lower_flags: frozenset[str] | None = field(default=None, init=False, repr=False)
    _header_bytes: bytes | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_record(
        cls,
        record: MessageRecord,
        *,
        msn: int,
        info: MessageInfo | Callable[[], MessageInfo],
        header: bytes | Callable[[], bytes],
        last_msn: int,
        last_uid: int,
        tz: datetime.tzinfo = datetime.UTC,
        recent: bool = False,
        saved: frozenset[int] = frozenset(),
    ) -> SearchContext:
        """From the store's record; `tz` is the zone whose calendar BEFORE/ON/SINCE use."""
        return cls(
            msn=msn,
            uid=record.uid,
            flags=record.flags,
            internal_date=record.internal_date,
            size=record.size,
            info=info,
            header=header,
            last_msn=last_msn,
            last_uid=last_uid,
            modseq=record.modseq,
            recent=recent,
            saved=saved,
            tz=tz,
        )

    def internal_day(self) -> datetime.date:
        """The internal date's calendar date in `tz` (BEFORE, ON, SINCE)."""
        when = self.internal_date
        if isinstance(when, int):
            when = self.internal_date = datetime.datetime.fromtimestamp(when, self.tz)
        return when.date()

    def message_info(self) -> MessageInfo:
        """The message's parsed facts; a callable `info` is called at most once, when a key
        needs them (the FTS index answers BODY/TEXT without them)."""
        if not isinstance(self.info, MessageInfo):
            self.info = self.info()
        return self.info

    def header_bytes(self) -> bytes:
        """The header block, fetched at most once."""
        if self._header_bytes is None:
            h = self.header
            self._header_bytes = h if isinstance(h, bytes) else h()
        return self._header_bytes

    def lower_flags(self) -> frozenset[str]:
        if self._lower_flags is None:
            self._lower_flags = _lowered(self.flags)
        return self._lower_flags


# Lower-cased flag sets by flag set: a mailbox has few distinct ones. Bounded; cleared when full.
_LOWERED: dict[frozenset[str], frozenset[str]] = {}
_LOWERED_MAX: Final = 4096


def _lowered(flags: frozenset[str]) -> frozenset[str]:
    got = _LOWERED.get(flags)
    if got is None:
        if len(_LOWERED) >= _LOWERED_MAX:
            _LOWERED.clear()
        got = _LOWERED[flags] = frozenset(f.lower() for f in flags)
    return got


def message_header(raw: bytes, info: MessageInfo) -> bytes:
    """The top-level header block of a stored message (what `SearchContext.header` wants)."""
    top = info.parts.get("")  # Section(0, 0, size, header_end) for the whole message
    if top is None or top.message_body_start is None:
        return raw
    return raw[: top.message_body_start]


TextMatch = Callable[[str, str, SearchContext], bool]
"""(field "BODY" or "TEXT", needle, message) -> bool: the one place full-text search happens."""


def fold(text: str) -> str:
    """The case-insensitive form both sides of a string comparison take."""
    return text.casefold()


def _header_prefix(ctx: SearchContext) -> str:
    """The decoded header values `search_text` puts before the body text (see message/text.py)."""
    raw = ctx.header_bytes()
    fields = first_fields(raw, 0, len(raw), frozenset(SEARCH_HEADERS))
    pieces = [decode_header_value(fields[n]) for n in SEARCH_HEADERS if n in fields]
    return "".join(p + "\n" for p in pieces)


def body_text(ctx: SearchContext) -> str:
    """`MessageInfo.text` without its leading header values: the text parts only.

    `search_text` (message/text.py) writes the decoded `SEARCH_HEADERS` values first, one per
    line; they are rebuilt the same way and cut off. If the text does not start with them (cut
    at MAX_TEXT), the whole text is searched: a false match beats a missed one.
    """
    text = ctx.message_info().text
    prefix = _header_prefix(ctx).replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    if prefix and text.startswith(prefix):
        return text[len(prefix):]
    if prefix and text == prefix[:-1]:
        return ""  # headers only, no text part: no trailing newline after the last value
    return text


def default_text_match(key_field: str, needle: str, ctx: SearchContext) -> bool:
    """BODY: the decoded text parts. TEXT: those, or any header field ("name: value")."""
    want = fold(needle)
    if key_field == "BODY":
        return want in fold(body_text(ctx))
    if want in fold(ctx.message_info().text):
        return True
    raw = ctx.header_bytes()
    return any(
        want in fold(name.decode("latin-1") + ": " + decode_header_value(value))
        for name, value in iter_fields(raw, 0, len(raw))
    )


def _header_values(ctx: SearchContext, name: str) -> list[str]:
    wanted = name.encode("utf-8", "replace").lower()
    raw = ctx.header_bytes()
    return [decode_header_value(v) for n, v in iter_fields(raw, 0, len(raw)) if n == wanted]


def _header_match(ctx: SearchContext, name: str, needle: str) -> bool:
    values = _header_values(ctx, name)
    if not needle:
        return bool(values)  # RFC 9051 6.4.4: an empty string matches the field's presence
    want = fold(needle)
    return any(want in fold(v) for v in values)


def sent_date(ctx: SearchContext) -> datetime.date:
    """The Date: header's calendar date as written, or the internal date's when unreadable."""
    raw = ctx.header_bytes()
    fields = first_fields(raw, 0, len(raw), frozenset({b"date"}))
    if b"date" in fields:
        try:
            parsed = parsedate_tz(fields[b"date"].decode("latin-1"))
            if parsed is not None:
                return datetime.date(parsed[0], parsed[1], parsed[2])
        except (ValueError, TypeError, IndexError, OverflowError):
            pass  # a broken Date: from the sender; fall back as documented above
    return ctx.internal_day()


def _compare_date(op: str, have: datetime.date, want: datetime.date) -> bool:
    if op.endswith("BEFORE"):
        return have < want
    if op.endswith("ON"):
        return have == want
    return have >= want  # SINCE / SENTSINCE: "within or later than"


def in_set(seq: SequenceSet, number: int, last: int) -> bool:
    """Whether `number` is in `seq`, "*" being `last` (RFC 9051 9: "4:2" is "2:4")."""
    for a, b in seq.ranges:
        lo = last if a is None else a
        hi = last if b is None else b
        if lo > hi:
            lo, hi = hi, lo
        if lo <= number <= hi:
            return True
    return False


def _cost(key: SearchKey) -> int:
    """Rough cost, so that an AND tries cheap keys first and may skip the header and text."""
    match key:
        case FlagKey() | KeywordKey() | SizeKey() | SetKey():
            return 0
        case DateKey(op=op):
            return 2 if op.startswith("SENT") else 0
        case HeaderKey():
            return 2
        case TextKey(field=f):
            return 3 if f in ("BODY", "TEXT") else 2
        case Not(key=k):
            return _cost(k)
        case Or(left=left, right=right):
            return max(_cost(left), _cost(right))
        case And(keys=keys):
            return max((_cost(k) for k in keys), default=0)
        case _:
            assert_never(key)


def matches(key: SearchKey, ctx: SearchContext, text_match: TextMatch = default_text_match) -> bool:
    """Whether the message `ctx` satisfies `key` (RFC 9051 6.4.4)."""
    match key:
        case FlagKey(name=name):
            if name == "ALL":
                return True
            if name == "RECENT":
                return ctx.recent
            if name == "OLD":
                return not ctx.recent
            if name == "NEW":
                return ctx.recent and "\\seen" not in ctx.lower_flags()
            flag, wanted = _FLAG_KEYS[name]
            return (flag in ctx.lower_flags()) == wanted
        case KeywordKey(keyword=kw, negated=negated):
            return (kw.lower() in ctx.lower_flags()) != negated
        case TextKey(field=f, value=value):
            if f in ("BODY", "TEXT"):
                return text_match(f, value, ctx)
            return _header_match(ctx, f, value) if value else True
        case HeaderKey(name=name, value=value):
            return _header_match(ctx, name, value)
        case DateKey(op=op, date=date):
            have = sent_date(ctx) if op.startswith("SENT") else ctx.internal_day()
            return _compare_date(op, have, date)
        case SizeKey(larger=larger, size=size):
            return ctx.size > size if larger else ctx.size < size
        case SetKey(sequence=seq, uid=uid):
            if seq.saved:
                return ctx.uid in ctx.saved  # "$" and "UID $" both name the saved messages
            if uid:
                return in_set(seq, ctx.uid, ctx.last_uid)
            return in_set(seq, ctx.msn, ctx.last_msn)
        case Not(key=inner):
            return not matches(inner, ctx, text_match)
        case Or(left=left, right=right):
            return matches(left, ctx, text_match) or matches(right, ctx, text_match)
        case And(keys=keys):
            return all(matches(k, ctx, text_match) for k in sorted(keys, key=_cost))
        case _:
            assert_never(key)


Predicate = Callable[[SearchContext], bool]


def _all_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]

    def every(ctx: SearchContext) -> bool:
        for p in preds:  # noqa: SIM110 (no generator per message: 10,000 of them per SEARCH)
            if not p(ctx):
                return False
        return True

    return every


def _flag_predicate(name: str) -> Predicate:
    if name == "ALL":
        return lambda ctx: True
    if name == "RECENT":
        return lambda ctx: ctx.recent
    if name == "OLD":
        return lambda ctx: not ctx.recent
    if name == "NEW":
        return lambda ctx: ctx.recent and "\\seen" not in ctx.lower_flags()
    flag, wanted = _FLAG_KEYS[name]
    if wanted:
        return lambda ctx: flag in ctx.lower_flags()
    return lambda ctx: flag not in ctx.lower_flags()


HeaderHint = Callable[[str, SearchContext], bool]
"""(needle, message) -> False when no header field of the message can contain the needle
(say, the full-text index does not have it), so the header need not be read; True: look."""


def _always(needle: str, ctx: SearchContext) -> bool:
    return True


def compile_key(key: SearchKey, text_match: TextMatch = default_text_match,
                header_hint: HeaderHint = _always) -> Predicate:
    """`matches` as one function built once per SEARCH: the key tree is walked here, not for
    every message (issue 4: SEARCH over 10,000 messages). Same answers as `matches`, which
    stays the plain reading of the rules (property-tested against each other), given a
    `header_hint` that never says False for a message that matches."""
    match key:
        case FlagKey(name=name):
            return _flag_predicate(name)
        case KeywordKey(keyword=kw, negated=negated):
            low = kw.lower()
            if negated:
                return lambda ctx: low not in ctx.lower_flags()
            return lambda ctx: low in ctx.lower_flags()
        case TextKey(field=f, value=value):
            if f in ("BODY", "TEXT"):
                return lambda ctx: text_match(f, value, ctx)
            if not value:
                return lambda ctx: True
            return lambda ctx: header_hint(value, ctx) and _header_match(ctx, f, value)
        case HeaderKey(name=name, value=value):
            if not value:  # presence of the field: the hint knows nothing of that
                return lambda ctx: _header_match(ctx, name, value)
            return lambda ctx: header_hint(value, ctx) and _header_match(ctx, name, value)
        case DateKey(op=op, date=date):
            if op.startswith("SENT"):
                return lambda ctx: _compare_date(op, sent_date(ctx), date)
            if op == "BEFORE":
                return lambda ctx: ctx.internal_day() < date
            if op == "ON":
                return lambda ctx: ctx.internal_day() == date
            return lambda ctx: ctx.internal_day() >= date
        case SizeKey(larger=larger, size=size):
            if larger:
                return lambda ctx: ctx.size > size
            return lambda ctx: ctx.size < size
        case SetKey(sequence=seq, uid=uid):
            if seq.saved:
                return lambda ctx: ctx.uid in ctx.saved
            if uid:
                return lambda ctx: in_set(seq, ctx.uid, ctx.last_uid)
            return lambda ctx: in_set(seq, ctx.msn, ctx.last_msn)
        case Not(key=inner):
            p = compile_key(inner, text_match, header_hint)
            return lambda ctx: not p(ctx)
        case Or(left=left, right=right):
            a = compile_key(left, text_match, header_hint)
            b = compile_key(right, text_match, header_hint)
            return lambda ctx: a(ctx) or b(ctx)
        case And(keys=keys):
            return _all_of([compile_key(k, text_match, header_hint)
                            for k in sorted(keys, key=_cost)])
        case _:
            assert_never(key)


def search(
    key: SearchKey,
    messages: Iterable[SearchContext],
    *,
    uid: bool = False,
    text_match: TextMatch = default_text_match,
    header_hint: HeaderHint = _always,
) -> list[int]:
    """The message sequence numbers (or UIDs, for UID SEARCH) of the matching messages, in
    mailbox order."""
    test = compile_key(key, text_match, header_hint)
    if uid:
        return [m.uid for m in messages if test(m)]
    return [m.msn for m in messages if test(m)]


# --- ESEARCH (RFC 4731 3.1, RFC 9051 7.3.4) ---------------------------------------------------


def compress(numbers: Iterable[int]) -> SequenceSet:
    """Numbers as a sequence set of ascending ranges ("1:3,7"), as ESEARCH ALL sends them."""
    ranges: list[tuple[int | None, int | None]] = []
    start = prev = None
    for n in sorted(set(numbers)):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            ranges.append((start, prev))
        start = prev = n
    if start is not None:
        ranges.append((start, prev))
    return SequenceSet(tuple(ranges))


@dataclass(frozen=True, slots=True)
class ESearchResult:
    """The result options asked for; None where not asked, or where RFC 4731 3.1 says to leave
    MIN, MAX and ALL out because nothing matched."""

    min: int | None = None
    max: int | None = None
    count: int | None = None
    all: SequenceSet | None = None


def esearch_result(numbers: Sequence[int], options: Iterable[str]) -> ESearchResult:
    """The ESEARCH data for `numbers` (the search result) and the RETURN options.

    "RETURN ()" (no options) means ALL (RFC 4731 3.1). SAVE is the session's business
    (RFC 5182): it is ignored here, and alone it returns nothing.
    """
    opts = {o.upper() for o in options}
    if not opts:
        opts = {"ALL"}
    return ESearchResult(
        min=min(numbers) if numbers and "MIN" in opts else None,
        max=max(numbers) if numbers and "MAX" in opts else None,
        count=len(numbers) if "COUNT" in opts else None,
        all=compress(numbers) if numbers and "ALL" in opts else None,
    )
