"""SEARCH evaluation (RFC 9051 6.4.4) over real messages analysed by `mailwright.message`.

Criteria are written as on the wire and parsed by the real grammar, so the table checks the
parser's key tree and its evaluation together.
"""

from __future__ import annotations

import base64
import datetime

import pytest

from mailwright.imap import search as s
from mailwright.imap.commands import Search
from mailwright.imap.grammar import parse_command
from mailwright.imap.search_eval import (
    ESearchResult,
    SearchContext,
    compress,
    esearch_result,
    matches,
    message_header,
    search,
    sent_date,
)
from mailwright.imap.sequence import SequenceSet
from mailwright.message import analyze
from mailwright.store.api import MessageRecord

UTC = datetime.UTC

M1 = (
    b"Date: Tue, 05 Mar 2024 23:30:00 -0800\r\n"
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Cc: carol@example.com\r\n"
    b"Bcc: dave@example.com\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    b"X-Custom: Hello\r\n  World\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"\r\n"
    b"The quick brown fox\r\njumps over the lazy dog.\r\n"
)
_B64 = base64.encodebytes("Überweisung bestätigt".encode()).replace(b"\n", b"\r\n")
M2 = (
    b"From: =?iso-8859-1?q?J=F6rg?= <jorg@example.com>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: Invoice\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + _B64 +
    b"--b1\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Invoice <b>number42</b> &amp; more</p>\r\n"
    b"--b1--\r\n"
)
M3 = (
    b"Date: not a date at all\r\n"
    b"Subject: Stra\xc3\x9fe\r\n"
    b"\r\n"
)

RAWS = (M1, M2, M3)
UIDS = (10, 20, 35)
FLAGS = (
    frozenset({"\\Seen", "\\Answered", "$Work"}),
    frozenset({"\\Flagged", "\\Deleted", "\\Draft"}),
    frozenset(),
)
INTERNAL = (
    datetime.datetime(2024, 3, 7, 10, 0, tzinfo=UTC),
    datetime.datetime(2024, 3, 1, 0, 0, tzinfo=UTC),
    datetime.datetime(2024, 3, 10, 23, 59, tzinfo=UTC),
)


def _contexts(lazy: bool = False) -> list[SearchContext]:
    out = []
    for i, raw in enumerate(RAWS):
        info = analyze(raw)
        header = message_header(raw, info)
        record = MessageRecord(
            uid=UIDS[i], blob="0" * 64, size=len(raw),
            internal_date=int(INTERNAL[i].timestamp()), flags=FLAGS[i], modseq=i + 1,
        )
        out.append(SearchContext.from_record(
            record, msn=i + 1, info=info,
            header=(lambda h=header: h) if lazy else header,
            last_msn=len(RAWS), last_uid=UIDS[-1], saved=frozenset({20}),
        ))
    return out


CTXS = _contexts()


def _key(criteria: str) -> s.SearchKey:
    data = criteria.encode()
    if not data.isascii():
        # A non-ASCII string goes as a literal, with CHARSET UTF-8 (RFC 9051 6.4.4).
        head, _, text = criteria.rpartition(" ")
        lit = text.encode()
        data = b"CHARSET UTF-8 " + head.encode() + b" {%d}\r\n" % len(lit) + lit
    cmd = parse_command(b"t SEARCH " + data)
    assert isinstance(cmd, Search), cmd
    return cmd.key


