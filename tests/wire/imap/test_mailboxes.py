"""Mailbox commands over the wire: ENABLE, ID, NAMESPACE, NOOP, CHECK, CREATE, DELETE, RENAME,
SELECT and EXAMINE, and whole sessions as real clients run them (LIST, LSUB, STATUS and mailbox
names are in test_list_and_status.py). imapclient where it decodes the answer for us, a raw
socket to see the exact bytes.
"""

from __future__ import annotations

import imaplib
import re

import pytest
from imap_wire import (
    ALICE,
    PASSWORD,
    ImapEnv,
    WireClient,
    last,
    message,
    names,
    ok,
    parse_list,
    refused,
    status_of,
    wire,
)
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

# ----- ENABLE, ID, NAMESPACE, NOOP, CHECK -------------------------------------------------------


def test_enable(c: WireClient) -> None:
    reply = ok(c, "a", "ENABLE UTF8=ACCEPT")
    assert reply == [b"* ENABLED UTF8=ACCEPT\r\n"]
    # RFC 5161 3.2: only what this command newly enabled; unknown names are ignored.
    assert ok(c, "b", "ENABLE UTF8=ACCEPT X-UNKNOWN") == [b"* ENABLED\r\n"]
    assert ok(c, "c", "ENABLE imap4rev2") == [b"* ENABLED IMAP4rev2\r\n"]
    refused(c, "d", "ENABLE", "BAD")


def test_enable_with_imapclient(ic: IMAPClient) -> None:
    assert ic.enable("UTF8=ACCEPT", "CONDSTORE-NOT-OFFERED") == [b"UTF8=ACCEPT"]


def test_id(imap: ImapEnv) -> None:
    client = IMAPClient(imap.server.host, port=imap.port, ssl=False, timeout=10)
    try:
        # RFC 2971 3.1: ID is valid in every state.
        info = client.id_({"name": "pytest", "version": "1"})[0]
        assert dict(zip(info[::2], info[1::2], strict=True))[b"name"] == b"mailwright"
        client.login(ALICE, PASSWORD)
        assert client.id_()[0][:2] == (b"name", b"mailwright")
    finally:
        client.logout()
    with wire(imap) as c:
        assert ok(c, "a", "ID NIL")[0].startswith(b'* ID ("name" "mailwright"')
        refused(c, "b", 'ID ("name")', "BAD")


