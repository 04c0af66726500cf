"""Mailbox isolation: logged in as alice, no mailbox name, UID or message number reaches bob's mail.

Every store query is scoped by the session's account id (a mailbox is looked up by
(account_id, name); message operations use the id of a mailbox found that way), and a name is
a key, never a path: so `../bob`, `~bob`, `#users/bob` and their encodings are at most names in
alice's own namespace. These tests try the tricks anyway, over the wire, and compare bob's
whole state in the store (mailboxes, their counters, every message and flag, subscriptions)
before and after.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from access_wire import Line, add_account, deliver

from mailwright.store.api import Account

RunningServer = Any

ALICE, BOB = "alice@example.test", "bob@example.test"
PASSWORD, BOB_PASSWORD = "alice-isolation-password", "bob-isolation-password"
SECRET = b"bob-secret"  # in every one of bob's messages; alice must never see it
BOB_BOX = "BobPrivate"  # a mailbox only bob has


def mutf7_forced(text: str) -> bytes:
    """Every character base64-encoded in modified UTF-7 (RFC 3501 5.1.3), even printable ASCII:
    a non-canonical spelling a lax decoder might turn back into "../bob"."""
    raw = base64.b64encode(text.encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
    return b"&" + raw + b"-"


TRICKY_NAMES = [
    pytest.param(b"../bob", id="dotdot"),
    pytest.param(b"../bob/INBOX", id="dotdot-inbox"),
    pytest.param(b"../bob@example.test/INBOX", id="dotdot-address"),
    pytest.param(b"INBOX/../bob", id="inbox-dotdot"),
    pytest.param(b"INBOX/../../bob/INBOX", id="inbox-dotdot-dotdot"),
    pytest.param(b"/bob/INBOX", id="absolute"),
    pytest.param(b"//bob/INBOX", id="double-slash"),
    pytest.param(b"~bob", id="tilde"),
    pytest.param(b"~bob/INBOX", id="tilde-inbox"),
    pytest.param(b"#users/bob", id="users-namespace"),
    pytest.param(b"#users/bob/INBOX", id="users-namespace-inbox"),
    pytest.param(b"#shared/bob", id="shared-namespace"),
    pytest.param(b"Other Users/bob/INBOX", id="other-users"),
    pytest.param(b"user/bob", id="cyrus-user"),
    pytest.param(b"user.bob.INBOX", id="cyrus-dots"),
    pytest.param(b"bob", id="bare-name"),
    pytest.param(b"bob@example.test/INBOX", id="address-inbox"),
    pytest.param(b"bob@example.test", id="address"),
    pytest.param(BOB_BOX.encode(), id="bobs-own-name"),
    pytest.param(b"../bob/" + BOB_BOX.encode(), id="dotdot-bobs-name"),
    pytest.param(mutf7_forced("../bob"), id="mutf7-dotdot"),
    pytest.param(b"INBOX" + mutf7_forced("/../bob"), id="mutf7-inbox-dotdot"),
    pytest.param(mutf7_forced("~") + b"bob", id="mutf7-tilde"),
    pytest.param(b"&AC4-&AC4-/bob", id="mutf7-dots-split"),
    pytest.param(b"..&AC8-bob", id="mutf7-slash"),
    pytest.param(b"%2e%2e/bob", id="percent-dots"),
    pytest.param(b"..%2fbob", id="percent-slash"),
    pytest.param(b"%2e%2e%2fbob%2fINBOX", id="percent-all"),
    pytest.param(b"INBOX%2f..%2f..%2fbob", id="percent-inbox"),
    pytest.param(b"%7ebob", id="percent-tilde"),
    pytest.param(b"bob\x00", id="nul-suffix"),
    pytest.param(b"../bob\x00INBOX", id="nul-inside"),
    pytest.param(b"INBOX\r\n../bob", id="crlf"),
    pytest.param(b"bob\nINBOX", id="lf"),
    pytest.param(b"..\xe2\x81\x84bob", id="utf8-fraction-slash"),
]


@dataclass
class World:
    server: RunningServer
    alice: Account
    bob: Account

    def bob_state(self) -> tuple[object, ...]:
        store = self.server.store
        boxes = store.list_mailboxes(self.bob.id)
        messages = {box.name: store.mailbox_messages(box.id) for box in boxes}
        return tuple(boxes), messages, tuple(store.subscriptions(self.bob.id))


def mail(n: int, who: str) -> bytes:
    secret = SECRET.decode() if who == "bob" else "alice-mail"
    return (f"From: x@remote.test\r\nTo: {who}@example.test\r\nSubject: {secret} {n}\r\n"
            f"Message-ID: <{who}{n}@example.test>\r\n\r\n{secret} body {n}\r\n").encode()


@pytest.fixture
def world(server_factory: Any) -> World:
    server = server_factory()
    alice = add_account(server, ALICE, PASSWORD)
    bob = add_account(server, BOB, BOB_PASSWORD)
    for n in range(5):  # bob's INBOX: UIDs 1..5; alice's: 1..2
        deliver(server, bob, mail(n, "bob"))
    for n in range(2):
        deliver(server, alice, mail(n, "alice"))
    server.run(server.store.create_mailbox(bob.id, BOB_BOX))
    server.run(server.store.set_subscribed(bob.id, BOB_BOX, True))
    return World(server, alice, bob)


class Imap:
    """Alice's raw IMAP session. Each command is followed by a NOOP, and everything up to the
    NOOP's answer is collected, so that a command the parser gives up on mid-way (a NUL in a
    literal, say) cannot leave later commands out of step."""

    def __init__(self, server: RunningServer) -> None:
        self.c = Line(server.host, server.port("imap"))
        assert self.c.line().startswith(b"* OK")
        self.n = 0
        self.seen: list[bytes] = []
        status, _ = self.run(f'LOGIN {ALICE} "{PASSWORD}"'.encode())
        assert status == b"OK"

    def run(self, command: bytes) -> tuple[bytes, list[bytes]]:
        """(the command's status: OK, NO or BAD; its untagged lines)."""
        self.n += 1
        tag, sync = f"t{self.n}".encode(), f"z{self.n}".encode()
        self.c.send(tag + b" " + command + b"\r\n" + sync + b" NOOP\r\n")
        lines = self.c.imap_until(sync.decode())
        self.seen += lines
        status = next((line.split(b" ")[1] for line in lines if line.startswith(tag + b" ")),
                      b"BAD")  # no tagged answer at all: the parser threw the line away
        untagged = [line for line in lines if line.startswith(b"* ")]
        return status, untagged

    def close(self) -> None:
        self.c.send(b"q LOGOUT\r\n")
        self.c.imap_until("q")
        self.c.close()


def lit(data: bytes) -> bytes:
    """A non-synchronizing literal (RFC 7888 LITERAL+): any octets, sent in one go."""
    return b"{" + str(len(data)).encode() + b"+}\r\n" + data


def quoted(name: bytes) -> bytes | None:
    if any(b < 0x20 or b > 0x7E for b in name) or b'"' in name or b"\\" in name:
        return None
    return b'"' + name + b'"'


@pytest.fixture
def imap(world: World) -> Iterator[Imap]:
    client = Imap(world.server)
    yield client
    client.close()


def assert_nothing_leaked(client: Imap, names_too: bool = True) -> None:
    """No line alice got holds bob's mail; with `names_too`, no LIST/STATUS line names a
    mailbox with "bob" in it (alice has none of those unless she created one)."""
    for line in client.seen:
        assert SECRET not in line, line
        if names_too and line.startswith((b"* LIST", b"* LSUB", b"* STATUS")):
            assert b"bob" not in line.lower(), line


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_imap_mailbox_name_tricks_never_reach_bob(world: World, imap: Imap, name: bytes) -> None:
    before = world.bob_state()
    spellings = [lit(name)] + ([q] if (q := quoted(name)) is not None else [])
    message = mail(99, "alice")
    for spelled in spellings:
        for verb in (b"SELECT", b"EXAMINE"):
            status, _ = imap.run(verb + b" " + spelled)
            assert status in (b"NO", b"BAD"), (verb, spelled)
        status, untagged = imap.run(b"STATUS " + spelled + b" (MESSAGES UIDNEXT UIDVALIDITY)")
        assert status in (b"NO", b"BAD"), spelled
        assert not untagged, (spelled, untagged)
        status, _ = imap.run(b"APPEND " + spelled + b" " + lit(message))
        assert status in (b"NO", b"BAD"), spelled
        assert imap.run(b"SELECT INBOX")[0] == b"OK"
        for verb in (b"COPY 1:*", b"MOVE 1", b"UID COPY 1:*", b"UID MOVE 2"):
            status, _ = imap.run(verb + b" " + spelled)
            assert status in (b"NO", b"BAD"), (verb, spelled)
        status, _ = imap.run(b"RENAME " + spelled + b' "Loot"')
        assert status in (b"NO", b"BAD"), spelled
        status, _ = imap.run(b"DELETE " + spelled)
        assert status in (b"NO", b"BAD"), spelled
        for listing in (b'LIST "" ' + spelled, b"LIST " + spelled + b' "*"',
                        b'LIST "" "*"', b"LSUB " + spelled + b' "*"'):
            status, untagged = imap.run(listing)
            assert all(b"bob" not in line.lower() for line in untagged), (listing, untagged)
    assert_nothing_leaked(imap)
    assert world.bob_state() == before
    # Alice's own INBOX still holds her two messages (MOVE above failed as well).
    assert len(world.server.store.pop3_messages(world.alice.id)) == 2


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_imap_created_tricky_name_stays_in_alices_namespace(
    world: World, imap: Imap, name: bytes
) -> None:
    """A strange name may be a legal name of alice's own: then it is hers, and bob sees none
    of it (the name is a key in alice's namespace, never a path to somewhere else)."""
    before = world.bob_state()
    status, _ = imap.run(b"CREATE " + lit(name))
    if status == b"OK":
        status, _ = imap.run(b"APPEND " + lit(name) + b" " + lit(mail(7, "alice")))
        assert status == b"OK"
        status, untagged = imap.run(b"STATUS " + lit(name) + b" (MESSAGES)")
        assert status == b"OK"
        assert b"MESSAGES 1" in b"".join(untagged)
        assert imap.run(b"SELECT INBOX")[0] == b"OK"
        assert imap.run(b"COPY 1 " + lit(name))[0] == b"OK"
        assert imap.run(b"RENAME " + lit(name) + b' "Mine"')[0] == b"OK"
        assert imap.run(b'DELETE "Mine"')[0] == b"OK"
    assert_nothing_leaked(imap, names_too=False)
    assert world.bob_state() == before


def test_imap_bobs_uids_only_touch_alices_mailbox(world: World, imap: Imap) -> None:
    """Bob's INBOX has UIDs 1-5, alice's 1-2: UIDs 3-5 name nothing of alice's, and UIDs 1-2
    are alice's own messages, never bob's."""
    before = world.bob_state()
    assert imap.run(b"SELECT INBOX")[0] == b"OK"
    status, untagged = imap.run(b"UID FETCH 1:* (UID BODY.PEEK[])")
    assert status == b"OK"
    assert sum(1 for line in untagged if b" FETCH " in line) == 2
    for command in (
        b"UID FETCH 3:5 (UID FLAGS BODY.PEEK[])",
        b"UID FETCH 3,4,5,4294967295 (BODY.PEEK[HEADER])",
        b"UID STORE 3:5 +FLAGS (\\Deleted \\Seen)",
        b"UID STORE 1:* +FLAGS (\\Flagged)",
        b"UID COPY 3:5 Trash",
        b"UID MOVE 3:5 Trash",
        b"UID EXPUNGE 3:5",
        b"UID SEARCH UID 3:5",
        b"FETCH 3:5 (BODY.PEEK[])",
        b"STORE 3:5 +FLAGS (\\Deleted)",
        b"FETCH 4294967295 (FLAGS)",
        b"UID FETCH 0 (FLAGS)",
    ):
        status, untagged = imap.run(command)
        assert not any(SECRET in line for line in untagged), command
        if command.startswith(b"UID FETCH 3") or command.startswith(b"UID SEARCH"):
            assert status == b"OK"
            assert not any(b" FETCH " in line for line in untagged), (command, untagged)
    assert_nothing_leaked(imap)
    assert world.bob_state() == before
    # The flags landed on alice's messages only.
    flagged = [m for m in world.server.store.mailbox_messages(
        world.server.store.mailbox(world.alice.id, "INBOX").id) if "\\Flagged" in m.flags]
    assert len(flagged) == 2


def test_imap_cannot_act_as_bob(world: World) -> None:
    """SASL authorization identity: alice's password cannot open bob's mailbox (RFC 4616 2)."""
    plain = base64.b64encode(f"{BOB}\0{ALICE}\0{PASSWORD}".encode())
    with Line(world.server.host, world.server.port("imap")) as c:
        c.line()
        c.send(b"a AUTHENTICATE PLAIN " + plain + b"\r\n")
        assert c.imap_until("a")[-1].startswith(b"a NO")
        c.send(b"b SELECT INBOX\r\n")
        assert c.imap_until("b")[-1].startswith(b"b BAD")  # still not authenticated


class Pop3:
    def __init__(self, server: RunningServer) -> None:
        self.c = Line(server.host, server.port("pop3"))
        assert self.c.line().startswith(b"+OK")

    def cmd(self, line: str) -> bytes:
        self.c.send(line.encode() + b"\r\n")
        return self.c.line()

    def multi(self, line: str) -> list[bytes]:
        first = self.cmd(line)
        assert first.startswith(b"+OK"), (line, first)
        out = []
        while (row := self.c.line()) != b".":
            out.append(row)
        return out


def test_pop3_sees_only_alices_maildrop(world: World) -> None:
    before = world.bob_state()
    p = Pop3(world.server)
    assert p.cmd(f"USER {ALICE}").startswith(b"+OK")
    assert p.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    assert p.cmd("STAT").startswith(b"+OK 2 ")
    assert len(p.multi("UIDL")) == 2
    assert len(p.multi("LIST")) == 2
    for n in ("1", "2"):
        body = b"\n".join(p.multi(f"RETR {n}"))
        assert b"alice-mail" in body
        assert SECRET not in body
    for command in ("RETR 3", "RETR 5", "TOP 4 0", "UIDL 3", "LIST 5", "DELE 3", "DELE 5",
                    "RETR 0", "RETR -1", "RETR 99999999999999999999", "UIDL 4294967295"):
        answer = p.cmd(command)
        assert answer.startswith(b"-ERR"), (command, answer)
    assert p.cmd("DELE 1").startswith(b"+OK")  # alice's own, to prove the commit is scoped
    assert p.cmd("QUIT").startswith(b"+OK")
    p.c.close()
    assert world.bob_state() == before
    assert len(world.server.store.pop3_messages(world.bob.id)) == 5
    assert len(world.server.store.pop3_messages(world.alice.id)) == 1


@pytest.mark.parametrize("user", [
    pytest.param(BOB, id="bob"),
    pytest.param(f"{ALICE}/../{BOB}", id="dotdot"),
    pytest.param(f"{BOB}\0{ALICE}", id="nul"),
    pytest.param(f"{BOB} {ALICE}", id="space"),
])
def test_pop3_alices_password_never_opens_bobs_maildrop(world: World, user: str) -> None:
    p = Pop3(world.server)
    p.c.send(f"USER {user}\r\n".encode())
    p.c.line()  # +OK (USER reveals nothing) or -ERR for a malformed name
    assert p.cmd(f"PASS {PASSWORD}").startswith(b"-ERR")
    plain = base64.b64encode(f"{BOB}\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert p.cmd(f"AUTH PLAIN {plain}").startswith(b"-ERR")
    assert p.cmd("STAT").startswith(b"-ERR")
    p.c.close()


@pytest.mark.parametrize("name", [b"../bob", b"INBOX/../bob", b"a/./b", b"..", b"~bob",
                                  b"~/INBOX"])
def test_imap_path_like_names_are_refused(world: World, imap: Imap, name: bytes) -> None:
    """Defence in depth (as Dovecot): "." and ".." levels and a leading "~" are no names."""
    for command in (b"CREATE ", b"RENAME Archive "):
        imap.n += 1
        tag = f"p{imap.n}"
        imap.c.send(tag.encode() + b" " + command + lit(name) + b"\r\n")
        assert imap.c.imap_until(tag)[-1].startswith(f"{tag} NO [CANNOT]".encode())
    names = {box.name for box in world.server.store.list_mailboxes(world.alice.id)}
    assert names == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
