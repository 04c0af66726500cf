"""The TRANSACTION and UPDATE states over real sockets with poplib (RFC 1939 5-7)."""

from __future__ import annotations

import poplib

import pytest
from pop3_wire import ALICE, PASSWORD, Pop3Env, ServerFactory, close, make_env, message


def test_tutorial_flow_user_pass_stat_list_retr_dele_quit(pop3: Pop3Env) -> None:
    pop3.deliver(message(1), message(2))
    client = pop3.pop()
    assert client.getwelcome() == b"+OK mail.example.test mailwright POP3 ready"
    client.user(ALICE)
    client.pass_(PASSWORD)
    count, size = client.stat()
    assert count == 2
    _, listing, _ = client.list()
    sizes = [int(line.split()[1]) for line in listing]
    assert sum(sizes) == size
    _, lines, octets = client.retr(1)
    assert b"Subject: message 1" in lines
    assert lines[-1] == b"Body of message 1."
    # poplib counts the octets it read (stuffed, with CRLF); nothing is stuffed here.
    assert octets == sizes[0]
    assert client.dele(1).startswith(b"+OK")
    assert client.quit().startswith(b"+OK")
    client = pop3.login()
    try:
        assert client.stat() == (1, sizes[1])
        _, lines, _ = client.retr(1)
        assert b"Subject: message 2" in lines
    finally:
        client.quit()


def test_retr_returns_the_exact_stored_bytes(pop3: Pop3Env) -> None:
    raw = message(1, b".leading dot\r\n..two dots\r\n.\r\nlast line\r\n")
    pop3.deliver(raw)
    client = pop3.login()
    try:
        size = int(client.list(1).split()[2])
        _, lines, _ = client.retr(1)
        got = b"\r\n".join(lines) + b"\r\n"
        assert got.endswith(raw)  # trace headers come first
        assert len(got) == size  # LIST size = the octets of the message
    finally:
        client.quit()


def test_retr_of_a_large_message_streams_it_whole(pop3: Pop3Env) -> None:
    body = b"".join(b".%06d " % i + b"x" * 70 + b"\r\n" for i in range(20_000))  # ~1.6 MB
    pop3.deliver(message(1, body))
    client = pop3.login()
    try:
        size = int(client.list(1).split()[2])
        _, lines, _ = client.retr(1)
        got = b"\r\n".join(lines) + b"\r\n"
        assert len(got) == size
        assert got.endswith(body)
    finally:
        client.quit()


def test_uidl_is_stable_across_sessions(pop3: Pop3Env) -> None:
    pop3.deliver(message(1), message(2), message(3))
    client = pop3.login()
    _, first, _ = client.uidl()
    one = client.uidl(2)
    client.dele(1)
    client.quit()
    assert one.split()[1:] == first[1].split()
    client = pop3.login()
    try:
        _, second, _ = client.uidl()
        # Message 1 is gone; the others keep their unique ids (numbers are renumbered).
        assert [line.split()[1] for line in second] == [line.split()[1] for line in first[1:]]
    finally:
        client.quit()


def test_top_sends_headers_and_n_lines(pop3: Pop3Env) -> None:
    pop3.deliver(message(1, b"one\r\n.two\r\nthree\r\n"))
    client = pop3.login()
    try:
        _, lines, _ = client.top(1, 2)
        assert b"Subject: message 1" in lines
        assert lines[-3:] == [b"", b"one", b".two"]
        _, lines, _ = client.top(1, 0)
        assert lines[-1] == b""
        assert b"one" not in lines
    finally:
        client.quit()


def test_list_and_stat_skip_deleted_and_rset_restores(pop3: Pop3Env) -> None:
    pop3.deliver(message(1), message(2), message(3))
    client = pop3.login()
    try:
        client.dele(2)
        _, listing, _ = client.list()
        assert [line.split()[0] for line in listing] == [b"1", b"3"]
        assert client.stat()[0] == 2
        with pytest.raises(poplib.error_proto, match="no such message"):
            client.retr(2)
        with pytest.raises(poplib.error_proto, match="no such message"):
            client.dele(2)
        with pytest.raises(poplib.error_proto, match="no such message"):
            client.list(2)
        assert client.rset().startswith(b"+OK")
        assert client.stat()[0] == 3
    finally:
        client.quit()
    client = pop3.login()
    try:
        assert client.stat()[0] == 3  # RSET: nothing was deleted
    finally:
        client.quit()


