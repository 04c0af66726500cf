"""The selected-state commands through imapclient 4.1, which parses what it reads (ENVELOPE,
BODYSTRUCTURE, INTERNALDATE, flags, response codes): what a script using it sees."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from imap_wire import (
    ALICE,
    INNER_BODY,
    NESTED,
    PART2_BODY,
    PART3_BODY,
    PART11_BODY,
    PART12_BODY,
    PASSWORD,
    ImapEnv,
    cheap_hashing,  # noqa: F401 (autouse fixture)
    message,
)
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.response_types import Address, BodyData, Envelope


@pytest.fixture
def client(imap: ImapEnv) -> Iterator[IMAPClient]:
    c = IMAPClient(imap.server.host, port=imap.port, ssl=False, timeout=10)
    c.login(ALICE, PASSWORD)
    yield c
    c.logout()


def test_select_folder_reports_the_mailbox(imap: ImapEnv, client: IMAPClient) -> None:
    imap.deliver(message(1), message(2))
    info = client.select_folder("INBOX")
    assert info[b"EXISTS"] == 2
    assert info[b"UIDNEXT"] == 3
    assert info[b"UIDVALIDITY"] > 0
    assert b"READ-WRITE" in info
    assert b"\\Seen" in info[b"FLAGS"]
    assert b"\\*" in info[b"PERMANENTFLAGS"]
    info = client.select_folder("INBOX", readonly=True)
    assert b"READ-ONLY" in info


def test_nested_bodystructure_as_imapclient_parses_it(imap: ImapEnv, client: IMAPClient) -> None:
    imap.deliver(NESTED)
    client.select_folder("INBOX")
    (uid,) = client.search()
    got = client.fetch([uid], ["BODYSTRUCTURE", "BODY"])[uid]
    bs = got[b"BODYSTRUCTURE"]
    assert isinstance(bs, BodyData)
    assert bs.is_multipart
    parts, subtype, params, disposition, language, location = bs
    assert (subtype, params, disposition, language, location) == (
        b"MIXED", (b"BOUNDARY", b"outer"), None, None, None)
    assert len(parts) == 3
    alternative, attachment, forwarded = parts

    assert alternative.is_multipart
    (plain, html), alt_subtype = alternative[0], alternative[1]
    assert alt_subtype == b"ALTERNATIVE"
    assert alternative[2] == (b"BOUNDARY", b"inner")
    assert plain[:8] == (b"TEXT", b"PLAIN", (b"CHARSET", b"utf-8"), None, None,
                         b"QUOTED-PRINTABLE", len(PART11_BODY), PART11_BODY.count(b"\n"))
    assert html[:8] == (b"TEXT", b"HTML", (b"CHARSET", b"utf-8"), None, None, b"8BIT",
                        len(PART12_BODY), 0)

    assert not attachment.is_multipart
    assert attachment[:7] == (b"APPLICATION", b"OCTET-STREAM", (b"NAME", b"data.bin"), None,
                              None, b"BASE64", len(PART2_BODY))
    # extension data: md5, disposition, language, location
    assert attachment[7:] == (None, (b"ATTACHMENT", (b"FILENAME", b"data.bin")), b"en", None)

    assert forwarded[:7] == (b"MESSAGE", b"RFC822", None, None, b"forwarded", b"7BIT",
                             len(PART3_BODY))
    envelope, inner, lines = forwarded[7], forwarded[8], forwarded[9]
    assert envelope[:2] == (b"Wed, 25 Nov 2026 08:00:00 +0000", b"Inner message")
    assert envelope[2] == ((b"Eve", None, b"eve", b"example.test"),)
    assert envelope[5] == ((b"Frank", None, b"frank", b"example.test"),)
    assert envelope[9] == b"<inner@example.test>"
    assert inner[:8] == (b"TEXT", b"PLAIN", (b"CHARSET", b"us-ascii"), None, None, b"7BIT",
                         len(INNER_BODY), INNER_BODY.count(b"\n"))
    assert lines == PART3_BODY.count(b"\n")

    body = got[b"BODY"]  # BODY: the same without extension data
    assert body.is_multipart
    assert len(body) == 2
    assert body[1] == b"MIXED"
    assert len(body[0][1]) == 7


def test_envelope_and_plain_items(imap: ImapEnv, client: IMAPClient) -> None:
    imap.deliver(NESTED)
    client.select_folder("INBOX")
    (uid,) = client.search()
    got = client.fetch([uid], ["ENVELOPE", "INTERNALDATE", "RFC822.SIZE", "FLAGS",
                               "BODY.PEEK[]"])[uid]
    env = got[b"ENVELOPE"]
    assert isinstance(env, Envelope)
    # imapclient gives the date as a naive local time
    when = datetime.datetime(2026, 11, 24, 8, 30, tzinfo=datetime.UTC)
    assert env.date == when.astimezone().replace(tzinfo=None)
    assert env.subject == b"Nested parts"
    assert env.from_ == (Address(b"Alice Sender", None, b"alice.sender", b"example.test"),)
    assert env.sender == env.from_
    assert env.reply_to == env.from_
    assert [str(a) for a in env.to] == ["Bob <bob@example.test>", "carol@example.test"]
    assert env.cc == (Address(b"Dave", None, b"dave", b"example.test"),)
    assert env.bcc is None
    assert env.in_reply_to is None
    assert env.message_id == b"<nested@example.test>"
    assert isinstance(got[b"INTERNALDATE"], datetime.datetime)
    assert got[b"RFC822.SIZE"] == len(got[b"BODY[]"])
    assert got[b"BODY[]"].endswith(NESTED)
    assert got[b"FLAGS"] == ()
    assert got[b"SEQ"] == 1


def test_sections_and_seen(imap: ImapEnv, client: IMAPClient) -> None:
    imap.deliver(NESTED, message(2))
    client.select_folder("INBOX")
    uids = client.search()
    got = client.fetch(uids[:1], ["BODY.PEEK[1.1]", "BODY.PEEK[3.HEADER.FIELDS (SUBJECT)]",
                                  "BODY.PEEK[3.TEXT]", "BODY.PEEK[2]<0.20>"])[uids[0]]
    assert got[b"BODY[1.1]"] == PART11_BODY
    assert got[b"BODY[3.HEADER.FIELDS (SUBJECT)]"] == b"Subject: Inner message\r\n\r\n"
    assert got[b"BODY[3.TEXT]"] == INNER_BODY
    assert got[b"BODY[2]<0>"] == PART2_BODY[:20]
    assert client.get_flags(uids) == {uids[0]: (), uids[1]: ()}
    got = client.fetch(uids[1:], ["BODY[TEXT]"])[uids[1]]
    assert got[b"BODY[TEXT]"] == b"Body of message 2.\r\n"
    assert got[b"FLAGS"] == (b"\\Seen",)
    assert client.get_flags(uids) == {uids[0]: (), uids[1]: (b"\\Seen",)}
    client.select_folder("INBOX", readonly=True)
    client.fetch(uids[:1], ["RFC822"])
    assert client.get_flags(uids[:1]) == {uids[0]: ()}


def test_search_forms(imap: ImapEnv, client: IMAPClient) -> None:
    imap.deliver(message(1, subject="Café au lait"), message(2, body=b"naive text\r\n"),
                 message(3))
    client.select_folder("INBOX")
    assert client.search(["SUBJECT", "café"], charset="UTF-8") == [1]
    assert client.search(["SUBJECT", "CAFÉ"], charset="UTF-8") == [1]
    assert client.search(["BODY", "NAIVE"]) == [2]
    assert client.search(["NOT", "BODY", "naive"]) == [1, 3]
    assert client.search(["OR", "BODY", "naive", "SUBJECT", "message 3"]) == [2, 3]
    assert client.search("UNSEEN SINCE 1-Jan-2000") == [1, 2, 3]
    assert client.search([b"UID", b"2:*"]) == [2, 3]
    with pytest.raises(IMAPClientError, match="BADCHARSET"):
        client.search(["SUBJECT", "x"], charset="KOI8-R")


def test_flags_copy_move_expunge(imap: ImapEnv, client: IMAPClient) -> None:
    imap.deliver(*(message(i) for i in range(1, 6)))
    client.select_folder("INBOX")
    assert client.add_flags([1, 2], ["\\Flagged", "$Forwarded"]) == {
        1: (b"\\Flagged", b"$Forwarded"), 2: (b"\\Flagged", b"$Forwarded")}
    assert client.remove_flags([2], ["$Forwarded"]) == {2: (b"\\Flagged",)}
    assert client.set_flags([3], ["Custom"]) == {3: (b"Custom",)}
    assert client.get_flags([1, 2, 3]) == {1: (b"\\Flagged", b"$Forwarded"),
                                           2: (b"\\Flagged",), 3: (b"Custom",)}
    assert client.search(["KEYWORD", "Custom"]) == [3]
    client.copy([1, 3], "Archive")
    client.move([2], "Archive")
    assert client.search() == [1, 3, 4, 5]
    client.delete_messages([4, 5])
    client.uid_expunge([4])  # UID EXPUNGE: only 4, although 5 is \Deleted too
    assert client.search() == [1, 3, 5]
    client.expunge()
    assert client.search() == [1, 3]
    status = client.folder_status("Archive", ["MESSAGES", "UIDNEXT"])
    assert status == {b"MESSAGES": 3, b"UIDNEXT": 4}
    client.select_folder("Archive")
    assert client.get_flags([1, 2, 3]) == {1: (b"\\Flagged", b"$Forwarded"), 2: (b"Custom",),
                                           3: (b"\\Flagged",)}
    client.unselect_folder()
    client.select_folder("INBOX")
    client.delete_messages([1])
    client.close_folder()  # expunges silently
    assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 1


def test_append_then_fetch_by_uid(client: IMAPClient) -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    reply = client.append("INBOX", message(9), flags=["\\Draft"], msg_time=when)
    assert b"[APPENDUID " in reply
    client.select_folder("INBOX")
    (uid,) = client.search(["DRAFT"])
    got = client.fetch([uid], ["INTERNALDATE", "FLAGS", "UID"])[uid]
    assert got[b"FLAGS"] == (b"\\Draft",)
    assert got[b"INTERNALDATE"].astimezone(datetime.UTC) == when


def test_store_in_examine_is_refused(imap: ImapEnv, client: IMAPClient) -> None:
    imap.deliver(message(1))
    client.select_folder("INBOX", readonly=True)
    with pytest.raises(IMAPClientError):
        client.add_flags([1], ["\\Seen"])
    with pytest.raises(IMAPClientError):
        client.move([1], "Archive")
    assert client.get_flags([1]) == {1: ()}
