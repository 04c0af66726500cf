"""Server response rendering (RFC 3501 7, RFC 9051 7): tables of (call, expected wire)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailwright.imap import responses as r

TAGGED = [
    (lambda: r.tagged("a1", "OK", "LOGIN completed"), b"a1 OK LOGIN completed\r\n"),
    (lambda: r.tagged("a2", "NO", "no such mailbox", r.TRYCREATE),
     b"a2 NO [TRYCREATE] no such mailbox\r\n"),
    (lambda: r.tagged("a3", "BAD", "line\r\nbreak"), b"a3 BAD line  break\r\n"),
    (lambda: r.tagged("a4", "OK", ""), b"a4 OK done\r\n"),
    (lambda: r.tagged("a5", "OK", "SELECT completed", r.READ_WRITE),
     b"a5 OK [READ-WRITE] SELECT completed\r\n"),
    (lambda: r.tagged("a6", "OK", "EXAMINE completed", r.READ_ONLY),
     b"a6 OK [READ-ONLY] EXAMINE completed\r\n"),
    (lambda: r.tagged("a7", "OK", "APPEND completed", r.code_appenduid(38505, 3955)),
     b"a7 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
    (lambda: r.tagged("a8", "OK", "done", r.code_copyuid(38505, [304, 319, 320],
                                                         [3956, 3957, 3958])),
     b"a8 OK [COPYUID 38505 304,319:320 3956:3958] done\r\n"),
    (lambda: r.tagged("a9", "NO", "too big", r.TOOBIG), b"a9 NO [TOOBIG] too big\r\n"),
    (lambda: r.tagged("b1", "NO", "x", r.NONEXISTENT), b"b1 NO [NONEXISTENT] x\r\n"),
    (lambda: r.tagged("b2", "NO", "x", r.ALREADYEXISTS), b"b2 NO [ALREADYEXISTS] x\r\n"),
    (lambda: r.tagged("b3", "NO", "x", r.CANNOT), b"b3 NO [CANNOT] x\r\n"),
    (lambda: r.tagged("b4", "NO", "x", r.AUTHENTICATIONFAILED),
     b"b4 NO [AUTHENTICATIONFAILED] x\r\n"),
    (lambda: r.tagged("b5", "NO", "x", r.SERVERBUG), b"b5 NO [SERVERBUG] x\r\n"),
    (lambda: r.tagged("b6", "NO", "x", r.UNAVAILABLE), b"b6 NO [UNAVAILABLE] x\r\n"),
    (lambda: r.tagged("b7", "NO", "x", r.LIMIT), b"b7 NO [LIMIT] x\r\n"),
    (lambda: r.tagged("b8", "NO", "x", r.UNKNOWN_CTE), b"b8 NO [UNKNOWN-CTE] x\r\n"),
    (lambda: r.tagged("b9", "OK", "x", r.code_capability(["IMAP4rev1", "IMAP4rev2", "IDLE"])),
     b"b9 OK [CAPABILITY IMAP4rev1 IMAP4rev2 IDLE] x\r\n"),
    (lambda: r.tagged("c1", "OK", "caf\u00e9"), b"c1 OK caf?\r\n"),
    (lambda: r.tagged("c2", "OK", "caf\u00e9", utf8=True), "c2 OK caf\u00e9\r\n".encode()),
]

UNTAGGED = [
    (lambda: r.untagged_status("OK", "UIDs valid", r.code_uidvalidity(3857529045)),
     b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
    (lambda: r.untagged_status("OK", "Predicted next UID", r.code_uidnext(4392)),
     b"* OK [UIDNEXT 4392] Predicted next UID\r\n"),
    (lambda: r.untagged_status("OK", "Limited", r.code_permanentflags(["\\Deleted", "\\Seen"])),
     b"* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] Limited\r\n"),
    (lambda: r.untagged_status("OK", "x", r.code_permanentflags([], new_keywords=False)),
     b"* OK [PERMANENTFLAGS ()] x\r\n"),
    (lambda: r.untagged_status("OK", "x", r.code_permanentflags([])),
     b"* OK [PERMANENTFLAGS (\\*)] x\r\n"),
    (lambda: r.untagged_status("OK", "x", r.code_highestmodseq(715194045007)),
     b"* OK [HIGHESTMODSEQ 715194045007] x\r\n"),
    (lambda: r.untagged_status("OK", "previous mailbox closed", r.CLOSED),
     b"* OK [CLOSED] previous mailbox closed\r\n"),
    (lambda: r.untagged_status("OK", "x", r.code_unseen(12)), b"* OK [UNSEEN 12] x\r\n"),
    (lambda: r.untagged_status("NO", "disk nearly full", r.ALERT),
     b"* NO [ALERT] disk nearly full\r\n"),
    (lambda: r.untagged_status("BYE", "logging out"), b"* BYE logging out\r\n"),
    (lambda: r.untagged_status("PREAUTH", "hi"), b"* PREAUTH hi\r\n"),
    (lambda: r.exists(172), b"* 172 EXISTS\r\n"),
    (lambda: r.recent(1), b"* 1 RECENT\r\n"),
    (lambda: r.expunge(44), b"* 44 EXPUNGE\r\n"),
    (lambda: r.flags(["$Junk", "\\Draft", "\\Seen", "\\Answered", "\\Flagged", "\\Deleted"]),
     b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk)\r\n"),
    (lambda: r.capability(["IMAP4rev1", "IMAP4rev2", "AUTH=PLAIN"]),
     b"* CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN\r\n"),
    (lambda: r.enabled(["UTF8=ACCEPT"]), b"* ENABLED UTF8=ACCEPT\r\n"),
    (lambda: r.enabled([]), b"* ENABLED\r\n"),
    (lambda: r.list_(["\\HasNoChildren"], "INBOX"), b'* LIST (\\HasNoChildren) "/" INBOX\r\n'),
    (lambda: r.list_(["\\Noselect"], "", None), b'* LIST (\\Noselect) NIL ""\r\n'),
    (lambda: r.list_([], "Entw\u00fcrfe"), b'* LIST () "/" Entw&APw-rfe\r\n'),
    (lambda: r.list_([], "Entw\u00fcrfe", utf8=True),
     '* LIST () "/" "Entw\u00fcrfe"\r\n'.encode()),
    (lambda: r.list_([], "My Mail"), b'* LIST () "/" "My Mail"\r\n'),
    (lambda: r.list_([], 'a"b\\c'), b'* LIST () "/" "a\\"b\\\\c"\r\n'),
    (lambda: r.list_([], "a%b*"), b'* LIST () "/" "a%b*"\r\n'),
    (lambda: r.list_([], "a\nb", utf8=True), b'* LIST () "/" {3}\r\na\nb\r\n'),
    (lambda: r.list_(["\\Sent"], "Sent", extended=b'("CHILDINFO" ("SUBSCRIBED"))'),
     b'* LIST (\\Sent) "/" Sent ("CHILDINFO" ("SUBSCRIBED"))\r\n'),
    (lambda: r.list_([], "New", extended=r.list_oldname("Old")),
     b'* LIST () "/" New ("OLDNAME" (Old))\r\n'),
    (lambda: r.list_([], "INBOX", verb="LSUB"), b'* LSUB () "/" INBOX\r\n'),
    (lambda: r.status("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)]),
     b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"),
    (lambda: r.status("a b", []), b'* STATUS "a b" ()\r\n'),
    (lambda: r.search([2, 3, 6]), b"* SEARCH 2 3 6\r\n"),
    (lambda: r.search([]), b"* SEARCH\r\n"),
    (lambda: r.search([2], modseq=917162500), b"* SEARCH 2 (MODSEQ 917162500)\r\n"),
    (lambda: r.esearch("A282", uid=False, min_=2, count=3),
     b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'),
    (lambda: r.esearch("A283", uid=True, all_=[2, 10, 11]),
     b'* ESEARCH (TAG "A283") UID ALL 2,10:11\r\n'),
    (lambda: r.esearch("A284", uid=True, all_=[]), b'* ESEARCH (TAG "A284") UID\r\n'),
    (lambda: r.esearch("A285", uid=False, min_=1, max_=9, count=5, all_=[1, 2, 3, 7, 9]),
     b'* ESEARCH (TAG "A285") MIN 1 MAX 9 COUNT 5 ALL 1:3,7,9\r\n'),
    (lambda: r.esearch(None, uid=False, count=0), b"* ESEARCH COUNT 0\r\n"),
    (lambda: r.namespace(), b'* NAMESPACE (("" "/")) NIL NIL\r\n'),
    (lambda: r.namespace(other=[("~", "/")], shared=[("#shared/", "/")]),
     b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/"))\r\n'),
    (lambda: r.id_([("name", "mailwright"), ("version", None)]),
     b'* ID ("name" "mailwright" "version" NIL)\r\n'),
    (lambda: r.id_(None), b"* ID NIL\r\n"),
    (lambda: r.continuation("Ready for literal data"), b"+ Ready for literal data\r\n"),
    (lambda: r.continuation(), b"+ \r\n"),
    (lambda: r.continuation(data=b"dGVzdA=="), b"+ dGVzdA==\r\n"),
    (lambda: r.fetch(12, b"FLAGS (\\Seen)"), b"* 12 FETCH (FLAGS (\\Seen))\r\n"),
    (lambda: r.vanished([41, 42, 43, 45], earlier=True), b"* VANISHED (EARLIER) 41:43,45\r\n"),
]


@pytest.mark.parametrize(("make", "wire"), TAGGED + UNTAGGED)
def test_response_renders_as_the_rfc_shows(make: Callable[[], bytes], wire: bytes) -> None:
    assert make() == wire


@pytest.mark.parametrize(
    ("value", "utf8", "wire"),
    [
        ("INBOX", False, b"INBOX"),
        ("a]b", False, b"a]b"),  # "]" is an ASTRING-CHAR
        ("", False, b'""'),
        ("two words", False, b'"two words"'),
        ("a(b", False, b'"a(b"'),
        ("caf\u00e9", False, b"{5}\r\ncaf\xc3\xa9"),
        ("caf\u00e9", True, b'"caf\xc3\xa9"'),
        ("cr\rlf", True, b"{5}\r\ncr\rlf"),
        ("x " * 513, False, b"{1026}\r\n" + b"x " * 513),
    ],
)
def test_astring_is_atom_quoted_or_literal(value: str | bytes, utf8: bool, wire: bytes) -> None:
    assert r.astring(value, utf8) == wire


def test_string_is_never_an_atom() -> None:
    assert r.string("INBOX") == b'"INBOX"'
    assert r.nstring(None) == b"NIL"
    assert r.nstring("") == b'""'


def test_quoted_string_escapes_backslash_and_quote() -> None:
    assert r.quoted('say "hi" \\o/') == b'"say \\"hi\\" \\\\o/"'


def test_literal_and_literal8() -> None:
    assert r.literal(b"ab\r\n") == b"{4}\r\nab\r\n"
    assert r.literal(b"\x00\x01", binary=True) == b"~{2}\r\n\x00\x01"


def test_mailbox_name_is_modified_utf7_unless_utf8_accept() -> None:
    name = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"
    assert r.mailbox(name) == b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert r.mailbox(name, utf8=True) == b'"' + name.encode() + b'"'
    assert r.mailbox("A&B") == b"A&-B"


@pytest.mark.parametrize(
    ("numbers", "wire"),
    [
        ([], b""),
        ([1], b"1"),
        ([1, 2, 3, 5, 7, 8, 9], b"1:3,5,7:9"),
        ([5, 1, 2], b"5,1:2"),  # order kept: COPYUID sets correspond number by number
        ([4, 4], b"4,4"),
        ([4294967294, 4294967295], b"4294967294:4294967295"),
    ],
)
def test_sequence_set_compresses_ascending_runs(numbers: list[int], wire: bytes) -> None:
    assert r.sequence_set(numbers) == wire


def test_copyuid_refuses_sets_of_different_sizes() -> None:
    with pytest.raises(ValueError, match="as many"):
        r.code_copyuid(1, [1, 2], [3])


def test_text_never_splits_a_response() -> None:
    wire = r.tagged("t", "NO", "evil\r\n* 1 EXISTS\r\n\x00")
    assert wire.count(b"\r\n") == 1
    assert wire.endswith(b"\r\n")
    assert b"\x00" not in wire
