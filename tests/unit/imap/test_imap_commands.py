"""The IMAP command grammar: a table of (wire, expected command) for every command of RFC 3501,
RFC 9051 and the issue's extensions, each fed whole, byte by byte and with trailing bytes
(STYLE.md 8)."""

from __future__ import annotations

import datetime
from typing import get_args

import pytest

from mailwright.imap import commands as c
from mailwright.imap import search as s
from mailwright.imap.grammar import SyntaxErr
from mailwright.imap.parser import Continuation, Event, ImapParser, NeedData
from mailwright.imap.sequence import SequenceSet

S1 = SequenceSet(((1, 1),))
ALL_SEQ = SequenceSet(((1, None),))


def feed(p: ImapParser, data: bytes) -> list[Event]:
    p.receive_data(data)
    out: list[Event] = []
    while not isinstance(ev := p.next_event(), NeedData):
        out.append(ev)
    return out


def commands_of(wire: bytes, mode: str) -> list[Event]:
    """Feed `wire` whole, one byte at a time, or followed by the start of another command."""
    p = ImapParser()
    if mode == "whole":
        events = feed(p, wire)
    elif mode == "bytewise":
        events = []
        for i in range(len(wire)):
            events += feed(p, wire[i : i + 1])
    else:
        events = feed(p, wire + b"z9 NOOP\r\nz10 CAP")
        assert events[-1] == c.Noop("z9")
        events = events[:-1]
    return [e for e in events if not isinstance(e, Continuation)]


