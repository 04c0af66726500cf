"""The everyday path: login, select, fetch, search, store, expunge with imaplib."""

from __future__ import annotations

from imap_wire import ImapEnv, message


def test_login_select_fetch_store_expunge(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    c = imap.client()
    typ, data = c.select("INBOX")
    assert typ == "OK"
    assert data == [b"3"]
    typ, data = c.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
    assert typ == "OK"
    assert len(data) == 3
    typ, data = c.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert data[0][1].strip() == b"Subject: message 2"
    typ, data = c.search(None, "ALL")
    assert data == [b"1 2 3"]
    typ, data = c.search(None, "TEXT", "message 2")
    assert data == [b"2"]
    typ, data = c.store("1", "+FLAGS", "(\\Deleted)")
    assert typ == "OK"
    assert b"\\Deleted" in data[0]
    typ, data = c.expunge()
    assert typ == "OK"
    assert data == [b"1"]
    typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
    assert len(data) == 2
    typ, data = c.fetch("1", "(RFC822)")
    assert data[0][1].endswith(b"Body of message 2.\r\n")
    assert c.logout()[0] == "BYE"
