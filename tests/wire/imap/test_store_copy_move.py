"""STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE and UNSELECT over the wire (RFC 9051 6.4,
RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 3691 UNSELECT), and what EXAMINE refuses."""

from __future__ import annotations

import re

from imap_wire import (
    ImapEnv,
    cheap_hashing,  # noqa: F401 (autouse fixture)
    kinds,
    message,
    raw_client,
)


def status(tagged: bytes) -> bytes:
    return tagged.split(b" ")[1]


def uidvalidity(imap: ImapEnv, name: str) -> int:
    box = imap.server.store.mailbox(imap.alice.id, name)
    assert box is not None
    return int(box.uidvalidity)


# ----- STORE -----------------------------------------------------------------------------------


def test_store_add_remove_replace_with_imaplib(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    c = imap.client()
    c.select("INBOX")
    typ, data = c.store("1:2", "+FLAGS", "(\\Seen $Forwarded)")
    assert typ == "OK"
    assert data == [b"1 (FLAGS (\\Seen $Forwarded))", b"2 (FLAGS (\\Seen $Forwarded))"]
    typ, data = c.store("2", "-FLAGS", "(\\Seen)")
    assert data == [b"2 (FLAGS ($Forwarded))"]
    typ, data = c.store("3", "FLAGS", "(\\Flagged \\Answered Custom_Kw)")
    assert data == [b"3 (FLAGS (\\Answered \\Flagged Custom_Kw))"]
    typ, data = c.store("3", "FLAGS", "()")
    assert data == [b"3 (FLAGS ())"]
    typ, data = c.fetch("1:3", "(FLAGS)")
    assert data == [b"1 (FLAGS (\\Seen $Forwarded))", b"2 (FLAGS ($Forwarded))",
                    b"3 (FLAGS ())"]
    c.logout()


def test_store_system_flags_in_any_case(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as c:
        assert c.ok("STORE 1 +FLAGS (\\seen \\FLAGGED)") == [
            b"* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\n"]
        assert c.ok("STORE 1 -FLAGS (\\SEEN)") == [b"* 1 FETCH (FLAGS (\\Flagged))\r\n"]


def test_store_silent_and_unchanged(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2))
    with raw_client(imap) as c:
        assert c.ok("STORE 1:2 +FLAGS.SILENT (\\Seen)") == []
        assert c.ok("STORE 1 FLAGS.SILENT (\\Draft)") == []
        assert c.ok("STORE 1:2 -FLAGS.SILENT (NotThere)") == []
        # Without .SILENT every message in the set is reported, changed or not.
        assert c.ok("STORE 1:2 +FLAGS (\\Seen)") == [b"* 1 FETCH (FLAGS (\\Seen \\Draft))\r\n",
                                                     b"* 2 FETCH (FLAGS (\\Seen))\r\n"]


def test_uid_store_responses_include_uid(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    with raw_client(imap) as c:
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
        untagged = c.ok("UID STORE 2:3 +FLAGS ($Label1)")
        assert kinds(untagged[:2]) == [b"FLAGS", b"OK"]  # $Label1 is a new keyword
        assert untagged[2:] == [b"* 1 FETCH (UID 2 FLAGS ($Label1))\r\n",
                            b"* 2 FETCH (UID 3 FLAGS ($Label1))\r\n"]
        assert c.ok("UID STORE 1 +FLAGS (\\Seen)") == []  # expunged UID: nothing, no error
        assert c.ok("UID STORE 3 -FLAGS.SILENT ($Label1)") == []
        assert c.ok("UID FETCH 2:3 (FLAGS)") == [b"* 1 FETCH (UID 2 FLAGS ($Label1))\r\n",
                                                  b"* 2 FETCH (UID 3 FLAGS ())\r\n"]


def test_store_refuses_recent_and_unknown_system_flags(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as c:
        for flags in ("(\\Recent)", "(\\Seen \\Bogus)", "(\\*)"):
            untagged, tagged = c.command(f"STORE 1 +FLAGS {flags}")
            assert status(tagged) == b"BAD", flags
            assert untagged == []
        assert c.ok("FETCH 1 (FLAGS)") == [b"* 1 FETCH (FLAGS ())\r\n"]


def test_new_keyword_is_announced_in_flags(imap: ImapEnv) -> None:
    """RFC 3501 7.2.6 / RFC 9051 7.3.5: the FLAGS list changes when a STORE defines a new
    keyword, so the server sends FLAGS (and PERMANENTFLAGS) again."""
    imap.deliver(message(1))
    with raw_client(imap) as c:
        untagged = c.ok("STORE 1 +FLAGS (NewKeyword)")
        assert kinds(untagged) == [b"FLAGS", b"OK", b"FETCH"]
        assert b"NewKeyword" in untagged[0]
        assert b"[PERMANENTFLAGS (" in untagged[1]
        assert b"NewKeyword" in untagged[1]
        assert b"\\*)" in untagged[1]
        assert c.ok("STORE 1 -FLAGS (NewKeyword)") == [b"* 1 FETCH (FLAGS ())\r\n"]
        assert c.ok("STORE 1 +FLAGS (NewKeyword)") == [b"* 1 FETCH (FLAGS (NewKeyword))\r\n"]


# ----- COPY and MOVE ---------------------------------------------------------------------------


def test_copy_answers_copyuid_and_keeps_flags_and_date(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    c = imap.client()
    c.select("INBOX")
    c.store("2", "+FLAGS", "(\\Flagged $Forwarded)")
    typ, data = c.copy("2:3", "Archive")
    assert typ == "OK"
    v = uidvalidity(imap, "Archive")
    assert data[0].startswith(b"[COPYUID %d 2:3 1:2]" % v)
    typ, _ = c.uid("COPY", "1,3", "Archive")
    assert typ == "OK"
    assert c.response("COPYUID")[1][-1] == b"%d 1,3 3:4" % v
    _, source = c.fetch("2", "(INTERNALDATE)")
    c.select("Archive")
    typ, data = c.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
    assert subjects == [b"Subject: message 2", b"Subject: message 3", b"Subject: message 1",
                        b"Subject: message 3"]
    first = data[0][0]
    assert b"FLAGS (\\Flagged $Forwarded)" in first
    date = re.search(rb'INTERNALDATE "[^"]+"', source[0])
    assert date is not None
    assert date.group(0) in first
    c.logout()


def test_copy_and_move_to_a_missing_mailbox_is_trycreate(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as c:
        for cmd in ("COPY 1 Nowhere", "MOVE 1 Nowhere", "UID COPY 1 Nowhere",
                    "UID MOVE 1 Nowhere"):
            untagged, tagged = c.command(cmd)
            assert tagged.split(b" ")[1:3] == [b"NO", b"[TRYCREATE]"], cmd
            assert untagged == []
        assert c.ok("FETCH 1 (UID)") == [b"* 1 FETCH (UID 1)\r\n"]


def test_move_sends_copyuid_then_expunges(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 6)))
    v = uidvalidity(imap, "Archive")
    with raw_client(imap) as c:
        c.ok("STORE 3 +FLAGS.SILENT (\\Seen)")
        untagged = c.ok("MOVE 2:3,5 Archive")
        # RFC 6851 4.3: COPYUID in an untagged OK before the EXPUNGEs, which count down.
        assert untagged[0].startswith(b"* OK [COPYUID %d 2:3,5 1:3] " % v)
        assert untagged[1:] == [b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]
        assert c.ok("UID FETCH 1:* (UID)") == [b"* 1 FETCH (UID 1)\r\n",
                                                b"* 2 FETCH (UID 4)\r\n"]
        untagged = c.ok("UID MOVE 4 Archive")
        assert untagged[0].startswith(b"* OK [COPYUID %d 4 4] " % v)
        assert untagged[1:] == [b"* 2 EXPUNGE\r\n"]
        assert c.ok("UID MOVE 99 Archive") == []  # nothing named: nothing to do
        c.ok("SELECT Archive")
        flags = c.ok("UID FETCH 1:* (FLAGS)")
        assert flags == [b"* 1 FETCH (UID 1 FLAGS ())\r\n",
                         b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
                         b"* 3 FETCH (UID 3 FLAGS ())\r\n",
                         b"* 4 FETCH (UID 4 FLAGS ())\r\n"]


def test_move_within_the_same_mailbox(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2))
    with raw_client(imap) as c:
        untagged = c.ok("MOVE 1 INBOX")
        assert kinds(untagged) == [b"OK", b"EXPUNGE", b"EXISTS"]
        assert untagged[1:] == [b"* 1 EXPUNGE\r\n", b"* 2 EXISTS\r\n"]
        assert c.ok("UID FETCH 1:* (UID)") == [b"* 1 FETCH (UID 2)\r\n",
                                                b"* 2 FETCH (UID 3)\r\n"]


def test_copy_into_the_selected_mailbox_announces_exists(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as c:
        untagged = c.ok("COPY 1 INBOX")
        assert untagged == [b"* 2 EXISTS\r\n"]
        assert c.ok("FETCH 2 (UID)") == [b"* 2 FETCH (UID 2)\r\n"]


# ----- EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT -----------------------------------------------------


def test_expunge_removes_only_deleted_with_numbers_counting_down(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 7)))
    c = imap.client()
    c.select("INBOX")
    c.store("2,3,5", "+FLAGS", "(\\Deleted)")
    typ, data = c.expunge()
    assert typ == "OK"
    assert data == [b"2", b"2", b"3"]
    typ, data = c.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 1)", b"2 (UID 4)", b"3 (UID 6)"]
    typ, data = c.expunge()  # nothing left to remove
    assert data == [None]
    c.logout()