def test_no_such_message_for_out_of_range_numbers(pop3: Pop3Env) -> None:
    pop3.deliver(message(1))
    client = pop3.login()
    try:
        for n in (0, 2, 999):
            with pytest.raises(poplib.error_proto, match="no such message"):
                client.retr(n)
        assert client.noop().startswith(b"+OK")
    finally:
        client.quit()


def test_dropped_connection_deletes_nothing(pop3: Pop3Env) -> None:
    pop3.deliver(message(1), message(2))
    client = pop3.login()
    client.dele(1)
    client.dele(2)
    close(client)  # no QUIT: no UPDATE state (RFC 1939 6)
    client = pop3.login()  # also proves the lock was released
    try:
        assert client.stat()[0] == 2
    finally:
        client.quit()


def test_quit_in_authorization_deletes_nothing(pop3: Pop3Env) -> None:
    pop3.deliver(message(1))
    client = pop3.pop()
    assert client.quit().startswith(b"+OK")
    assert pop3.server.store.pop3_messages(pop3.alice.id)


def test_dele_quit_expunges_from_the_store(pop3: Pop3Env) -> None:
    pop3.deliver(message(1), message(2))
    client = pop3.login()
    client.dele(2)
    client.quit()
    remaining = pop3.server.store.pop3_messages(pop3.alice.id)
    assert len(remaining) == 1
    summary = {a.address: a for a in pop3.server.store.list_accounts()}[ALICE]
    assert summary.messages == 1  # gone from INBOX, not only hidden from POP3


def test_policy_keep_hides_from_pop3_but_keeps_the_message(server_factory: ServerFactory) -> None:
    env = make_env(server_factory, policy="keep")
    env.deliver(message(1), message(2))
    client = env.login()
    client.dele(1)
    client.quit()
    client = env.login()
    try:
        assert client.stat()[0] == 1
    finally:
        client.quit()
    summary = {a.address: a for a in env.server.store.list_accounts()}[ALICE]
    assert summary.messages == 2  # still in INBOX, for IMAP


def test_empty_maildrop(pop3: Pop3Env) -> None:
    client = pop3.login()
    try:
        assert client.stat() == (0, 0)
        assert client.list()[1] == []
        assert client.uidl()[1] == []
    finally:
        client.quit()


def test_pipelined_commands_get_replies_in_order(pop3: Pop3Env) -> None:
    pop3.deliver(message(1), message(2))
    raw = pop3.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(
            f"USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nRETR 1\r\n"
            "LIST\r\nQUIT\r\n".encode()
        )
        assert raw.line().startswith(b"+OK")  # USER
        assert raw.line().startswith(b"+OK Logged in")  # PASS
        assert raw.line().startswith(b"+OK 2 ")  # STAT
        assert raw.line().startswith(b"+OK")  # RETR 1
        assert b"Subject: message 1\r\n" in raw.multiline()
        assert raw.line().startswith(b"+OK")  # DELE 1
        assert raw.line() == b"-ERR no such message\r\n"  # RETR 1 after DELE
        assert raw.line().startswith(b"+OK")  # LIST
        assert [line.split()[0] for line in raw.multiline()] == [b"2"]
        assert raw.line().startswith(b"+OK")  # QUIT
        assert raw.at_eof()
    finally:
        raw.close()
    assert len(pop3.server.store.pop3_messages(pop3.alice.id)) == 1


def test_many_pipelined_retrs_with_back_pressure(pop3: Pop3Env) -> None:
    body = b"z" * 76 + b"\r\n"
    pop3.deliver(*(message(i, body * 400) for i in range(1, 6)))  # ~30 KB each
    raw = pop3.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
        assert raw.line().startswith(b"+OK")
        assert raw.line().startswith(b"+OK")
        # 200 RETRs (~6 MB of replies) sent before reading any: the server must wait for us.
        raw.send(b"".join(b"RETR %d\r\n" % (i % 5 + 1) for i in range(200)) + b"QUIT\r\n")
        for i in range(200):
            assert raw.line().startswith(b"+OK")
            lines = raw.multiline()
            assert lines[-1] == body
            assert b"Subject: message %d\r\n" % (i % 5 + 1) in lines
        assert raw.line().startswith(b"+OK")
    finally:
        raw.close()
