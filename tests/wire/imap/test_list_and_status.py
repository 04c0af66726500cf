"""Listing mailboxes over the wire: LIST (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS,
RFC 6154 SPECIAL-USE), SUBSCRIBE, UNSUBSCRIBE, LSUB and STATUS (with SIZE and DELETED), and
mailbox names in modified UTF-7 and UTF-8 (RFC 9051 5.1, RFC 6855).
"""

from __future__ import annotations

from imap_wire import (
    SPECIAL,
    ImapEnv,
    WireClient,
    message,
    names,
    ok,
    parse_list,
    refused,
    status_of,
    wire,
)
from imapclient import IMAPClient

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

