"""SEARCH over the wire (RFC 9051 6.4.4, RFC 3501 6.4.4): every key kind, CHARSET, ESEARCH
(RFC 4731), SEARCHRES (RFC 5182) and UID SEARCH, with imaplib and a raw client."""

from __future__ import annotations

import imaplib

import pytest
from imap_wire import (
    ImapEnv,
    RawImap,
    cheap_hashing,  # noqa: F401 (autouse fixture)
    raw_client,
)


def _msg(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode() + b"\r\n" + body


ALICE_TO = "To: alice@example.test\n"
MESSAGES: list[tuple[bytes, str, str]] = [  # (raw, flags, internal date)
    (_msg("From: Bob <bob@example.test>\n" + ALICE_TO + "Subject: Quarterly report\n"
          "Date: Mon, 01 Jan 2024 10:00:00 +0000\nMessage-ID: <s1@example.test>\n",
          b"The budget is attached.\r\n"),
     "(\\Seen \\Flagged)", '"05-Jan-2024 12:00:00 +0000"'),
    (_msg("From: Carol <carol@example.test>\n" + ALICE_TO + "Cc: Dave <dave@example.test>\n"
          "Subject: =?utf-8?q?Caf=C3=A9_meeting?=\nDate: Fri, 15 Mar 2024 09:00:00 +0100\n"
          "Message-ID: <s2@example.test>\nMIME-Version: 1.0\n"
          "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n",
          "Rendez-vous at the Straße café, a naïve plan.\r\n".encode()),
     "(\\Answered $Forwarded)", '"15-Mar-2024 12:00:00 +0000"'),
    (_msg("From: Bob <bob@example.test>\n" + ALICE_TO + "Bcc: Eve <eve@example.test>\n"
          "Subject: Lunch\nDate: Tue, 02 Apr 2024 12:00:00 +0000\n"
          "Message-ID: <s3@example.test>\n",
          b"lorem ipsum dolor sit amet\r\n" * 200),
     "(\\Deleted Project-X)", '"02-Apr-2024 12:00:00 +0000"'),
    (_msg("From: Frank <frank@example.test>\n" + ALICE_TO + "Subject: Newsletter\n"
          "Date: Wed, 01 May 2024 08:00:00 +0000\nMessage-ID: <s4@example.test>\n"
          "X-Priority: 1\nMIME-Version: 1.0\n"
          'Content-Type: multipart/alternative; boundary="b"\n',
          b"--b\r\nContent-Type: text/plain\r\n\r\nPlain version with KIWI fruit\r\n"
          b"--b\r\nContent-Type: text/html\r\n\r\n<p>Html <b>mango</b> version</p>\r\n--b--\r\n"),
     "()", '"01-May-2024 12:00:00 +0000"'),
    (_msg("From: Alice <alice@example.test>\nTo: Bob <bob@example.test>\n"
          "Subject: Re: Quarterly report\nDate: Thu, 02 May 2024 18:00:00 +0000\n"
          "Message-ID: <s5@example.test>\n",
          b"Draft reply\r\n"),
     "(\\Draft \\Seen)", '"02-May-2024 12:00:00 +0000"'),
]
SIZES = [len(raw) for raw, _, _ in MESSAGES]


@pytest.fixture
def box(imap: ImapEnv) -> imaplib.IMAP4:
    """imaplib, logged in, with MESSAGES appended to INBOX (UIDs 1-5) and INBOX selected."""
    c = imap.client()
    for raw, flags, date in MESSAGES:
        assert c.append("INBOX", flags, date, raw)[0] == "OK"
    c.select("INBOX")
    return c


def search(c: imaplib.IMAP4, *criteria: str, charset: str | None = None,
           uid: bool = False) -> list[int]:
    typ, data = c.uid("SEARCH", *criteria) if uid else c.search(charset, *criteria)
    assert typ == "OK", (criteria, data)
    return [int(n) for n in data[-1].split()]


CASES: list[tuple[str, list[int]]] = [
    # flags and keywords
    ("ALL", [1, 2, 3, 4, 5]),
    ("SEEN", [1, 5]), ("UNSEEN", [2, 3, 4]),
    ("ANSWERED", [2]), ("UNANSWERED", [1, 3, 4, 5]),
    ("DELETED", [3]), ("UNDELETED", [1, 2, 4, 5]),
    ("DRAFT", [5]), ("UNDRAFT", [1, 2, 3, 4]),
    ("FLAGGED", [1]), ("UNFLAGGED", [2, 3, 4, 5]),
    ("KEYWORD $Forwarded", [2]), ("UNKEYWORD $Forwarded", [1, 3, 4, 5]),
    ("KEYWORD Project-X", [3]), ("KEYWORD $Junk", []),
    ("NEW", []), ("RECENT", []), ("OLD", [1, 2, 3, 4, 5]),  # no \Recent is kept
    # header keys: case-insensitive substrings of the decoded field
    ("FROM bob", [1, 3]), ('FROM "BOB@EXAMPLE.TEST"', [1, 3]), ("FROM Carol", [2]),
    ("TO alice", [1, 2, 3, 4]), ("TO bob", [5]),
    ("CC dave", [2]), ("BCC eve", [3]), ("CC nobody", []),
    ("SUBJECT quarterly", [1, 5]), ('SUBJECT "re: q"', [5]), ("SUBJECT meeting", [2]),
    ("HEADER X-Priority 1", [4]), ('HEADER X-Priority ""', [4]),
    ('HEADER Message-ID "<s3@"', [3]), ('HEADER X-Missing ""', []),
    # full text: substrings, case-insensitive, text parts decoded (HTML too)
    ("BODY budget", [1]), ("BODY BUDGET", [1]), ("BODY udge", [1]),
    ("BODY quarterly", []), ("TEXT quarterly", [1, 5]), ('TEXT "carol@example"', [2]),
    ("BODY kiwi", [4]), ("BODY mango", [4]), ("TEXT ipsum", [3]), ("BODY zzyzx", []),
    ('BODY "attached."', [1]), ("TEXT x-priority", [4]),
    # dates: internal date (BEFORE ON SINCE) and Date: header (SENT*)
    ("BEFORE 15-Mar-2024", [1]), ("ON 15-Mar-2024", [2]), ("SINCE 15-Mar-2024", [2, 3, 4, 5]),
    ('SINCE "2-May-2024"', [5]), ("BEFORE 1-Jan-2024", []),
    ("SENTBEFORE 2-Jan-2024", [1]), ("SENTON 15-Mar-2024", [2]),
    ("SENTSINCE 1-May-2024", [4, 5]), ("SENTON 2-Apr-2024", [3]),
    # sizes
    (f"LARGER {SIZES[2] - 1}", [3]), (f"LARGER {SIZES[2]}", []),
    (f"SMALLER {min(SIZES) + 1}", [i + 1 for i, n in enumerate(SIZES) if n == min(SIZES)]),
    # sets
    ("2:3", [2, 3]), ("*", [5]), ("4:2", [2, 3, 4]), ("1,5", [1, 5]), ("UID 2,4", [2, 4]),
    ("UID 4:*", [4, 5]), ("1:2 UID 2:*", [2]), ("6:9", []),
    # NOT, OR and parentheses
    ("NOT SEEN", [2, 3, 4]), ("OR SEEN DRAFT", [1, 5]),
    ("OR (FROM bob SUBJECT lunch) FLAGGED", [1, 3]), ("NOT (OR SEEN DELETED)", [2, 4]),
    ("(SEEN) FLAGGED", [1]), ("OR NOT SEEN (DRAFT SEEN)", [2, 3, 4, 5]),
    ("((FROM bob))", [1, 3]), ("NOT NOT FLAGGED", [1]), ("OR OR DRAFT FLAGGED ANSWERED", [1, 2, 5]),
    ("FROM bob NOT KEYWORD Project-X SINCE 1-Jan-2024", [1]),
]


def test_every_search_key(box: imaplib.IMAP4) -> None:
    for criteria, want in CASES:
        assert search(box, criteria) == want, criteria
    box.logout()


def test_uid_search_answers_uids(box: imaplib.IMAP4) -> None:
    box.store("3", "+FLAGS", "(\\Deleted)")
    box.expunge()
    assert search(box, "ALL") == [1, 2, 3, 4]
    assert search(box, "ALL", uid=True) == [1, 2, 4, 5]
    assert search(box, "FROM", "bob", uid=True) == [1]
    assert search(box, "UID", "4:*", uid=True) == [4, 5]
    assert search(box, "3:4", uid=True) == [4, 5]  # a sequence set is still sequence numbers
    assert search(box, "UID", "4:*") == [3, 4]
    box.logout()


def test_charset_utf8_with_literals(box: imaplib.IMAP4) -> None:
    for key, needle, want in [("SUBJECT", "café", [2]), ("SUBJECT", "CAFÉ", [2]),
                              ("BODY", "straße", [2]), ("TEXT", "NAÏVE", [2]),
                              ("BODY", "naïve plan", [2]), ("FROM", "café", [])]:
        box.literal = needle.encode()  # imaplib sends it as a synchronizing literal
        assert search(box, key, charset="UTF-8") == want, (key, needle)
    assert search(box, "BODY", "budget", charset="utf-8") == [1]
    assert search(box, "BODY", "budget", charset="US-ASCII") == [1]
    box.logout()


def test_charset_utf8_with_literal_plus(imap: ImapEnv, box: imaplib.IMAP4) -> None:
    with raw_client(imap) as c:
        needle = "Straße café".encode()
        untagged, tagged = c.command(b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n%s"
                                     % (len(needle), needle))
        assert tagged.split(b" ")[1] == b"OK"
        assert untagged == [b"* SEARCH 2\r\n"]
        # A UTF-8 quoted string works too (RFC 9051 9: QUOTED-CHAR includes UTF8-2/3/4).
        assert c.ok('SEARCH SUBJECT "caf\xc3\xa9"'.encode("latin-1")) == [b"* SEARCH 2\r\n"]
    box.logout()


def test_unknown_charset_is_badcharset(imap: ImapEnv, box: imaplib.IMAP4) -> None:
    with raw_client(imap) as c:
        untagged, tagged = c.command("SEARCH CHARSET KOI8-R SUBJECT x")
        assert untagged == []
        assert tagged.startswith(b"r3 NO [BADCHARSET (")
        assert b"UTF-8" in tagged.split(b")")[0]
        c.ok("NOOP")  # the connection is still fine
    box.logout()


def _esearch(resp: bytes) -> dict[bytes, bytes]:
    words = resp.rstrip(b"\r\n").split(b" ")
    assert words[:2] == [b"*", b"ESEARCH"]
    words = words[2:]
    out: dict[bytes, bytes] = {}
    if words[0] == b"(TAG":
        out[b"TAG"] = words[1].rstrip(b")")
        words = words[2:]
    if words and words[0] == b"UID":
        out[b"UID"] = b""
        words = words[1:]
    for name, value in zip(words[::2], words[1::2], strict=True):
        out[name] = value
    return out


def test_esearch_return_options(imap: ImapEnv, box: imaplib.IMAP4) -> None:
    with raw_client(imap) as c:
        tag = c.send("SEARCH RETURN (MIN MAX COUNT ALL) OR FLAGGED KEYWORD Project-X")
        untagged, _ = c.finish(tag)
        assert [_esearch(r) for r in untagged] == [{b"TAG": b'"%s"' % tag.encode(),
                                                    b"MIN": b"1", b"MAX": b"3",
                                                    b"COUNT": b"2", b"ALL": b"1,3"}]
        (resp,) = c.ok("SEARCH RETURN () UNFLAGGED")  # () is ALL (RFC 4731 3.1)
        assert _esearch(resp)[b"ALL"] == b"2:5"
        assert set(_esearch(resp)) == {b"TAG", b"ALL"}
        (resp,) = c.ok("SEARCH RETURN (COUNT) ALL")
        assert set(_esearch(resp)) == {b"TAG", b"COUNT"}
        assert _esearch(resp)[b"COUNT"] == b"5"
        # No match: MIN, MAX and ALL are left out, COUNT is 0.
        (resp,) = c.ok("SEARCH RETURN (MIN MAX ALL COUNT) KEYWORD nothing")
        assert set(_esearch(resp)) == {b"TAG", b"COUNT"}
        assert _esearch(resp)[b"COUNT"] == b"0"
        (resp,) = c.ok("UID SEARCH RETURN (MIN MAX) SEEN")
        got = _esearch(resp)
        assert b"UID" in got
        assert (got[b"MIN"], got[b"MAX"]) == (b"1", b"5")
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")  # 1 and 3 (\\Deleted from the start)
        (resp,) = c.ok("UID SEARCH RETURN (ALL) ALL")
        assert _esearch(resp)[b"ALL"] == b"2,4:5"
        (resp,) = c.ok("SEARCH RETURN (ALL) ALL")
        assert _esearch(resp)[b"ALL"] == b"1:3"
    box.logout()


def test_imap4rev2_accepts_utf8_quoted_strings(imap: ImapEnv, box: imaplib.IMAP4) -> None:
    with RawImap(imap.server.host, imap.port) as c:
        c.login()
        c.ok("ENABLE IMAP4rev2")
        c.ok("SELECT INBOX")
        (resp,) = c.ok('SEARCH SUBJECT "caf\xc3\xa9"'.encode("latin-1"))
        assert _esearch(resp)[b"ALL"] == b"2"
    box.logout()


def test_imap4rev2_search_answers_esearch(imap: ImapEnv, box: imaplib.IMAP4) -> None:
    with RawImap(imap.server.host, imap.port) as c:
        c.login()
        assert c.ok("ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2\r\n"]
        c.ok("SELECT INBOX")
        (resp,) = c.ok("SEARCH SEEN")
        assert _esearch(resp)[b"ALL"] == b"1,5"
        assert c.ok("SEARCH KEYWORD nothing")[0].startswith(b"* ESEARCH (TAG ")
    box.logout()


def test_searchres_save_and_dollar(imap: ImapEnv, box: imaplib.IMAP4) -> None:
    with raw_client(imap) as c:
        # SAVE alone returns nothing (RFC 5182 2.1); "$" then names the result.
        assert c.ok("SEARCH RETURN (SAVE) FROM bob") == []
        assert c.ok("FETCH $ (UID)") == [b"* 1 FETCH (UID 1)\r\n", b"* 3 FETCH (UID 3)\r\n"]
        assert c.ok("SEARCH $") == [b"* SEARCH 1 3\r\n"]
        assert c.ok("SEARCH NOT $") == [b"* SEARCH 2 4 5\r\n"]
        assert c.ok("UID SEARCH UID $") == [b"* SEARCH 1 3\r\n"]
        c.ok("STORE $ +FLAGS.SILENT (\\Answered)")
        assert c.ok("SEARCH ANSWERED") == [b"* SEARCH 1 2 3\r\n"]
        # "$" is kept as messages, not numbers: after an expunge it still names them.
        c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        c.ok("STORE 3 -FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
        assert c.ok("UID FETCH $ (FLAGS)")[0].startswith(b"* 1 FETCH (UID 1 ")
        assert [r.split(b" ")[1] for r in c.ok("FETCH $ (UID)")] == [b"1", b"2"]
        # SAVE with MIN only keeps just that message (RFC 5182 2.1).
        (resp,) = c.ok("UID SEARCH RETURN (SAVE MIN) FROM bob")
        assert _esearch(resp)[b"MIN"] == b"1"
        assert c.ok("UID SEARCH $") == [b"* SEARCH 1\r\n"]
        (resp,) = c.ok("SEARCH RETURN (SAVE MIN MAX) ALL")
        assert (_esearch(resp)[b"MIN"], _esearch(resp)[b"MAX"]) == (b"1", b"4")
        assert c.ok("SEARCH $") == [b"* SEARCH 1 4\r\n"]
        (resp,) = c.ok("SEARCH RETURN (SAVE MIN COUNT) ALL")
        assert c.ok("SEARCH $") == [b"* SEARCH 1 2 3 4\r\n"]
        # A failed SEARCH ... RETURN (SAVE) empties "$" (RFC 5182 2.1).
        _, tagged = c.command("SEARCH RETURN (SAVE) CHARSET KOI8-R FROM bob")
        assert tagged.split(b" ")[1] == b"NO"
        assert c.ok("SEARCH $") == [b"* SEARCH\r\n"]
        assert c.ok("FETCH $ (UID)") == []
    box.logout()


def test_search_excludes_nothing_it_should_not(imap: ImapEnv) -> None:
    """An empty mailbox and one message: SEARCH answers an empty list, never an error."""
    with raw_client(imap) as c:
        assert c.ok("SEARCH ALL") == [b"* SEARCH\r\n"]
        assert c.ok("UID SEARCH ALL") == [b"* SEARCH\r\n"]
        assert c.ok("SEARCH TEXT anything") == [b"* SEARCH\r\n"]
        assert c.ok("SEARCH 1:*") == [b"* SEARCH\r\n"]