def test_uid_expunge_removes_only_deleted_messages_in_the_set(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 6)))
    with raw_client(imap) as c:
        c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        assert c.ok("UID EXPUNGE 2:4") == [b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
        assert c.ok("UID FETCH 1:* (FLAGS)") == [b"* 1 FETCH (UID 1 FLAGS (\\Deleted))\r\n",
                                                  b"* 2 FETCH (UID 4 FLAGS ())\r\n",
                                                  b"* 3 FETCH (UID 5 FLAGS ())\r\n"]
        assert c.ok("UID EXPUNGE 7:9") == []
        assert c.ok("UID EXPUNGE 1") == [b"* 1 EXPUNGE\r\n"]


def test_close_expunges_silently_and_unselect_does_not(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 5)))
    with raw_client(imap) as c:
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert c.ok("UNSELECT") == []
        _, tagged = c.command("FETCH 1 (FLAGS)")  # back in the authenticated state
        assert status(tagged) == b"BAD"
        untagged = c.ok("SELECT INBOX")
        assert b"* 4 EXISTS\r\n" in untagged
        c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        assert c.ok("CLOSE") == []  # RFC 9051 6.4.1: no EXPUNGE responses
        _, tagged = c.command("NOOP")
        assert status(tagged) == b"OK"
        untagged = c.ok("EXAMINE INBOX")
        assert b"* 2 EXISTS\r\n" in untagged
        assert c.ok("FETCH 1:* (UID)") == [b"* 1 FETCH (UID 3)\r\n", b"* 2 FETCH (UID 4)\r\n"]


def test_close_after_examine_removes_nothing(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2))
    with raw_client(imap) as c:
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXAMINE INBOX")
        assert c.ok("CLOSE") == []
        assert b"* 2 EXISTS\r\n" in c.ok("SELECT INBOX")


def test_examine_refuses_changes(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2))
    with raw_client(imap, None) as c:
        _, tagged = c.command("STORE 1 FLAGS (\\Deleted)")  # not selected: BAD
        assert status(tagged) == b"BAD"
        _, tagged = c.command("EXAMINE INBOX")
        assert tagged.split(b" ")[1:3] == [b"OK", b"[READ-ONLY]"]
        for cmd in ("STORE 1 +FLAGS (\\Seen)", "UID STORE 1 +FLAGS (\\Seen)", "EXPUNGE",
                    "UID EXPUNGE 1:*", "MOVE 1 Archive", "UID MOVE 1 Archive"):
            untagged, tagged = c.command(cmd)
            assert status(tagged) == b"NO", cmd
            assert untagged == []
        c.ok("COPY 1 Archive")  # reading is allowed
        assert c.ok("FETCH 1:2 (FLAGS)") == [b"* 1 FETCH (FLAGS ())\r\n",
                                              b"* 2 FETCH (FLAGS ())\r\n"]