def test_namespace(ic: IMAPClient, c: WireClient) -> None:
    ns = ic.namespace()
    assert ns.personal == (("", "/"),)
    assert ns.other is None
    assert ns.shared is None
    assert ok(c, "a", "NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL\r\n']


def test_noop_and_check(c: WireClient) -> None:
    ok(c, "a", "NOOP")
    refused(c, "b", "CHECK", "BAD")  # CHECK is a selected-state command
    ok(c, "c", "SELECT INBOX")
    ok(c, "d", "CHECK")
    ok(c, "e", "NOOP")


def test_noop_reports_new_mail(imap: ImapEnv, c: WireClient) -> None:
    ok(c, "a", "SELECT INBOX")
    imap.deliver(message(1))
    assert b"* 1 EXISTS\r\n" in ok(c, "b", "NOOP")
    imap.deliver(message(2))
    assert b"* 2 EXISTS\r\n" in ok(c, "c", "CHECK")


# ----- CREATE -------------------------------------------------------------------------------------


def test_create_makes_parents(c: WireClient) -> None:
    ok(c, "a", "CREATE x/y/z")
    listed = parse_list(ok(c, "b", 'LIST "" "x*"'))
    assert list(listed) == [b"x", b"x/y", b"x/y/z"]
    # Parents are real mailboxes (selectable), as in Dovecot.
    assert b"\\Noselect" not in listed[b"x"][0]
    assert b"\\NonExistent" not in listed[b"x"][0]
    ok(c, "c", "SELECT x")


def test_create_trailing_delimiter(c: WireClient) -> None:
    """RFC 9051 6.3.4: "CREATE foo/" creates foo (the client says it wants children)."""
    ok(c, "a", "CREATE foo/")
    assert names(ok(c, "b", 'LIST "" "foo*"')) == [b"foo"]
    ok(c, "c", "SELECT foo")


def test_create_errors(c: WireClient) -> None:
    assert b"[ALREADYEXISTS]" in refused(c, "a", "CREATE INBOX", "NO")
    assert b"[ALREADYEXISTS]" in refused(c, "b", "CREATE inbox", "NO")
    ok(c, "c", "CREATE dup")
    assert b"[ALREADYEXISTS]" in refused(c, "d", "CREATE dup", "NO")
    assert b"[ALREADYEXISTS]" in refused(c, "e", "CREATE Sent", "NO")
    refused(c, "f", 'CREATE ""', "NO")
    refused(c, "g", 'CREATE "a//b"', "NO")
    refused(c, "h", "CREATE", "BAD")
    refused(c, "i", 'CREATE "bad&name"', "BAD")  # not modified UTF-7
    # LIST wildcards could never name the mailbox alone (RFC 9051 5.1).
    assert b"[CANNOT]" in refused(c, "j", 'CREATE "star*"', "NO")
    assert b"[CANNOT]" in refused(c, "k", 'CREATE "a/100%"', "NO")
    assert b"[CANNOT]" in refused(c, "l", 'RENAME dup "dup*"', "NO")
    # Other punctuation is fine, and quoted on the way out.
    ok(c, "m", r'CREATE "say \"hi\" \\ bye"')
    assert names(ok(c, "n", 'LIST "" "say*"')) == [b'say "hi" \\ bye']


def test_create_special_use(c: WireClient, ic: IMAPClient) -> None:
    ok(c, "a", r"CREATE Old (USE (\Archive))")
    ok(c, "b", r"CREATE Starred (USE (\Flagged))")
    listed = parse_list(ok(c, "c", 'LIST "" "*"'))
    assert b"\\Archive" in listed[b"Old"][0]
    assert b"\\Flagged" in listed[b"Starred"][0]
    assert b"[USEATTR]" in refused(c, "d", r"CREATE Bad (USE (\Important))", "NO")
    assert b"[USEATTR]" in refused(c, "e", r"CREATE Bad (USE (\Sent \Trash))", "NO")
    refused(c, "f", r"CREATE Bad (USE \Sent)", "BAD")
    assert names(ok(c, "g", 'LIST "" "Bad"')) == []


# ----- DELETE -------------------------------------------------------------------------------------


def test_delete(imap: ImapEnv, c: WireClient) -> None:
    ok(c, "a", "CREATE gone")
    c.send(b"b APPEND gone {%d}\r\n" % len(message(1)))
    assert c.readline().startswith(b"+")
    c.send(message(1) + b"\r\n")
    assert last(c.until_tagged("b")).startswith(b"b OK")
    ok(c, "c", "DELETE gone")
    assert names(ok(c, "d", 'LIST "" "gone"')) == []
    assert b"[NONEXISTENT]" in refused(c, "e", "STATUS gone (MESSAGES)", "NO")
    # Created again, it is a new mailbox: empty, with another UIDVALIDITY.
    ok(c, "f", "CREATE gone")
    assert status_of(ok(c, "g", "STATUS gone (MESSAGES)")) == {b"gone": {b"MESSAGES": 0}}


def test_delete_errors(c: WireClient) -> None:
    refused(c, "a", "DELETE INBOX", "NO")
    refused(c, "b", "DELETE inbox", "NO")
    assert b"[NONEXISTENT]" in refused(c, "c", "DELETE nowhere", "NO")


def test_delete_with_children(c: WireClient) -> None:
    """RFC 9051 6.3.5: a server that keeps no \\Noselect placeholders refuses with
    HASCHILDREN; the children then go first."""
    ok(c, "a", "CREATE p/q")
    assert b"[HASCHILDREN]" in refused(c, "b", "DELETE p", "NO")
    assert names(ok(c, "c", 'LIST "" "p*"')) == [b"p", b"p/q"]
    ok(c, "d", "DELETE p/q")
    ok(c, "e", "DELETE p")
    assert names(ok(c, "f", 'LIST "" "p*"')) == []


def test_delete_selected_mailbox(c: WireClient) -> None:
    ok(c, "a", "CREATE here")
    ok(c, "b", "SELECT here")
    ok(c, "c", "DELETE here")
    # The session is back in the authenticated state.
    refused(c, "d", "FETCH 1 FLAGS", "BAD")
    ok(c, "e", "SELECT INBOX")


def test_delete_after_renaming_the_selected_parent(c: WireClient) -> None:
    """The session must not take the renamed selected mailbox for the deleted one."""
    ok(c, "a", "CREATE a/b")
    ok(c, "b", "CREATE other")
    ok(c, "c", "SELECT a/b")
    ok(c, "d", "RENAME a z")
    reply = ok(c, "e", "DELETE other")
    assert not any(b"CLOSED" in line for line in reply)
    ok(c, "f", "SEARCH ALL")  # still selected
    ok(c, "g", "DELETE z/b")
    refused(c, "h", "SEARCH ALL", "BAD")  # now it is gone, and so is the selection


def test_delete_by_another_session_ends_selection(imap: ImapEnv, c: WireClient) -> None:
    ok(c, "a", "CREATE shared")
    ok(c, "b", "SELECT shared")
    with wire(imap) as other:
        ok(other, "x", "DELETE shared")
    reply = c.cmd("c", "NOOP")
    assert any(line.startswith(b"* BYE") for line in reply), reply


# ----- RENAME -------------------------------------------------------------------------------------


def test_rename_with_children(imap: ImapEnv, c: WireClient) -> None:
    ok(c, "a", "CREATE a/b/c")
    before = status_of(ok(c, "b", "STATUS a/b (UIDVALIDITY MESSAGES)"))[b"a/b"]
    ok(c, "c", "RENAME a z")
    assert names(ok(c, "d", 'LIST "" "*"')).count(b"a") == 0
    assert names(ok(c, "e", 'LIST "" "z*"')) == [b"z", b"z/b", b"z/b/c"]
    after = status_of(ok(c, "f", "STATUS z/b (UIDVALIDITY MESSAGES)"))[b"z/b"]
    assert after == before
    # Into a new parent that does not exist yet: it is created.
    ok(c, "g", "RENAME z/b/c new/parent/c")
    assert names(ok(c, "h", 'LIST "" "new*"')) == [b"new", b"new/parent", b"new/parent/c"]


def test_rename_errors(c: WireClient) -> None:
    ok(c, "a", "CREATE one")
    ok(c, "b", "CREATE two")
    assert b"[ALREADYEXISTS]" in refused(c, "c", "RENAME one two", "NO")
    assert b"[NONEXISTENT]" in refused(c, "d", "RENAME nowhere three", "NO")
    refused(c, "e", "RENAME one one/inside", "NO")
    refused(c, "f", "RENAME one INBOX", "NO")
    refused(c, "g", "RENAME one", "BAD")


def test_rename_inbox_moves_messages(imap: ImapEnv, c: WireClient) -> None:
    """RFC 9051 6.3.6: renaming INBOX moves its messages to the new name and leaves INBOX
    empty; its inferiors are not renamed."""
    imap.deliver(message(1), message(2))
    ok(c, "a", "CREATE INBOX/kid")
    ok(c, "b", "RENAME INBOX Saved")
    st = status_of(ok(c, "c", "STATUS INBOX (MESSAGES UIDNEXT)"))[b"INBOX"]
    assert st[b"MESSAGES"] == 0
    assert st[b"UIDNEXT"] >= 3  # UIDs are never reused
    assert status_of(ok(c, "d", "STATUS Saved (MESSAGES)")) == {b"Saved": {b"MESSAGES": 2}}
    assert names(ok(c, "e", 'LIST "" "INBOX*"')) == [b"INBOX", b"INBOX/kid"]
    untagged = ok(c, "f", "SELECT Saved")
    assert b"* 2 EXISTS\r\n" in untagged
    fetched = ok(c, "g", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: message 1" in fetched[0]
    # New mail still goes to INBOX.
    imap.deliver(message(3))
    assert status_of(ok(c, "h", "STATUS INBOX (MESSAGES)")) == {b"INBOX": {b"MESSAGES": 1}}


def test_rename_selected_mailbox(imap: ImapEnv, c: WireClient) -> None:
    ok(c, "a", "CREATE before")
    ok(c, "b", "SELECT before")
    ok(c, "c", "RENAME before after")
    ok(c, "d", "NOOP")
    ok(c, "e", "SEARCH ALL")
    assert b"[CLOSED]" in b"".join(ok(c, "f", "SELECT after"))


# ----- SELECT / EXAMINE ---------------------------------------------------------------------------


def test_select_responses(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1), message(2))
    reply = c.cmd("a", "SELECT INBOX")
    text = b"".join(reply)
    assert reply[0].startswith(b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft")
    assert b"* 2 EXISTS\r\n" in reply
    assert b"* 0 RECENT\r\n" in reply  # IMAP4rev1 requires it
    assert re.search(rb"\* OK \[UIDVALIDITY \d+\]", text)
    assert b"* OK [UIDNEXT 3]" in text
    assert b"* OK [UNSEEN 1]" in text
    assert re.search(rb"\* OK \[PERMANENTFLAGS \([^)]*\\\*\)\]", text)
    assert last(reply).startswith(b"a OK [READ-WRITE]")


def test_examine_is_read_only(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1))
    reply = c.cmd("a", "EXAMINE INBOX")
    assert last(reply).startswith(b"a OK [READ-ONLY]")
    assert b"* OK [PERMANENTFLAGS ()]" in b"".join(reply)
    assert b"[READ-ONLY]" in refused(c, "b", "STORE 1 +FLAGS (\\Seen)", "NO")
    refused(c, "c", "EXPUNGE", "NO")
    # FETCH of a body does not set \Seen in a read-only mailbox.
    ok(c, "d", "FETCH 1 BODY[]")
    assert b"\\Seen" not in b"".join(ok(c, "e", "FETCH 1 FLAGS"))


def test_select_with_imapclient(imap: ImapEnv, ic: IMAPClient) -> None:
    imap.deliver(message(1))
    info = ic.select_folder("INBOX")
    assert info[b"EXISTS"] == 1
    assert info[b"UIDNEXT"] == 2
    assert b"READ-WRITE" in info
    assert b"\\Seen" in info[b"FLAGS"]
    assert b"\\*" in info[b"PERMANENTFLAGS"]
    info = ic.select_folder("INBOX", readonly=True)
    assert b"READ-ONLY" in info


def test_reselect_sends_closed(imap: ImapEnv, c: WireClient) -> None:
    """RFC 9051 7.1 CLOSED: the boundary between the old mailbox's responses and the new."""
    ok(c, "a", "SELECT INBOX")
    reply = ok(c, "b", "EXAMINE Sent")
    assert reply[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
    # A failed SELECT closes the old mailbox too, and leaves the authenticated state.
    reply = c.cmd("c", "SELECT nowhere")
    assert reply[0].startswith(b"* OK [CLOSED]")
    assert b"[NONEXISTENT]" in last(reply)
    refused(c, "d", "FETCH 1 FLAGS", "BAD")
    # Not selected: no CLOSED.
    assert not any(b"[CLOSED]" in line for line in ok(c, "e", "SELECT INBOX"))


def test_select_imap4rev2(imap: ImapEnv, c: WireClient) -> None:
    """RFC 9051 6.3.2: no RECENT or UNSEEN, but a LIST response with the mailbox name."""
    imap.deliver(message(1))
    ok(c, "a", "ENABLE IMAP4rev2")
    reply = ok(c, "b", "SELECT inbox")
    assert not any(b"RECENT" in line or b"[UNSEEN" in line for line in reply)
    assert any(line.startswith(b"* LIST ") and line.endswith(b" INBOX\r\n") for line in reply)


def test_select_errors(c: WireClient) -> None:
    assert b"[NONEXISTENT]" in refused(c, "a", "SELECT nowhere", "NO")
    refused(c, "b", "SELECT", "BAD")
    refused(c, "c", "SELECT a b", "BAD")


def test_imaplib_errors_are_readable(imap: ImapEnv) -> None:
    client = imap.client()
    typ, data = client.create("INBOX")
    assert typ == "NO"
    assert b"ALREADYEXISTS" in data[0]
    typ, data = client.select("nowhere")
    assert typ == "NO"
    with pytest.raises(imaplib.IMAP4.error):
        client.fetch("1", "FLAGS")  # not selected: BAD
    client.logout()


def test_imapclient_error_on_missing_folder(ic: IMAPClient) -> None:
    with pytest.raises(IMAPClientError):
        ic.select_folder("nowhere")
    ic.noop()


# ----- what real clients send ---------------------------------------------------------------------


def test_thunderbird_style_lowercase_session(imap: ImapEnv) -> None:
    """Thunderbird sends lower-case commands and options and a quoted INBOX."""
    imap.deliver(message(1))
    with wire(imap, login=False) as c:
        ok(c, "1", "capability")
        ok(c, "2", f'login "{ALICE}" "{PASSWORD}"')
        assert ok(c, "3", 'ID ("name" "Thunderbird" "version" "115.0")')[0].startswith(b"* ID (")
        listed = parse_list(ok(c, "4", 'list (subscribed) "" "*" return (special-use children)'))
        assert b"\\Sent" in listed[b"Sent"][0]
        assert b"\\Subscribed" in listed[b"INBOX"][0]
        assert b"* 1 EXISTS\r\n" in ok(c, "5", 'select "INBOX"')
        assert ok(c, "6", "uid fetch 1:* (FLAGS)") == [b"* 1 FETCH (UID 1 FLAGS ())\r\n"]
        c.send(b"7 idle\r\n")
        assert c.readline() == b"+ idling\r\n"
        c.send(b"DONE\r\n")
        assert last(c.until_tagged("7")).startswith(b"7 OK")
        ok(c, "8", "logout")


def test_mutt_style_session(imap: ImapEnv) -> None:
    with wire(imap) as c:
        assert ok(c, "a0", 'LIST "" ""') == [b'* LIST (\\Noselect) "/" ""\r\n']
        assert b"INBOX" in names(ok(c, "a1", 'LSUB "" "*"'))
        st = status_of(ok(c, "a2", 'STATUS "INBOX" (MESSAGES RECENT UNSEEN UIDNEXT UIDVALIDITY)'))
        assert st[b"INBOX"][b"MESSAGES"] == 0
        ok(c, "a3", 'SELECT "INBOX"')
        ok(c, "a4", "CHECK")
        ok(c, "a5", "CLOSE")


def test_mbsync_style_session(imap: ImapEnv) -> None:
    with wire(imap) as c:
        ok(c, "1", "NAMESPACE")
        ok(c, "2", 'LIST "" "*"')
        ok(c, "3", 'CREATE "Archive/2026"')
        data = message(1)
        c.send(b'4 APPEND "Archive/2026" (\\Seen) {%d+}\r\n' % len(data) + data + b"\r\n")
        assert b"[APPENDUID " in last(c.until_tagged("4"))
        reply = ok(c, "5", 'SELECT "Archive/2026"')
        assert b"* 1 EXISTS\r\n" in reply
        assert b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n" in ok(c, "6", "UID FETCH 1:* (UID FLAGS)")
