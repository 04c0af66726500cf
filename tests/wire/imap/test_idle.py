"""IDLE over the wire (RFC 2177, RFC 9051 6.3.13): "+ idling", DONE, and changes pushed while
idling: new mail delivered by SMTP, flag changes and expunges made by another session.

Latencies are asserted loosely (a loaded CI box); bench/ measures the real ones.
"""

from __future__ import annotations

import smtplib
import time

from imap_wire import ALICE, PASSWORD, ImapEnv, WireClient, last, message, wire
from imapclient import IMAPClient

# Issue 4 asks for 100 ms; this only catches "not pushed at all" (polling, or a lost wake-up).
PUSH_DEADLINE = 2.0


def start_idle(c: WireClient, tag: str = "i") -> None:
    c.send(tag.encode() + b" IDLE\r\n")
    assert c.readline() == b"+ idling\r\n"


def stop_idle(c: WireClient, tag: str = "i") -> list[bytes]:
    c.send(b"DONE\r\n")
    reply = c.until_tagged(tag)
    assert last(reply).startswith(tag.encode() + b" OK"), reply
    return reply[:-1]


def send_by_smtp(imap: ImapEnv, n: int) -> None:
    with smtplib.SMTP(imap.server.host, imap.server.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("bob@example.test", [ALICE], message(n))


def test_idle_and_done(c: WireClient) -> None:
    assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    start_idle(c)
    assert stop_idle(c) == []
    assert last(c.cmd("n", "NOOP")).startswith(b"n OK")


def test_idle_in_authenticated_state(c: WireClient) -> None:
    """RFC 2177 3: IDLE is valid in the authenticated state as well."""
    start_idle(c)
    assert stop_idle(c) == []


def test_done_is_case_insensitive_and_may_be_pipelined(c: WireClient) -> None:
    c.send(b"i IDLE\r\ndone\r\nn NOOP\r\n")
    assert c.readline() == b"+ idling\r\n"
    assert last(c.until_tagged("i")).startswith(b"i OK")
    assert last(c.until_tagged("n")).startswith(b"n OK")


def test_anything_but_done_ends_idle_with_bad(c: WireClient) -> None:
    start_idle(c)
    c.send(b"x NOOP\r\n")
    reply = c.until_tagged("i")
    assert last(reply).startswith(b"i BAD"), reply
    assert c.cmd("n", "NOOP") == [b"n OK NOOP completed\r\n"]


def test_idle_before_login_is_bad(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("i", "IDLE")
        assert len(reply) == 1
        assert reply[0].startswith(b"i BAD")
        # The client's DONE that follows gets an untagged BAD, not a "DONE BAD".
        c.send(b"DONE\r\n")
        assert c.readline().startswith(b"* BAD")
        assert c.cmd("n", "NOOP") == [b"n OK NOOP completed\r\n"]


def test_pending_changes_are_sent_when_idle_starts(imap: ImapEnv, c: WireClient) -> None:
    assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    imap.deliver(message(1))
    c.send(b"i IDLE\r\n")
    lines = [c.readline(), c.readline()]
    assert b"+ idling\r\n" in lines
    assert b"* 1 EXISTS\r\n" in lines
    stop_idle(c)


def test_idle_wakes_up_on_smtp_delivery(imap: ImapEnv, c: WireClient) -> None:
    assert b"* 0 EXISTS\r\n" in c.cmd("s", "SELECT INBOX")
    start_idle(c)
    for n in (1, 2):
        started = time.monotonic()
        send_by_smtp(imap, n)
        line = c.readline()
        latency = time.monotonic() - started
        assert line == b"* %d EXISTS\r\n" % n
        assert latency < PUSH_DEADLINE, latency
    assert stop_idle(c) == []
    fetched = c.cmd("f", "FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: message 2" in fetched[0]


def test_idle_with_imapclient(imap: ImapEnv) -> None:
    client = IMAPClient(imap.server.host, port=imap.port, ssl=False, timeout=10)
    client.login(ALICE, PASSWORD)
    try:
        client.select_folder("INBOX")
        client.idle()
        assert client.idle_check(timeout=0.05) == []
        started = time.monotonic()
        send_by_smtp(imap, 1)
        responses = client.idle_check(timeout=PUSH_DEADLINE)
        assert time.monotonic() - started < PUSH_DEADLINE
        assert (1, b"EXISTS") in responses
        text, rest = client.idle_done()
        assert rest == []
        assert b"IDLE" in text
    finally:
        client.logout()


def test_flag_change_by_another_session_is_pushed(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1), message(2))
    assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    start_idle(c)
    with wire(imap) as other:
        assert last(other.cmd("s", "SELECT INBOX")).startswith(b"s OK")
        started = time.monotonic()
        assert last(other.cmd("a", "STORE 2 +FLAGS.SILENT (\\Flagged $Work)")).startswith(b"a OK")
        line = c.readline()
        assert time.monotonic() - started < PUSH_DEADLINE
        # The new keyword may be announced first (FLAGS and PERMANENTFLAGS, RFC 9051 7.3.5).
        while line.startswith((b"* FLAGS ", b"* OK [PERMANENTFLAGS ")):
            assert b"$Work" in line
            line = c.readline()
    assert line.startswith(b"* 2 FETCH (")
    assert b"UID 2" in line
    assert b"FLAGS (\\Flagged $Work)" in line
    assert stop_idle(c) == []


def test_expunge_by_another_session_is_pushed(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1), message(2), message(3))
    assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    start_idle(c)
    with wire(imap) as other:
        assert last(other.cmd("s", "SELECT INBOX")).startswith(b"s OK")
        assert last(other.cmd("a", "STORE 1,3 +FLAGS.SILENT (\\Deleted)")).startswith(b"a OK")
        # The \Deleted flags come first, as FETCH responses.
        assert c.readline().startswith(b"* 1 FETCH (")
        assert c.readline().startswith(b"* 3 FETCH (")
        started = time.monotonic()
        assert last(other.cmd("b", "EXPUNGE")).startswith(b"b OK")
        first = c.readline()
        assert time.monotonic() - started < PUSH_DEADLINE
        second = c.readline()
    # Each number is counted after the ones before it left.
    assert [first, second] == [b"* 1 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
    assert stop_idle(c) == []
    fetched = c.cmd("f", "FETCH 1:* (UID)")
    assert fetched[:-1] == [b"* 1 FETCH (UID 2)\r\n"]


def test_new_mail_and_expunge_while_idle_in_order(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1))
    assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    start_idle(c)
    imap.deliver(message(2))
    assert c.readline() == b"* 2 EXISTS\r\n"
    with wire(imap) as other:
        other.cmd("s", "SELECT INBOX")
        other.cmd("a", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert c.readline().startswith(b"* 1 FETCH (")
        other.cmd("b", "EXPUNGE")
        assert c.readline() == b"* 1 EXPUNGE\r\n"
    imap.deliver(message(3))
    assert c.readline() == b"* 2 EXISTS\r\n"
    stop_idle(c)


def test_many_idlers_all_wake_up(imap: ImapEnv) -> None:
    clients = [wire(imap) for _ in range(3)]
    try:
        for client in clients:
            assert last(client.cmd("s", "SELECT INBOX")).startswith(b"s OK")
            start_idle(client)
        send_by_smtp(imap, 1)
        for client in clients:
            assert client.readline() == b"* 1 EXISTS\r\n"
            stop_idle(client)
    finally:
        for client in clients:
            client.close()


def test_idle_on_mailbox_deleted_by_another_session(imap: ImapEnv, c: WireClient) -> None:
    assert last(c.cmd("a", "CREATE doomed")).startswith(b"a OK")
    assert last(c.cmd("s", "SELECT doomed")).startswith(b"s OK")
    start_idle(c)
    with wire(imap) as other:
        assert last(other.cmd("d", "DELETE doomed")).startswith(b"d OK")
    line = c.readline()
    assert line.startswith(b"* BYE ")
    assert c.at_eof()