TABLE: list[tuple[bytes, c.Command]] = [
    (b"a CAPABILITY", c.Capability("a")),
    (b"a capability", c.Capability("a")),
    (b"a NOOP", c.Noop("a")),
    (b"a LOGOUT", c.Logout("a")),
    (b"a STARTTLS", c.StartTls("a")),
    (b"a AUTHENTICATE PLAIN", c.Authenticate("a", "PLAIN")),
    (b"a AUTHENTICATE plain AGJvYgBwdw==", c.Authenticate("a", "PLAIN", b"\0bob\0pw")),
    (b"a AUTHENTICATE LOGIN =", c.Authenticate("a", "LOGIN", b"")),
    (b"a LOGIN bob secret", c.Login("a", "bob", "secret")),
    (b'a LOGIN "bob" "se \\"cr\\\\et"', c.Login("a", "bob", 'se "cr\\et')),
    (b"a LOGIN {3}\r\nbob {6+}\r\nsecret", c.Login("a", "bob", "secret")),
    (b"a ENABLE UTF8=ACCEPT condstore", c.Enable("a", ("UTF8=ACCEPT", "CONDSTORE"))),
    (b"a SELECT INBOX", c.Select("a", "INBOX")),
    (b"a SELECT inbox", c.Select("a", "INBOX")),
    (b'a SELECT "Sent Items"', c.Select("a", "Sent Items")),
    (b"a EXAMINE &U,BTFw-", c.Examine("a", "\u53f0\u5317")),
    (b"a CREATE foo/bar", c.Create("a", "foo/bar")),
    (b"a CREATE Sent (USE (\\Sent))", c.Create("a", "Sent", ("\\Sent",))),
    (b"a DELETE foo", c.Delete("a", "foo")),
    (b"a RENAME INBOX Old", c.Rename("a", "INBOX", "Old")),
    (b"a SUBSCRIBE foo", c.Subscribe("a", "foo")),
    (b"a UNSUBSCRIBE foo", c.Unsubscribe("a", "foo")),
    (b'a LIST "" *', c.List("a", "", ("*",))),
    (b'a LIST "" %/]x', c.List("a", "", ("%/]x",))),
    (b"a LIST ~/ %", c.List("a", "~/", ("%",))),
    (b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("*" INBOX)',
     c.List("a", "", ("*", "INBOX"), ("SUBSCRIBED", "RECURSIVEMATCH"))),
    (b'a LIST "" % RETURN (CHILDREN SPECIAL-USE)',
     c.List("a", "", ("%",), (), ("CHILDREN", "SPECIAL-USE"))),
    (b'a LIST "" % RETURN (STATUS (MESSAGES UNSEEN SIZE) CHILDREN)',
     c.List("a", "", ("%",), (), ("CHILDREN",), ("MESSAGES", "UNSEEN", "SIZE"))),
    (b'a LIST () "" % RETURN ()', c.List("a", "", ("%",))),
    (b'a LSUB "" *', c.Lsub("a", "", "*")),
    (b"a NAMESPACE", c.Namespace("a")),
    (b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED)",
     c.Status("a", "INBOX", ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE",
                            "DELETED"))),
    (b"a IDLE", c.Idle("a")),
    (b"a CHECK", c.Check("a")),
    (b"a CLOSE", c.Close("a")),
    (b"a UNSELECT", c.Unselect("a")),
    (b"a EXPUNGE", c.Expunge("a")),
    (b"a UID EXPUNGE 3:5,9", c.Expunge("a", SequenceSet(((3, 5), (9, 9))))),
    (b"a SEARCH ALL", c.Search("a", s.FlagKey("ALL"))),
    (b"a UID SEARCH unseen", c.Search("a", s.FlagKey("UNSEEN"), uid=True)),
    (b"a SEARCH CHARSET utf-8 SUBJECT {3}\r\n\xc3\xa9t",
     c.Search("a", s.TextKey("SUBJECT", "\u00e9t"), charset="UTF-8")),
    (b"a SEARCH RETURN (MIN MAX COUNT ALL SAVE) 1:*",
     c.Search("a", s.SetKey(ALL_SEQ), return_options=("MIN", "MAX", "COUNT", "ALL", "SAVE"))),
    (b"a SEARCH RETURN () FLAGGED", c.Search("a", s.FlagKey("FLAGGED"), return_options=())),
    (b"a SEARCH CHARSET KOI8-R TEXT {2}\r\n\xf0\xd2",
     c.Search("a", s.TextKey("TEXT", "\xf0\xd2"), charset="KOI8-R")),  # session: BADCHARSET
    (b"a SEARCH $", c.Search("a", s.SetKey(SequenceSet((), saved=True)))),
    (b'a SEARCH OR FROM "a b" NOT TO c (SEEN UNDELETED)',
     c.Search("a", s.And((
         s.Or(s.TextKey("FROM", "a b"), s.Not(s.TextKey("TO", "c"))),
         s.And((s.FlagKey("SEEN"), s.FlagKey("UNDELETED"))))))),
    (b"a SEARCH ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED "
     b"UNDRAFT UNFLAGGED UNSEEN",
     c.Search("a", s.And(tuple(s.FlagKey(k) for k in (
         "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
         "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN"))))),
    (b"a SEARCH BCC x BODY y CC z TEXT t",
     c.Search("a", s.And((s.TextKey("BCC", "x"), s.TextKey("BODY", "y"),
                          s.TextKey("CC", "z"), s.TextKey("TEXT", "t"))))),
    (b'a SEARCH BEFORE 1-Feb-2024 ON "15-mar-2023" SINCE 01-Jan-2000',
     c.Search("a", s.And((s.DateKey("BEFORE", datetime.date(2024, 2, 1)),
                          s.DateKey("ON", datetime.date(2023, 3, 15)),
                          s.DateKey("SINCE", datetime.date(2000, 1, 1)))))),
    (b"a SEARCH SENTBEFORE 1-Feb-2024 SENTON 1-Feb-2024 SENTSINCE 1-Feb-2024",
     c.Search("a", s.And(tuple(s.DateKey(k, datetime.date(2024, 2, 1))
                              for k in ("SENTBEFORE", "SENTON", "SENTSINCE"))))),
    (b"a SEARCH HEADER List-Id foo KEYWORD $Junk UNKEYWORD work",
     c.Search("a", s.And((s.HeaderKey("List-Id", "foo"), s.KeywordKey("$Junk"),
                          s.KeywordKey("work", negated=True))))),
    (b"a SEARCH LARGER 100 SMALLER 5000 UID 1:* 2,4",
     c.Search("a", s.And((s.SizeKey(True, 100), s.SizeKey(False, 5000),
                          s.SetKey(ALL_SEQ, uid=True), s.SetKey(SequenceSet(((2, 2), (4, 4)))))))),
    (b"a SEARCH SUBJECT \"\"", c.Search("a", s.TextKey("SUBJECT", ""))),
    (b"a FETCH 1 ALL", c.Fetch("a", S1, tuple(c.FetchAttr(n) for n in (
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")), macro="ALL")),
    (b"a FETCH 1 fast", c.Fetch("a", S1, tuple(c.FetchAttr(n) for n in (
        "FLAGS", "INTERNALDATE", "RFC822.SIZE")), macro="FAST")),
    (b"a FETCH 1 FULL", c.Fetch("a", S1, tuple(c.FetchAttr(n) for n in (
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")), macro="FULL")),
    (b"a FETCH 1:* FLAGS", c.Fetch("a", ALL_SEQ, (c.FetchAttr("FLAGS"),))),
    (b"a FETCH 1 (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT "
     b"BODY BODYSTRUCTURE UID)",
     c.Fetch("a", S1, tuple(c.FetchAttr(n) for n in (
         "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
         "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID")))),
    (b"a FETCH 1 BODY[]", c.Fetch("a", S1, (c.FetchBody(c.Section()),))),
    (b"a FETCH 1 (BODY.PEEK[HEADER] BODY[TEXT]<0.100>)",
     c.Fetch("a", S1, (c.FetchBody(c.Section(text="HEADER"), peek=True),
                       c.FetchBody(c.Section(text="TEXT"), partial=(0, 100))))),
    (b"a FETCH 1 BODY.PEEK[HEADER.FIELDS (From \"To\" subject)]",
     c.Fetch("a", S1, (c.FetchBody(
         c.Section(text="HEADER.FIELDS", fields=("FROM", "TO", "SUBJECT")), peek=True),))),
    (b"a FETCH 1 BODY[1.2.HEADER.FIELDS.NOT (Received)]",
     c.Fetch("a", S1, (c.FetchBody(
         c.Section((1, 2), "HEADER.FIELDS.NOT", ("RECEIVED",))),))),
    (b"a FETCH 1 (BODY[1.2] BODY[3.MIME] BODY[4.1.TEXT]<10.5>)",
     c.Fetch("a", S1, (c.FetchBody(c.Section((1, 2))), c.FetchBody(c.Section((3,), "MIME")),
                       c.FetchBody(c.Section((4, 1), "TEXT"), partial=(10, 5))))),
    (b"a FETCH 1 (BINARY[1] BINARY.PEEK[2.1]<0.10> BINARY.SIZE[1] BINARY[])",
     c.Fetch("a", S1, (c.FetchBinary((1,)), c.FetchBinary((2, 1), peek=True, partial=(0, 10)),
                       c.FetchBinary((1,), size=True), c.FetchBinary(())))),
    (b"a UID FETCH 1:* (FLAGS)", c.Fetch("a", ALL_SEQ, (c.FetchAttr("FLAGS"),), uid=True)),
    (b"a STORE 1 FLAGS (\\Seen)", c.Store("a", S1, "", False, ("\\Seen",))),
    (b"a STORE 1 +FLAGS.SILENT (\\seen \\DELETED $Forwarded)",
     c.Store("a", S1, "+", True, ("\\Seen", "\\Deleted", "$Forwarded"))),
    (b"a STORE 1 -flags \\Flagged work", c.Store("a", S1, "-", False, ("\\Flagged", "work"))),
    (b"a STORE 1 FLAGS ()", c.Store("a", S1, "", False, ())),
    (b"a UID STORE 1:* +FLAGS (\\Answered)",
     c.Store("a", ALL_SEQ, "+", False, ("\\Answered",), uid=True)),
    (b"a COPY 1 Trash", c.Copy("a", S1, "Trash")),
    (b"a UID COPY 1:* \"Sent Items\"", c.Copy("a", ALL_SEQ, "Sent Items", uid=True)),
    (b"a MOVE 1 Trash", c.Move("a", S1, "Trash")),
    (b"a UID MOVE 1 inbox", c.Move("a", S1, "INBOX", uid=True)),
    (b"a ID NIL", c.Id("a", None)),
    (b'a ID ("name" "Thunderbird" "version" NIL)',
     c.Id("a", (("name", "Thunderbird"), ("version", None)))),
    (b"a ID ()", c.Id("a", ())),
]


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
@pytest.mark.parametrize(("wire", "expected"), TABLE, ids=[w[:40].decode("latin-1")
                                                           for w, _ in TABLE])
def test_command_table(wire: bytes, expected: c.Command, mode: str) -> None:
    assert commands_of(wire + b"\r\n", mode) == [expected]


def test_every_command_class_appears_in_the_table() -> None:
    seen = {type(cmd) for _, cmd in TABLE}
    # Append is streamed, so it is covered by test_imap_parser.py rather than by this table.
    assert seen | {c.Append} >= set(get_args(c.Command))


BAD = [
    b"a",  # no command
    b"a FOO",
    b"a NOOP x",
    b"a SELECT",
    b"a SELECT a b",
    b"a SELECT &Jjo",  # unterminated modified UTF-7
    b"a SELECT &AGE-",  # printable ASCII in base64: not canonical
    b"a SELECT caf\xc3\xa9",  # 8-bit without UTF8=ACCEPT
    b"a LOGIN bob",
    b"a FETCH 0 FLAGS",
    b"a FETCH 1 (FLAGS",
    b"a FETCH 1 (NOSUCH)",
    b"a FETCH 1 BODY[FOO]",
    b"a FETCH 1 BODY[MIME]",  # MIME needs a part number
    b"a FETCH 1 BODY[]<0.0>",
    b"a FETCH 1 ALL FLAGS",
    b"a STORE 1 FLAGS (\\*)",
    b"a STORE 1 +FLAGGED (x)",
    b"a SEARCH",
    b"a SEARCH NOSUCH",
    b"a SEARCH BEFORE 31-Feb-2024",
    b"a SEARCH BEFORE 1-Foo-2024",
    b"a SEARCH OR SEEN",
    b"a SEARCH RETURN (BOGUS) ALL",
    b"a STATUS INBOX (BOGUS)",
    b"a STATUS INBOX ()",
    b"a LIST \"\" % RETURN (STATUS ())",
    b"a ENABLE",
    b"a AUTHENTICATE PLAIN !!!",
    b"a UID NOOP",
    b"a COPY 1:x Trash",
    b"a ID (\"a\")",
    b"a APPEND INBOX",
    b"a LOGIN {3}\r\nb\x00b pw",  # NUL is not CHAR8
    b"a LOGIN \"bob\x00\" x",  # RFC 9051 9: NUL is not a CHAR
    b"a SEARCH CHARSET UTF-8 SUBJECT {4}\r\n\xc3\xa9t\xc3",  # not UTF-8
    b'a SELECT "caf\xc3\xa9"',  # a quoted 8-bit name before UTF8=ACCEPT: not modified UTF-7
    b'a LOGIN bob "caf\xe9"',  # 8-bit but not UTF-8
    b"a STORE 1 +FLAGS (\\Foo)",  # a flag-extension no standard defines
    b"a UID STORE 1 FLAGS \\Important",
]


@pytest.mark.parametrize("wire", BAD, ids=[w.decode("latin-1") for w in BAD])
def test_malformed_commands_answer_bad_with_their_tag(wire: bytes) -> None:
    for mode in ("whole", "bytewise", "trailing"):
        events = commands_of(wire + b"\r\n", mode)
        assert len(events) == 1
        assert isinstance(events[0], SyntaxErr), events
        assert events[0].tag == "a"


@pytest.mark.parametrize("wire", [b"", b" NOOP", b"a+b NOOP", b"(x) NOOP", b"\xff NOOP"])
def test_missing_or_invalid_tag_answers_untagged_bad(wire: bytes) -> None:
    events = feed(ImapParser(), wire + b"\r\n")
    assert events in ([], [SyntaxErr(None, "missing or invalid tag")])
    assert events or wire == b""


def test_utf8_mailbox_names_after_enable() -> None:
    p = ImapParser()
    p.enable_utf8()
    assert feed(p, "a SELECT \"Caf\u00e9\"\r\n".encode()) == [c.Select("a", "Caf\u00e9")]
    # Atoms stay ASCII even then (RFC 9051 9): 8-bit names must be quoted or literals.
    assert isinstance(feed(p, "a SELECT Caf\u00e9\r\n".encode())[0], SyntaxErr)


def test_utf8_in_quoted_strings_without_enable() -> None:
    """RFC 9051 9: QUOTED-CHAR includes UTF-8, so a UTF-8 password may come quoted."""
    assert feed(ImapParser(), 'a LOGIN bob "p\u00e4ss w\u00f6rd"\r\n'.encode()) == [
        c.Login("a", "bob", "p\u00e4ss w\u00f6rd")]


def test_append_date_time_with_space_padded_day() -> None:
    p = ImapParser()
    events = feed(p, b'a APPEND INBOX " 5-Jan-2024 23:59:59 -0800" {1+}\r\nx\r\n')
    head = events[0]
    assert isinstance(head, c.Append)
    tz = datetime.timezone(-datetime.timedelta(hours=8))
    assert head.internal_date == datetime.datetime(2024, 1, 5, 23, 59, 59, tzinfo=tz)


def test_password_is_not_in_repr() -> None:
    assert "secret" not in repr(c.Login("a", "bob", "secret"))
    assert "AGJ" not in repr(c.Authenticate("a", "PLAIN", b"AGJvYgBwdw"))
