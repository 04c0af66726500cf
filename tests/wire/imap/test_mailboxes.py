"""Mailbox commands over the wire: ENABLE, ID, NAMESPACE, NOOP, CHECK, CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154
SPECIAL-USE), LSUB, STATUS, SELECT and EXAMINE; modified UTF-7 and UTF-8 names (RFC 9051 5.1,
RFC 6855). imapclient where it decodes the answer for us, a raw socket to see the exact bytes.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator

import pytest
from imap_wire import ALICE, PASSWORD, ImapEnv, WireClient, last, message, wire
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

SPECIAL = {"Sent": b"\\Sent", "Drafts": b"\\Drafts", "Trash": b"\\Trash", "Junk": b"\\Junk",
           "Archive": b"\\Archive"}


@pytest.fixture
def ic(imap: ImapEnv) -> Iterator[IMAPClient]:
    client = IMAPClient(imap.server.host, port=imap.port, ssl=False, timeout=10)
    client.login(ALICE, PASSWORD)
    yield client
    client.logout()


@pytest.fixture
def c(imap: ImapEnv) -> Iterator[WireClient]:
    with wire(imap) as client:
        yield client


def ok(c: WireClient, tag: str, command: str | bytes) -> list[bytes]:
    """Run a command that must succeed; its untagged lines."""
    reply = c.cmd(tag, command)
    assert last(reply).startswith(tag.encode() + b" OK"), reply
    return reply[:-1]


def refused(c: WireClient, tag: str, command: str | bytes, prefix: str) -> bytes:
    reply = c.cmd(tag, command)
    assert last(reply).startswith(f"{tag} {prefix}".encode()), reply
    return last(reply)


_LIST = re.compile(rb'^\* (LIST|LSUB) \(([^)]*)\) (?:"(.)"|NIL) (.+?)(?: (\(.*\)))?\r\n$')


def parse_list(lines: list[bytes]) -> dict[bytes, tuple[set[bytes], bytes]]:
    """{wire name (quotes removed): ({attributes}, extended data)} of LIST/LSUB lines."""
    out: dict[bytes, tuple[set[bytes], bytes]] = {}
    for line in lines:
        m = _LIST.match(line)
        if m is None:
            continue
        name = m.group(4)
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        out[name] = (set(m.group(2).split()), m.group(5) or b"")
    return out


def names(lines: list[bytes]) -> list[bytes]:
    return list(parse_list(lines))


def status_of(lines: list[bytes]) -> dict[bytes, dict[bytes, int]]:
    out: dict[bytes, dict[bytes, int]] = {}
    for line in lines:
        m = re.match(rb"^\* STATUS (.+) \(([^)]*)\)\r\n$", line)
        if m is not None:
            name = m.group(1).strip(b'"')
            words = m.group(2).split()
            out[name] = {k: int(v) for k, v in zip(words[::2], words[1::2], strict=True)}
    return out


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


# ----- the account's mailboxes ------------------------------------------------------------------


def test_new_account_has_special_use_mailboxes(ic: IMAPClient) -> None:
    folders = {name: set(flags) for flags, _, name in ic.list_folders()}
    assert set(folders) == {"INBOX", *SPECIAL}
    for name, attr in SPECIAL.items():
        assert attr in folders[name], (name, folders[name])
    assert b"\\HasNoChildren" in folders["INBOX"]
    assert ic.find_special_folder(b"\\Sent") == "Sent"
    assert ic.find_special_folder(b"\\Trash") == "Trash"


def test_list_delimiter_query(c: WireClient) -> None:
    """RFC 9051 6.3.9: LIST "" "" returns the hierarchy delimiter and the root name."""
    assert ok(c, "a", 'LIST "" ""') == [b'* LIST (\\Noselect) "/" ""\r\n']
    assert ok(c, "b", 'LIST "Archive/x" ""') == [b'* LIST (\\Noselect) "/" Archive/\r\n']


def test_list_order_and_wildcards(c: WireClient) -> None:
    ok(c, "a", "CREATE a/b/c")
    ok(c, "b", "CREATE a/d")
    ok(c, "c", "CREATE INBOX/child")
    everything = names(ok(c, "d", 'LIST "" "*"'))
    assert everything[:2] == [b"INBOX", b"INBOX/child"]
    assert set(everything) == {b"INBOX", b"INBOX/child", b"a", b"a/b", b"a/b/c", b"a/d",
                               *(n.encode() for n in SPECIAL)}
    top = parse_list(ok(c, "e", 'LIST "" "%"'))
    assert set(top) == {b"INBOX", b"a", *(n.encode() for n in SPECIAL)}
    assert b"\\HasChildren" in top[b"a"][0]
    assert b"\\HasChildren" in top[b"INBOX"][0]
    assert b"\\HasNoChildren" in top[b"Sent"][0]
    assert names(ok(c, "f", 'LIST "" "a/%"')) == [b"a/b", b"a/d"]
    assert names(ok(c, "g", 'LIST "a/" "%"')) == [b"a/b", b"a/d"]  # the reference
    assert names(ok(c, "h", 'LIST "a/" "*"')) == [b"a/b", b"a/b/c", b"a/d"]
    assert names(ok(c, "i", 'LIST "" "*/c"')) == [b"a/b/c"]
    assert names(ok(c, "j", 'LIST "" "nothing*"')) == []
    assert names(ok(c, "k", 'LIST "" ("a" "Sent" "a")')) == [b"Sent", b"a"]  # each once


def test_list_with_imaplib(imap: ImapEnv) -> None:
    client = imap.client()
    typ, data = client.list()
    assert typ == "OK"
    assert data[0] == b'(\\HasNoChildren) "/" INBOX'
    typ, data = client.list('""', "Tr%")
    assert data == [b'(\\HasNoChildren \\Trash) "/" Trash']
    client.logout()


def test_inbox_is_case_insensitive(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1))
    assert names(ok(c, "a", 'LIST "" "inbox"')) == [b"INBOX"]
    assert names(ok(c, "b", 'LIST "" "InBoX"')) == [b"INBOX"]
    assert status_of(ok(c, "c", "STATUS iNbOx (MESSAGES)")) == {b"INBOX": {b"MESSAGES": 1}}
    assert b"* 1 EXISTS\r\n" in ok(c, "d", "SELECT inbox")
    ok(c, "e", "CREATE inbox/Sub")
    assert names(ok(c, "f", 'LIST "" "INBOX/*"')) == [b"INBOX/Sub"]
    # STATUS names the mailbox as LIST does.
    assert ok(c, "f2", "STATUS inbox/Sub (MESSAGES)") == [b"* STATUS INBOX/Sub (MESSAGES 0)\r\n"]
    refused(c, "g", "CREATE Inbox", "NO")
    # Only INBOX is case-insensitive.
    refused(c, "h", "SELECT sent", "NO")
    assert names(ok(c, "i", 'LIST "" "sent"')) == []


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


# ----- SUBSCRIBE, LSUB, LIST-EXTENDED -----------------------------------------------------------


def test_default_mailboxes_are_subscribed(c: WireClient) -> None:
    """Like Dovecot's autosubscribe: clients that show only subscribed folders (Thunderbird's
    default) see INBOX and the special-use mailboxes of a new account."""
    assert names(ok(c, "a", 'LSUB "" "*"')) == [b"INBOX", *(n.encode() for n in sorted(SPECIAL))]


def test_subscribe_and_lsub(c: WireClient, ic: IMAPClient) -> None:
    ok(c, "a", "CREATE news/tech")
    ok(c, "b", "SUBSCRIBE news/tech")
    ok(c, "c", "SUBSCRIBE news/tech")  # idempotent
    assert names(ok(c, "d", 'LSUB "" "news*"')) == [b"news/tech"]
    # RFC 3501 6.3.9: "%" shows the unsubscribed parent as \Noselect.
    lsub = parse_list(ok(c, "e", 'LSUB "" "%"'))
    assert lsub[b"news"][0] == {b"\\Noselect"}
    assert b"news/tech" not in lsub
    assert lsub[b"Sent"][0] == {b"\\Sent"}
    assert ((), b"/", "news/tech") in ic.list_sub_folders()
    ok(c, "f", "UNSUBSCRIBE news/tech")
    ok(c, "g", "UNSUBSCRIBE inbox")
    assert names(ok(c, "h", 'LSUB "" "*"')) == [n.encode() for n in sorted(SPECIAL)]
    ok(c, "i", "UNSUBSCRIBE never-subscribed")
    ok(c, "j", "SUBSCRIBE INBOX")
    assert names(ok(c, "k", 'LSUB "" "INBOX"')) == [b"INBOX"]


def test_subscription_outlives_mailbox(c: WireClient) -> None:
    """RFC 9051 6.3.7 / 6.3.9: a subscription to a deleted mailbox is kept and listed."""
    ok(c, "a", "CREATE temp")
    ok(c, "b", "SUBSCRIBE temp")
    ok(c, "c", "DELETE temp")
    assert parse_list(ok(c, "d", 'LSUB "" "temp"')) == {b"temp": ({b"\\Noselect"}, b"")}
    listed = parse_list(ok(c, "e", 'LIST (SUBSCRIBED) "" "temp"'))
    assert listed[b"temp"][0] >= {b"\\NonExistent", b"\\Subscribed"}
    ok(c, "f", "SUBSCRIBE does-not-exist")
    assert b"does-not-exist" in names(ok(c, "g", 'LSUB "" "*"'))


def test_list_extended_subscribed(c: WireClient) -> None:
    ok(c, "a", "CREATE p/c")
    ok(c, "b", "CREATE p/d")
    ok(c, "c", "SUBSCRIBE p/c")
    ok(c, "d", "SUBSCRIBE Sent")  # already (a default), and stays so
    listed = parse_list(ok(c, "e", 'LIST (SUBSCRIBED) "" "*"'))
    assert set(listed) == {b"INBOX", b"p/c", *(n.encode() for n in SPECIAL)}
    assert b"\\Subscribed" in listed[b"p/c"][0]
    assert b"\\Sent" in listed[b"Sent"][0]
    # RECURSIVEMATCH: the unsubscribed parent with CHILDINFO (RFC 5258 3.5).
    listed = parse_list(ok(c, "f", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert b"\\Subscribed" not in listed[b"p"][0]
    assert listed[b"p"][1] == b'("CHILDINFO" ("SUBSCRIBED"))'
    assert b"\\Subscribed" in listed[b"Sent"][0]
    # RETURN (SUBSCRIBED) marks subscriptions in a plain listing.
    listed = parse_list(ok(c, "g", 'LIST "" "*" RETURN (SUBSCRIBED)'))
    assert b"\\Subscribed" in listed[b"p/c"][0]
    assert b"\\Subscribed" not in listed[b"p/d"][0]
    # RFC 5258 3: RECURSIVEMATCH alone, and an unknown option, are BAD.
    refused(c, "h", 'LIST (RECURSIVEMATCH) "" "*"', "BAD")
    refused(c, "i", 'LIST (BOGUS) "" "*"', "BAD")
    refused(c, "j", 'LIST "" "*" RETURN (BOGUS)', "BAD")


def test_list_return_children_special_use_status(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1), message(2, body=b"x" * 100))
    ok(c, "a", "CREATE Sent/2026")
    ok(c, "s", "SELECT INBOX")
    ok(c, "t", "STORE 1 +FLAGS (\\Seen)")
    ok(c, "u", "UNSELECT")
    reply = ok(c, "b", 'LIST "" "*" RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))')
    listed = parse_list(reply)
    statuses = status_of(reply)
    assert b"\\HasChildren" in listed[b"Sent"][0]
    assert b"\\Sent" in listed[b"Sent"][0]
    assert b"\\HasNoChildren" in listed[b"Sent/2026"][0]
    assert set(statuses) == set(listed)
    inbox = statuses[b"INBOX"]
    assert inbox[b"MESSAGES"] == 2
    assert inbox[b"UNSEEN"] == 1
    assert inbox[b"SIZE"] >= len(message(1)) + len(message(2, body=b"x" * 100))
    assert statuses[b"Trash"] == {b"MESSAGES": 0, b"UNSEEN": 0, b"SIZE": 0}
    # Each STATUS comes right after its mailbox's LIST line (RFC 5819 2).
    kinds_ = [line.split(b" ")[1] for line in reply]
    assert kinds_[:2] == [b"LIST", b"STATUS"]
    assert kinds_.count(b"LIST") == kinds_.count(b"STATUS")


def test_list_selection_special_use(c: WireClient) -> None:
    ok(c, "a", "CREATE plain")
    listed = parse_list(ok(c, "b", 'LIST (SPECIAL-USE) "" "*"'))
    assert set(listed) == {n.encode() for n in SPECIAL}
    listed = parse_list(ok(c, "c", 'LIST "" "*" RETURN (SPECIAL-USE)'))
    assert b"plain" in listed
    assert b"\\Junk" in listed[b"Junk"][0]


def test_list_status_skips_nonexistent(c: WireClient) -> None:
    ok(c, "a", "SUBSCRIBE ghost")
    reply = ok(c, "b", 'LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))')
    assert b"ghost" in parse_list(reply)
    assert b"\\NonExistent" in parse_list(reply)[b"ghost"][0]
    assert b"ghost" not in status_of(reply)


def test_list_plain_shows_missing_parent_levels(c: WireClient) -> None:
    """A subscribed name "m/n" whose parent does not exist: "%" shows the level "m"."""
    ok(c, "a", "SUBSCRIBE m/n")
    listed = parse_list(ok(c, "b", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert b"m" in listed
    assert listed[b"m"][1] == b'("CHILDINFO" ("SUBSCRIBED"))'


# ----- STATUS -------------------------------------------------------------------------------------


def test_status_every_item(imap: ImapEnv, c: WireClient) -> None:
    imap.deliver(message(1), message(2), message(3))
    ok(c, "a", "SELECT INBOX")
    ok(c, "b", "STORE 1 +FLAGS (\\Seen)")
    ok(c, "c", "STORE 2 +FLAGS (\\Seen \\Deleted)")
    ok(c, "d", "UNSELECT")
    reply = ok(c, "e", "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED RECENT "
                       "APPENDLIMIT)")
    assert len(reply) == 1
    st = status_of(reply)[b"INBOX"]
    assert list(st) == [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"SIZE", b"DELETED",
                        b"RECENT", b"APPENDLIMIT"]
    assert st[b"MESSAGES"] == 3
    assert st[b"UIDNEXT"] == 4
    assert st[b"UIDVALIDITY"] > 0
    assert st[b"UNSEEN"] == 1
    assert st[b"DELETED"] == 1
    assert st[b"RECENT"] == 0
    assert st[b"APPENDLIMIT"] == imap.server.config.imap.max_message_size
    sizes = [len(message(n)) for n in (1, 2, 3)]
    assert st[b"SIZE"] >= sum(sizes)  # trace headers may be added at delivery
    assert b"[NONEXISTENT]" in refused(c, "f", "STATUS nowhere (MESSAGES)", "NO")
    refused(c, "g", "STATUS INBOX (BOGUS)", "BAD")
    refused(c, "h", "STATUS INBOX ()", "BAD")
    refused(c, "i", "STATUS INBOX", "BAD")


def test_status_with_imapclient(imap: ImapEnv, ic: IMAPClient) -> None:
    imap.deliver(message(1))
    st = ic.folder_status("INBOX", ["MESSAGES", "UNSEEN", "UIDNEXT"])
    assert st == {b"MESSAGES": 1, b"UNSEEN": 1, b"UIDNEXT": 2}


def test_status_of_selected_mailbox_sees_new_mail(imap: ImapEnv, c: WireClient) -> None:
    ok(c, "a", "SELECT INBOX")
    imap.deliver(message(1))
    reply = ok(c, "b", "STATUS INBOX (MESSAGES)")
    assert status_of(reply) == {b"INBOX": {b"MESSAGES": 1}}


# ----- names: modified UTF-7 and UTF-8 ----------------------------------------------------------

INTERNATIONAL = {
    "Entwürfe": b"Entw&APw-rfe",
    "日本語": b"&ZeVnLIqe-",
    "&-amp": b"&--amp",
    "a&b/ü": b"a&-b/&APw-",
}


def test_modified_utf7_round_trip(ic: IMAPClient, c: WireClient) -> None:
    for name in INTERNATIONAL:
        ic.create_folder(name)
    folders = {name for _, _, name in ic.list_folders()}
    assert set(INTERNATIONAL) <= folders
    wire_names = names(ok(c, "a", 'LIST "" "*"'))
    for encoded in INTERNATIONAL.values():
        assert encoded in wire_names
    for name in INTERNATIONAL:
        assert ic.select_folder(name)[b"EXISTS"] == 0
        ic.unselect_folder()
        assert ic.folder_status(name, ["MESSAGES"]) == {b"MESSAGES": 0}
    ic.rename_folder("日本語", "日本")
    assert "日本" in {name for _, _, name in ic.list_folders()}
    ic.delete_folder("Entwürfe")
    assert "Entwürfe" not in {name for _, _, name in ic.list_folders()}


def test_modified_utf7_on_the_wire(c: WireClient) -> None:
    ok(c, "a", "CREATE Entw&APw-rfe")
    assert status_of(ok(c, "b", "STATUS Entw&APw-rfe (MESSAGES)")) == {
        b"Entw&APw-rfe": {b"MESSAGES": 0}}
    assert names(ok(c, "c", 'LIST "" "Entw*"')) == [b"Entw&APw-rfe"]
    # Not canonical or not valid modified UTF-7: BAD (RFC 3501 5.1.3).
    refused(c, "d", "CREATE &AGE-", "BAD")  # "a" must not be encoded
    refused(c, "e", "CREATE &APw", "BAD")  # unterminated
    refused(c, "f", 'CREATE "Entw\xc3\xbcrfe"'.encode("latin-1"), "BAD")  # 8-bit before ENABLE


def test_utf8_names_after_enable(c: WireClient) -> None:
    ok(c, "a", "CREATE Entw&APw-rfe")
    ok(c, "b", "ENABLE UTF8=ACCEPT")
    # Names now go out as UTF-8 quoted strings (RFC 6855 3)...
    assert b'"Entw\xc3\xbcrfe"' in b"".join(ok(c, "c", 'LIST "" "*"'))
    # ...and come in as UTF-8.
    ok(c, "d", 'CREATE "\xe6\x97\xa5\xe6\x9c\xac"'.encode("latin-1"))
    listed = b"".join(ok(c, "e", 'LIST "" "*"'))
    assert b'"\xe6\x97\xa5\xe6\x9c\xac"' in listed
    st = ok(c, "f", 'STATUS "Entw\xc3\xbcrfe" (MESSAGES)'.encode("latin-1"))
    assert st == [b'* STATUS "Entw\xc3\xbcrfe" (MESSAGES 0)\r\n']
    ok(c, "g", 'SELECT "\xe6\x97\xa5\xe6\x9c\xac"'.encode("latin-1"))


def test_imap4rev2_names_are_utf8(c: WireClient) -> None:
    """RFC 9051 5.1, appendix E 16: an IMAP4rev2 client speaks UTF-8 mailbox names."""
    ok(c, "a", "CREATE Entw&APw-rfe")
    assert ok(c, "b", "ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2\r\n"]
    assert b'"Entw\xc3\xbcrfe"' in b"".join(ok(c, "c", 'LIST "" "*"'))
    reply = ok(c, "d", 'SELECT "Entw\xc3\xbcrfe"'.encode("latin-1"))
    assert b'* LIST () "/" "Entw\xc3\xbcrfe"\r\n' in reply


def test_utf8_name_seen_by_a_utf7_client(imap: ImapEnv, c: WireClient) -> None:
    ok(c, "a", "ENABLE UTF8=ACCEPT")
    ok(c, "b", 'CREATE "Gr\xc3\xbc\xc3\x9fe"'.encode("latin-1"))
    with wire(imap) as other:
        assert b"Gr&APwA3w-e" in names(ok(other, "x", 'LIST "" "*"'))


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