@pytest.mark.parametrize(("criteria", "expected"), [
    ("ALL", [1, 2, 3]),
    # Flags (RFC 9051 6.4.4; NEW/OLD/RECENT from RFC 3501, \Recent never set here).
    ("SEEN", [1]), ("UNSEEN", [2, 3]),
    ("ANSWERED", [1]), ("UNANSWERED", [2, 3]),
    ("DELETED", [2]), ("UNDELETED", [1, 3]),
    ("DRAFT", [2]), ("UNDRAFT", [1, 3]),
    ("FLAGGED", [2]), ("UNFLAGGED", [1, 3]),
    ("RECENT", []), ("NEW", []), ("OLD", [1, 2, 3]),
    ("KEYWORD $Work", [1]), ("KEYWORD $work", [1]), ("UNKEYWORD $Work", [2, 3]),
    ("KEYWORD $Other", []),
    # Sizes.
    (f"LARGER {len(M3)}", [1, 2]), (f"LARGER {len(M3) - 1}", [1, 2, 3]),
    (f"SMALLER {len(M3)}", []), (f"SMALLER {len(M3) + 1}", [3]),
    # Sequence and UID sets; "*" is the last msn / uid, "4:2" equals "2:4", "$" is saved.
    ("1", [1]), ("2:*", [2, 3]), ("*", [3]), ("*:2", [2, 3]), ("3:1", [1, 2, 3]),
    ("1,3", [1, 3]), ("4:9", []),
    ("UID 10", [1]), ("UID 11:20", [2]), ("UID *", [3]), ("UID 21:*", [3]),
    ("UID 36:*", [3]),  # "*" is 35, so 36:* is 35:36
    ("UID 1:9", []), ("$", [2]), ("UID $", [2]),
    # Internal date, date only (RFC 9051 6.4.4).
    ("BEFORE 7-Mar-2024", [2]), ("ON 7-Mar-2024", [1]), ("SINCE 7-Mar-2024", [1, 3]),
    ("ON 10-Mar-2024", [3]), ("SINCE 11-Mar-2024", []), ("BEFORE 1-Mar-2024", []),
    # Date: header as written (5 March in -0800, though 6 March in UTC); without a readable
    # Date:, the internal date.
    ("SENTON 5-Mar-2024", [1]), ("SENTON 6-Mar-2024", []),
    ("SENTBEFORE 6-Mar-2024", [1, 2]), ("SENTSINCE 6-Mar-2024", [3]),
    ("SENTON 1-Mar-2024", [2]), ("SENTON 10-Mar-2024", [3]),
    # Address and subject headers: decoded, case-insensitive substrings.
    ("FROM alice", [1]), ("FROM ALICE", [1]), ("FROM \"Alice Example\"", [1]),
    ("FROM jörg", [2]), ("FROM example.com", [2]),
    ("TO alice", [2]), ("TO bob@example.net", [1]), ("CC carol", [1]), ("BCC dave", [1]),
    ("CC nobody", []), ("SUBJECT grüße", [1]), ("SUBJECT KÖLN", [1]),
    ("SUBJECT invoice", [2]), ("SUBJECT straße", [3]),
    ("SUBJECT STRASSE", [3]),  # casefold: ß is ss
    ("SUBJECT =?utf-8?q?", []),  # the encoded form is not what is searched
    ("FROM \"\"", [1, 2, 3]),
    # HEADER: any field, value substring; "" matches presence.
    ("HEADER X-Custom world", [1]),
    ("HEADER x-custom \"hello  world\"", [1]),  # unfolded: CRLF gone, spaces kept
    ("HEADER X-Custom \"\"", [1]), ("HEADER Date \"\"", [1, 3]),
    ("HEADER MIME-Version 1.0", [2]), ("HEADER Subject köln", [1]),
    ("HEADER X-Missing \"\"", []),
    # BODY (text parts, decoded) and TEXT (header and body).
    ("BODY fox", [1]), ("BODY LAZY", [1]), ("BODY überweisung", [2]),
    ("BODY number42", [2]), ("BODY \"& more\"", [2]), ("BODY <b>", []),
    ("BODY invoice", [2]),  # in the HTML part too
    ("BODY alice", []), ("BODY grüße", []), ("BODY straße", []),  # headers are not BODY
    ("TEXT alice", [1, 2]), ("TEXT grüße", [1]), ("TEXT straße", [3]),
    ("TEXT fox", [1]), ("TEXT m1@example.org", [1]), ("TEXT message-id", [1]),
    ("TEXT bestätigt", [2]),
    # NOT / OR / AND nesting.
    ("NOT SEEN", [2, 3]), ("NOT NOT SEEN", [1]), ("OR SEEN FLAGGED", [1, 2]),
    ("OR SEEN OR FLAGGED 3", [1, 2, 3]), ("NOT OR SEEN FLAGGED", [3]),
    ("SEEN FLAGGED", []), ("UNSEEN UNDELETED", [3]), ("(SEEN) (FROM alice)", [1]),
    ("OR (SEEN FROM bob) (DELETED TO alice)", [2]),
    ("NOT (UID 10:20 UNFLAGGED)", [2, 3]), ("OR NOT 1 NOT 2", [1, 2, 3]),
    ("2:* NOT SUBJECT invoice BODY fox", []), ("ALL NOT ALL", []),
])
def test_search_table(criteria: str, expected: list[int]) -> None:
    key = _key(criteria)
    assert search(key, CTXS) == expected
    assert search(key, _contexts(lazy=True)) == expected
    assert search(key, CTXS, uid=True) == [UIDS[n - 1] for n in expected]
    # NOT inverts every key exactly.
    assert search(s.Not(key), CTXS) == [n for n in (1, 2, 3) if n not in expected]


def test_header_is_fetched_lazily_and_once() -> None:
    calls = []

    def fetch() -> bytes:
        calls.append(1)
        return message_header(M1, analyze(M1))

    ctx = SearchContext(
        msn=1, uid=1, flags=frozenset(), internal_date=INTERNAL[0], size=len(M1),
        info=analyze(M1), header=fetch, last_msn=1, last_uid=1,
    )
    assert matches(_key("SEEN UID 1 LARGER 1"), ctx) is False
    assert calls == []
    assert matches(_key("FROM alice SUBJECT aus HEADER X-Custom world"), ctx)
    assert calls == [1]


