"""APPEND over the wire (RFC 9051 6.3.12, RFC 3501 6.3.11): flags and internal date, APPENDUID
(RFC 4315), [TRYCREATE], LITERAL+ (RFC 7888), literal8 (RFC 3516), APPENDLIMIT and [TOOBIG]
(RFC 7889), a 20 MB message, and EXISTS for the selected mailbox.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from imap_wire import ALICE, PASSWORD, ImapEnv, WireClient, last, make_env, message, wire
from imapclient import IMAPClient

LIMIT = 1000


@pytest.fixture
def small(server_factory: Any) -> ImapEnv:
    """APPENDLIMIT (max message size) of LIMIT octets."""
    return make_env(server_factory, {"MAILWRIGHT_IMAP_MAX_MESSAGE_SIZE": str(LIMIT)})


def append_sync(c: WireClient, tag: str, head: str, data: bytes) -> list[bytes]:
    """APPEND with a synchronizing literal: wait for "+", then send the message."""
    c.send(f"{tag} APPEND {head} {{{len(data)}}}\r\n".encode())
    first = c.readline()
    if not first.startswith(b"+"):
        return [first, *([] if first.startswith(tag.encode() + b" ") else c.until_tagged(tag))]
    c.send(data + b"\r\n")
    return c.until_tagged(tag)


def append_plus(c: WireClient, tag: str, head: str, data: bytes) -> list[bytes]:
    """APPEND with a non-synchronizing literal (LITERAL+), all in one write."""
    c.send(f"{tag} APPEND {head} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    return c.until_tagged(tag)


def appenduid(line: bytes) -> tuple[int, int]:
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", line)
    assert m is not None, line
    return int(m.group(1)), int(m.group(2))


def status(c: WireClient, tag: str, mailbox: str, items: str) -> dict[bytes, int]:
    reply = c.cmd(tag, f"STATUS {mailbox} ({items})")
    assert last(reply).startswith(tag.encode() + b" OK"), reply
    words = reply[0].split(b"(", 1)[1].rstrip(b")\r\n").split()
    return {k: int(v) for k, v in zip(words[::2], words[1::2], strict=True)}


# ----- the ordinary APPEND -----------------------------------------------------------------------


def test_append_flags_and_internal_date(imap: ImapEnv) -> None:
    client = imap.client()
    when = datetime.datetime(2020, 1, 2, 10, 30, 15, tzinfo=datetime.timezone(
        datetime.timedelta(hours=2)))
    typ, data = client.append("Drafts", "(\\Draft \\Seen $Forwarded)", when, message(1))
    assert typ == "OK"
    assert b"[APPENDUID " in data[0]
    client.select("Drafts")
    typ, data = client.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE)")
    text = data[0].decode()
    flags = re.search(r"FLAGS \(([^)]*)\)", text)
    assert flags is not None
    assert set(flags.group(1).split()) == {"\\Draft", "\\Seen", "$Forwarded"}
    date = re.search(r'INTERNALDATE "([^"]+)"', text)
    assert date is not None
    got = datetime.datetime.strptime(date.group(1), "%d-%b-%Y %H:%M:%S %z")
    assert got == when
    assert f"RFC822.SIZE {len(message(1))}" in text
    typ, data = client.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == message(1)
    client.logout()


def test_append_without_flags_or_date(imap: ImapEnv, c: WireClient) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    reply = append_sync(c, "a", "INBOX", message(2))
    assert last(reply).startswith(b"a OK [APPENDUID ")
    assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    fetched = b"".join(c.cmd("f", "FETCH 1 (FLAGS INTERNALDATE)"))
    assert b"FLAGS ()" in fetched
    m = re.search(rb'INTERNALDATE "([^"]+)"', fetched)
    assert m is not None
    got = datetime.datetime.strptime(m.group(1).decode(), "%d-%b-%Y %H:%M:%S %z")
    assert before - datetime.timedelta(seconds=5) <= got <= before + datetime.timedelta(
        seconds=60)


def test_appenduid_matches_status(c: WireClient) -> None:
    st = status(c, "s", "Sent", "UIDVALIDITY UIDNEXT")
    first = appenduid(last(append_sync(c, "a", "Sent (\\Seen)", message(1))))
    second = appenduid(last(append_plus(c, "b", "Sent", message(2))))
    assert first == (st[b"UIDVALIDITY"], st[b"UIDNEXT"])
    assert second == (st[b"UIDVALIDITY"], st[b"UIDNEXT"] + 1)
    after = status(c, "t", "Sent", "MESSAGES UIDNEXT UNSEEN")
    assert after == {b"MESSAGES": 2, b"UIDNEXT": st[b"UIDNEXT"] + 2, b"UNSEEN": 1}


def test_append_with_imapclient(imap: ImapEnv) -> None:
    client = IMAPClient(imap.server.host, port=imap.port, ssl=False, timeout=10)
    client.login(ALICE, PASSWORD)
    try:
        result = client.append("INBOX", message(3), flags=[b"\\Flagged"])
        assert b"APPENDUID" in result
        client.select_folder("INBOX")
        assert client.fetch([1], ["FLAGS"])[1][b"FLAGS"] == (b"\\Flagged",)
    finally:
        client.logout()


def test_append_to_missing_mailbox_says_trycreate(c: WireClient) -> None:
    reply = append_sync(c, "a", "Nowhere", message(1))
    # RFC 9051 6.3.12: NO [TRYCREATE] before the literal is sent ("+" is never sent).
    assert len(reply) == 1
    assert reply[0].startswith(b"a NO [TRYCREATE]")
    reply = append_plus(c, "b", "Nowhere", message(1))
    assert len(reply) == 1
    assert reply[0].startswith(b"b NO [TRYCREATE]")
    # Nothing of the skipped literal was taken for a command.
    reply = c.cmd("c", "NOOP")
    assert reply == [b"c OK NOOP completed\r\n"]
    assert last(c.cmd("d", "CREATE Nowhere")).startswith(b"d OK")
    assert last(append_sync(c, "e", "Nowhere", message(1))).startswith(b"e OK")


def test_append_with_imaplib_trycreate(imap: ImapEnv) -> None:
    client = imap.client()
    typ, data = client.append("Missing", None, None, message(1))
    assert typ == "NO"
    assert b"TRYCREATE" in data[0]
    assert client.noop()[0] == "OK"
    client.logout()


def test_literal_plus_in_one_packet(c: WireClient) -> None:
    """RFC 7888: the whole APPEND, and the next command, in one write."""
    data = message(1)
    c.send(b"a APPEND INBOX (\\Seen) {%d+}\r\n" % len(data) + data + b"\r\nb NOOP\r\n")
    assert last(c.until_tagged("a")).startswith(b"a OK [APPENDUID ")
    assert last(c.until_tagged("b")).startswith(b"b OK")
    assert status(c, "s", "INBOX", "MESSAGES UNSEEN") == {b"MESSAGES": 1, b"UNSEEN": 0}


def test_append_mailbox_name_as_literal(c: WireClient) -> None:
    c.send(b"a APPEND {4+}\r\nSent {5+}\r\nhello\r\n")
    assert last(c.until_tagged("a")).startswith(b"a OK")
    assert status(c, "s", "Sent", "MESSAGES") == {b"MESSAGES": 1}


def test_append_literal8(c: WireClient) -> None:
    """RFC 3516 4.4: APPEND data as literal8 ~{n}."""
    data = message(1)
    c.send(b"a APPEND INBOX ~{%d}\r\n" % len(data))
    assert c.readline().startswith(b"+")
    c.send(data + b"\r\n")
    assert last(c.until_tagged("a")).startswith(b"a OK")


def test_append_refusals_keep_the_connection(c: WireClient) -> None:
    assert last(c.cmd("a", "APPEND INBOX {0}")).startswith(b"a NO")
    assert last(c.cmd("b", 'APPEND INBOX "bad date" {5}')).startswith(b"b BAD")
    assert last(c.cmd("c", "APPEND INBOX (\\Recent) {5}")).startswith(b"c NO")
    assert last(c.cmd("d", "APPEND INBOX (\\Seen {5}")).startswith(b"d BAD")
    assert last(c.cmd("d2", "APPEND INBOX (\\Foo) {5}")).startswith(b"d2 BAD")
    c.send(b"d3 APPEND INBOX (\\Important) {5+}\r\nhello\r\n")
    assert last(c.until_tagged("d3")).startswith(b"d3 BAD")
    c.send(b'e APPEND INBOX "bad date" {5+}\r\nhello\r\n')
    assert last(c.until_tagged("e")).startswith(b"e BAD")
    # MULTIAPPEND (RFC 3502) is not offered: a second message is BAD, and nothing is stored.
    c.send(b"f APPEND INBOX {5+}\r\nhello {5+}\r\nworld\r\n")
    assert last(c.until_tagged("f")).startswith(b"f BAD")
    assert c.cmd("g", "NOOP") == [b"g OK NOOP completed\r\n"]
    assert status(c, "s", "INBOX", "MESSAGES") == {b"MESSAGES": 0}


def test_append_to_selected_mailbox_gives_exists(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1))
    assert b"* 1 EXISTS\r\n" in c.cmd("s", "SELECT INBOX")
    reply = append_sync(c, "a", "INBOX", message(2))
    # RFC 9051 6.3.12: the EXISTS comes with the APPEND, before its tagged OK.
    assert b"* 2 EXISTS\r\n" in reply[:-1]
    assert last(reply).startswith(b"a OK [APPENDUID ")
    reply = append_plus(c, "b", "Sent", message(3))
    assert not any(b"EXISTS" in line for line in reply)  # another mailbox
    fetched = c.cmd("f", "FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: message 2" in fetched[0]


def test_append_in_examined_mailbox_is_allowed(c: WireClient) -> None:
    assert last(c.cmd("s", "EXAMINE INBOX")).startswith(b"s OK [READ-ONLY]")
    reply = append_sync(c, "a", "INBOX", message(1))
    assert last(reply).startswith(b"a OK")


# ----- big messages and APPENDLIMIT ------------------------------------------------------------


def test_append_20_megabytes(imap: ImapEnv) -> None:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    body = line * (20 * 1024 * 1024 // len(line))
    raw = message(1, body=body)
    assert len(raw) > 20_000_000
    client = imap.client()
    client.sock.settimeout(60)
    typ, data = client.append("INBOX", None, None, raw)
    assert typ == "OK", data
    client.select("INBOX")
    typ, data = client.fetch("1", "(RFC822.SIZE)")
    assert data == [f"1 (RFC822.SIZE {len(raw)})".encode()]
    offset = len(raw) - 1000
    typ, data = client.fetch("1", f"(BODY.PEEK[]<{offset}.500>)")
    assert typ == "OK"
    assert data[0][1] == raw[offset:offset + 500]
    typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1].strip() == b"Subject: message 1"
    client.logout()


def test_appendlimit_advertised(small: ImapEnv) -> None:
    with wire(small) as c:
        caps = c.cmd("a", "CAPABILITY")[0]
        assert f" APPENDLIMIT={LIMIT}".encode() in caps
        assert status(c, "s", "INBOX", "APPENDLIMIT") == {b"APPENDLIMIT": LIMIT}


def test_toobig_synchronizing(small: ImapEnv) -> None:
    """RFC 7889 4 / RFC 9051 7.1: NO [TOOBIG] instead of "+"; the client sends nothing."""
    with wire(small) as c:
        reply = c.cmd("a", f"APPEND INBOX {{{LIMIT + 1}}}")
        assert len(reply) == 1
        assert reply[0].startswith(b"a NO [TOOBIG]")
        assert c.cmd("b", "NOOP") == [b"b OK NOOP completed\r\n"]
        ok = append_sync(c, "c", "INBOX", message(1))
        assert last(ok).startswith(b"c OK")
        assert status(c, "s", "INBOX", "MESSAGES") == {b"MESSAGES": 1}


def test_toobig_non_synchronizing(small: ImapEnv) -> None:
    """A LITERAL+ literal over the limit arrives anyway: it is skipped, then NO [TOOBIG]."""
    with wire(small) as c:
        big = b"X" * (LIMIT * 5) + b"\r\nz LOGOUT\r\n"  # a command hidden in the literal
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\nb NOOP\r\n")
        reply = c.until_tagged("a")
        assert len(reply) == 1
        assert reply[0].startswith(b"a NO [TOOBIG]")
        assert c.until_tagged("b") == [b"b OK NOOP completed\r\n"]
        assert status(c, "s", "INBOX", "MESSAGES") == {b"MESSAGES": 0}
        assert last(append_plus(c, "c", "INBOX", message(1))).startswith(b"c OK")


def test_toobig_with_imaplib(small: ImapEnv) -> None:
    client = small.client()
    typ, data = client.append("INBOX", None, None, b"x" * (LIMIT + 10))
    assert typ == "NO"
    assert b"TOOBIG" in data[0]
    assert client.noop()[0] == "OK"
    typ, _ = client.append("INBOX", None, None, message(1))
    assert typ == "OK"
    client.logout()


def test_append_exactly_at_the_limit(small: ImapEnv) -> None:
    raw = message(1)
    raw += b"x" * (LIMIT - len(raw))
    assert len(raw) == LIMIT
    with wire(small) as c:
        assert last(append_sync(c, "a", "INBOX", raw)).startswith(b"a OK")


def test_target_deleted_while_the_message_arrives(imap: ImapEnv, c: WireClient) -> None:
    assert last(c.cmd("a", "CREATE Doomed")).startswith(b"a OK")
    data = message(1)
    c.send(b"b APPEND Doomed {%d}\r\n" % len(data))
    assert c.readline().startswith(b"+")
    with wire(imap) as other:
        assert last(other.cmd("x", "DELETE Doomed")).startswith(b"x OK")
    c.send(data + b"\r\n")
    reply = c.until_tagged("b")
    assert last(reply).startswith(b"b NO [TRYCREATE]")
    assert c.cmd("n", "NOOP") == [b"n OK NOOP completed\r\n"]