def test_and_tries_cheap_keys_first() -> None:
    def boom() -> bytes:
        raise AssertionError("header fetched although a flag already failed")

    ctx = SearchContext(
        msn=1, uid=1, flags=frozenset(), internal_date=INTERNAL[0], size=1,
        info=analyze(M1), header=boom, last_msn=1, last_uid=1,
    )
    assert not matches(s.And((s.TextKey("FROM", "x"), s.FlagKey("SEEN"))), ctx)


def test_text_match_is_swappable() -> None:
    seen: list[tuple[str, str, int]] = []

    def fts(field: str, needle: str, ctx: SearchContext) -> bool:
        seen.append((field, needle, ctx.uid))
        return ctx.uid == 35

    key = _key("OR BODY x TEXT y")
    assert search(key, CTXS, text_match=fts) == [3]
    assert ("BODY", "x", 10) in seen
    assert ("TEXT", "y", 10) in seen
    assert search(_key("SUBJECT invoice"), CTXS, text_match=fts) == [2]  # not full-text


def test_recent_and_new_follow_the_session() -> None:
    ctx = _contexts()[2]
    ctx.recent = True
    assert matches(s.FlagKey("RECENT"), ctx)
    assert matches(s.FlagKey("NEW"), ctx)
    assert not matches(s.FlagKey("OLD"), ctx)
    ctx = _contexts()[0]
    ctx.recent = True
    assert not matches(s.FlagKey("NEW"), ctx)  # NEW is RECENT UNSEEN


def test_star_in_an_empty_range_and_a_single_message_mailbox() -> None:
    ctx = _contexts()[0]
    ctx.last_msn, ctx.last_uid = 1, 10
    assert matches(_key("*"), ctx)
    assert matches(_key("UID *"), ctx)
    assert matches(_key("UID 500:*"), ctx)  # RFC 3501 6.4.8: n:* always includes the last UID
    assert not matches(_key("2:4"), ctx)


def test_internal_date_uses_the_session_timezone() -> None:
    record = MessageRecord(10, "0" * 64, len(M1), int(INTERNAL[0].timestamp()), frozenset(), 1)
    east = datetime.timezone(datetime.timedelta(hours=14))
    info = analyze(M1)
    ctx = SearchContext.from_record(
        record, msn=1, info=info, header=message_header(M1, info), last_msn=1, last_uid=10,
        tz=east,
    )
    assert ctx.internal_day() == datetime.date(2024, 3, 8)  # 10:00 UTC is 00:00 +14
    assert matches(_key("ON 8-Mar-2024"), ctx)


@pytest.mark.parametrize(("date_field", "expected"), [
    (b"Tue, 05 Mar 2024 23:30:00 -0800", datetime.date(2024, 3, 5)),
    (b"5 Mar 2024 01:00 +1400", datetime.date(2024, 3, 5)),
    (b"Mon, 1 Jan 99 00:00:00 GMT", datetime.date(1999, 1, 1)),
    (b"Mon, 31 Feb 2024 00:00:00 GMT", INTERNAL[0].date()),  # impossible day
    (b"Mon, 1 Jan 0 00:00:00 GMT", datetime.date(2000, 1, 1)),
    (b"", INTERNAL[0].date()),
    (b"\xff\xfe garbage", INTERNAL[0].date()),
])
def test_sent_date(date_field: bytes, expected: datetime.date) -> None:
    raw = b"Date: " + date_field + b"\r\n\r\nx\r\n"
    info = analyze(raw)
    ctx = SearchContext(
        msn=1, uid=1, flags=frozenset(), internal_date=INTERNAL[0], size=len(raw), info=info,
        header=message_header(raw, info), last_msn=1, last_uid=1,
    )
    assert sent_date(ctx) == expected


def test_message_header_is_the_top_header_block() -> None:
    info = analyze(M2)
    header = message_header(M2, info)
    assert header.startswith(b"From:")
    assert header.endswith(b"\r\n\r\n")
    assert b"Content-Transfer-Encoding" not in header


@pytest.mark.parametrize(("numbers", "text"), [
    ([1], "1"), ([1, 2, 3], "1:3"), ([3, 1, 2, 7, 9, 10], "1:3,7,9:10"), ([5, 5], "5"),
])
def test_compress(numbers: list[int], text: str) -> None:
    assert str(compress(numbers)) == text


@pytest.mark.parametrize(("numbers", "options", "expected"), [
    ([2, 5, 6], ("MIN", "MAX", "COUNT"), ESearchResult(min=2, max=6, count=3)),
    ([2, 5, 6], (), ESearchResult(all=SequenceSet(((2, 2), (5, 6))))),  # RETURN () = ALL
    ([2, 5, 6], ("ALL", "count"), ESearchResult(count=3, all=SequenceSet(((2, 2), (5, 6))))),
    ([], ("MIN", "MAX", "COUNT", "ALL"), ESearchResult(count=0)),  # RFC 4731 3.1
    ([4], ("SAVE",), ESearchResult()),
])
def test_esearch_result(
    numbers: list[int], options: tuple[str, ...], expected: ESearchResult
) -> None:
    assert esearch_result(numbers, options) == expected
