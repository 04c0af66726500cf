"""Two sessions on one mailbox (RFC 9051 7.5.2 / 7.4.1, RFC 2180 4.1): when another session's
expunges, new mail and flag changes reach a session, with the right sequence numbers; POP3
DELE+QUIT is the same event; UIDs are never reused, also across a restart."""

from __future__ import annotations

import poplib
from typing import Any

from imap_wire import (
    ALICE,
    FAST_AUTH,
    PASSWORD,
    ImapEnv,
    RawImap,
    cheap_hashing,  # noqa: F401 (autouse fixture)
    kinds,
    message,
    raw_client,
)


def status(tagged: bytes) -> bytes:
    return tagged.split(b" ")[1]


def uid_list(c: RawImap) -> list[int]:
    return [int(r.split(b"UID ")[1].split(b")")[0]) for r in c.ok("UID FETCH 1:* (UID)")]


def expunge_elsewhere(imap: ImapEnv, *uids: int) -> None:
    """Session B flags `uids` \\Deleted and expunges them."""
    with raw_client(imap) as b:
        b.ok(f"UID STORE {','.join(map(str, uids))} +FLAGS.SILENT (\\Deleted)")
        b.ok("EXPUNGE")


def test_no_expunge_during_fetch_store_search_then_at_noop(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 6)))
    with raw_client(imap) as a:
        expunge_elsewhere(imap, 2, 4)
        # FETCH, STORE and SEARCH must not carry EXPUNGE (RFC 9051 7.4.1); the numbers the
        # client knows stay valid, the expunged messages keep theirs.
        untagged = a.ok("FETCH 1:5 (UID)")
        assert b"EXPUNGE" not in kinds(untagged)
        assert untagged[0] == b"* 1 FETCH (UID 1)\r\n"
        assert b"* 5 FETCH (UID 5)\r\n" in untagged
        untagged = a.ok("STORE 1:5 +FLAGS (\\Flagged)")
        assert b"EXPUNGE" not in kinds(untagged)
        numbers = sorted(int(u.split(b" ")[1]) for u in untagged if kinds([u]) == [b"FETCH"])
        assert numbers == [1, 3, 5]
        assert a.ok("SEARCH ALL") == [b"* SEARCH 1 3 5\r\n"]
        assert a.ok("SEARCH 5") == [b"* SEARCH 5\r\n"]
        # NOOP may: numbers count down as each message leaves (2, then 4 which is now 3).
        assert a.ok("NOOP") == [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]
        assert a.ok("NOOP") == []
        assert a.ok("FETCH 1:* (UID FLAGS)") == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                                                  b"* 2 FETCH (UID 3 FLAGS (\\Flagged))\r\n",
                                                  b"* 3 FETCH (UID 5 FLAGS (\\Flagged))\r\n"]
        assert a.ok("SEARCH ALL") == [b"* SEARCH 1 2 3\r\n"]


def test_uid_commands_carry_pending_expunges(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 5)))
    with raw_client(imap) as a:
        expunge_elsewhere(imap, 1)
        # A UID command may tell of the expunge at once: the data leaves the message out
        # and the EXPUNGE follows it.
        assert a.ok("UID FETCH 1:* (FLAGS)") == [b"* 2 FETCH (UID 2 FLAGS ())\r\n",
                                                  b"* 3 FETCH (UID 3 FLAGS ())\r\n",
                                                  b"* 4 FETCH (UID 4 FLAGS ())\r\n",
                                                  b"* 1 EXPUNGE\r\n"]
        expunge_elsewhere(imap, 3)
        untagged = a.ok("UID STORE 2 +FLAGS (\\Seen)")
        assert untagged == [b"* 1 FETCH (UID 2 FLAGS (\\Seen))\r\n", b"* 2 EXPUNGE\r\n"]
        expunge_elsewhere(imap, 4)
        assert a.ok("UID SEARCH ALL") == [b"* SEARCH 2\r\n", b"* 2 EXPUNGE\r\n"]
        assert a.ok("FETCH 1:* (UID)") == [b"* 1 FETCH (UID 2)\r\n"]


def test_fetch_of_a_message_expunged_elsewhere_does_not_fail_the_session(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2, body=b"only in two\r\n"), message(3))
    with raw_client(imap) as a:
        expunge_elsewhere(imap, 2)
        # RFC 2180 4.1: the message still has its number; the server may send what it still
        # has, or NO [EXPUNGEISSUED] for what it has not. Never BAD, never a dropped line.
        untagged, tagged = a.command("FETCH 1:3 (UID BODY.PEEK[TEXT])")
        assert b"EXPUNGE" not in kinds(untagged)
        numbers = [int(u.split(b" ")[1]) for u in untagged]
        assert 1 in numbers
        assert 3 in numbers
        if 2 in numbers:
            assert status(tagged) == b"OK"
            assert b"only in two" in untagged[numbers.index(2)]
        else:
            assert tagged.split(b" ")[1:3] == [b"NO", b"[EXPUNGEISSUED]"]
        untagged, tagged = a.command("FETCH 2 (BODY[])")
        assert status(tagged) in (b"OK", b"NO")
        untagged, tagged = a.command("COPY 2 Archive")  # RFC 2180 4.4.1
        assert status(tagged) in (b"OK", b"NO")
        assert a.ok("NOOP") == [b"* 2 EXPUNGE\r\n"]
        assert uid_list(a) == [1, 3]


def test_own_expunge_includes_pending_ones_in_order(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 6)))
    with raw_client(imap) as a:
        expunge_elsewhere(imap, 2)
        a.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
        assert a.ok("EXPUNGE") == [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]
        assert uid_list(a) == [1, 3, 5]


def test_new_mail_shows_as_exists(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2))
    with raw_client(imap) as a:
        imap.deliver(message(3), message(4))
        assert a.ok("NOOP") == [b"* 4 EXISTS\r\n"]
        assert a.ok("NOOP") == []
        assert a.ok("FETCH 4 (UID)") == [b"* 4 FETCH (UID 4)\r\n"]
        # A message that came and went before the client heard of it is never announced.
        imap.deliver(message(5))
        expunge_elsewhere(imap, 5)
        assert a.ok("NOOP") in ([], [b"* 5 EXISTS\r\n", b"* 5 EXPUNGE\r\n"])
        imap.deliver(message(6))
        assert a.ok("NOOP") == [b"* 5 EXISTS\r\n"]
        assert uid_list(a) == [1, 2, 3, 4, 6]


def test_new_mail_and_expunge_together(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    with raw_client(imap) as a:
        expunge_elsewhere(imap, 1)
        imap.deliver(message(4))
        # During FETCH: EXISTS may come (the count only grows), EXPUNGE may not.
        untagged = a.ok("FETCH 1 (UID)")
        assert untagged[0] == b"* 1 FETCH (UID 1)\r\n"
        assert kinds(untagged[1:]) in ([], [b"EXISTS"])
        if untagged[1:]:
            assert untagged[1] == b"* 4 EXISTS\r\n"
        untagged = a.ok("NOOP")
        assert b"* 1 EXPUNGE\r\n" in untagged
        assert untagged[-1] in (b"* 1 EXPUNGE\r\n", b"* 3 EXISTS\r\n")
        assert uid_list(a) == [2, 3, 4]


def test_flag_changes_by_another_session(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    with raw_client(imap) as a, raw_client(imap) as b:
        b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
        b.ok("STORE 3 FLAGS.SILENT (\\Seen \\Answered)")
        assert a.ok("NOOP") == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                                b"* 3 FETCH (UID 3 FLAGS (\\Seen \\Answered))\r\n"]
        assert a.ok("NOOP") == []
        # A's own STORE is answered once, not echoed back by the change bus.
        assert a.ok("STORE 2 +FLAGS (\\Seen)") == [b"* 2 FETCH (FLAGS (\\Seen))\r\n"]
        assert a.ok("NOOP") == []
        # B sees A's change; a change and its undo before B asks still leave B right.
        assert b.ok("NOOP") == [b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n"]
        a.ok("STORE 1 -FLAGS.SILENT (\\Flagged)")
        a.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
        assert b.ok("NOOP") in ([], [b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n"])
        # \Seen set by B's FETCH BODY[] reaches A.
        b.ok("FETCH 1 (BODY[])")
        assert a.ok("NOOP") == [b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Flagged))\r\n"]
        # A new keyword from another session: FLAGS, then the FETCH.
        b.ok("STORE 3 +FLAGS.SILENT (Important)")
        untagged = a.ok("NOOP")
        assert kinds(untagged) == [b"FLAGS", b"OK", b"FETCH"]
        assert untagged[2] == b"* 3 FETCH (UID 3 FLAGS (\\Seen \\Answered Important))\r\n"


def test_flag_change_during_fetch_of_the_same_message(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as a, raw_client(imap) as b:
        b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
        # A's FETCH FLAGS may answer from before B's change, but then the change follows.
        untagged = a.ok("FETCH 1 (FLAGS)")
        assert untagged[-1] == b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n" or untagged == [
            b"* 1 FETCH (FLAGS (\\Flagged))\r\n"]
        assert a.ok("NOOP") == []


def test_pop3_dele_and_quit_is_an_expunge_for_imap(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    with raw_client(imap) as a:
        pop = poplib.POP3(imap.server.host, imap.server.port("pop3"), timeout=10)
        pop.user(ALICE)
        pop.pass_(PASSWORD)
        pop.dele(2)
        assert a.ok("NOOP") == []  # nothing happens before QUIT (RFC 1939 6)
        pop.quit()
        assert a.ok("FETCH 1:3 (UID)")[:3] == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 2)\r\n",
                                               b"* 3 FETCH (UID 3)\r\n"]
        assert a.ok("NOOP") == [b"* 2 EXPUNGE\r\n"]
        assert uid_list(a) == [1, 3]


def test_other_session_moves_a_message_away(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2))
    with raw_client(imap) as a, raw_client(imap, "Archive") as archive:
        with raw_client(imap) as b:
            b.ok("MOVE 1 Archive")
        assert a.ok("NOOP") == [b"* 1 EXPUNGE\r\n"]
        assert archive.ok("NOOP") == [b"* 1 EXISTS\r\n"]
        assert archive.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0].endswith(
            b"Subject: message 1\r\n\r\n)\r\n")


# ----- UIDs are never reused ---------------------------------------------------------------


def status_items(c: RawImap, name: str) -> dict[str, int]:
    (resp,) = c.ok(f"STATUS {name} (UIDNEXT UIDVALIDITY MESSAGES)")
    words = resp.rstrip(b")\r\n").split(b"(")[1].split()
    return {k.decode(): int(v) for k, v in zip(words[::2], words[1::2], strict=True)}


def test_uids_are_never_reused_after_expunge(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    with raw_client(imap) as a:
        a.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        imap.deliver(message(4))
        assert a.ok("NOOP") == [b"* 1 EXISTS\r\n"]
        assert uid_list(a) == [4]
        _, tagged = a.command(b"APPEND INBOX {5+}\r\nhello")
        assert b"[APPENDUID " in tagged
        assert tagged.split(b"]")[0].endswith(b" 5")
        a.ok("UID STORE 5 +FLAGS.SILENT (\\Deleted)")
        a.ok("UID EXPUNGE 5")
        a.ok("UNSELECT")
        assert status_items(a, "INBOX")["UIDNEXT"] == 6


def test_uids_are_never_reused_after_a_restart(server_factory: Any) -> None:
    first = server_factory(FAST_AUTH)
    first.add_account(ALICE, PASSWORD)
    env = ImapEnv(first, first.store.get_account(ALICE))
    env.deliver(message(1), message(2), message(3))
    with raw_client(env) as a:
        a.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")  # the highest UID goes too
        a.ok("EXPUNGE")
        a.ok("UNSELECT")
        before = status_items(a, "INBOX")
    assert before["UIDNEXT"] == 4
    first.stop()

    second = server_factory({**FAST_AUTH, "MAILWRIGHT_DATA": str(first.data_dir)})
    env = ImapEnv(second, second.store.get_account(ALICE))
    with raw_client(env) as a:
        untagged = a.ok("EXAMINE INBOX")
        assert b"* OK [UIDVALIDITY %d] " % before["UIDVALIDITY"] in b"".join(untagged)
        assert b"* OK [UIDNEXT 4] " in b"".join(untagged)
        env.deliver(message(4))
        assert a.ok("NOOP") == [b"* 2 EXISTS\r\n"]
        assert uid_list(a) == [1, 4]


def test_selected_mailbox_deleted_by_another_session(imap: ImapEnv) -> None:
    """Every command on a mailbox another session deleted ends the session with BYE (as
    Dovecot does), never with NO [SERVERBUG] or a silent close."""
    for cmd in ("STORE 1 +FLAGS (\\Seen)", "EXPUNGE", "UID EXPUNGE 1", "FETCH 1 (BODY[])",
                "COPY 1 INBOX", "MOVE 1 INBOX", "UID SEARCH FROM bob", "NOOP"):
        with raw_client(imap, None) as b:
            b.ok("CREATE Work")
            b.ok("APPEND Work (\\Deleted) {5+}\r\nhello")
            a = raw_client(imap, "Work")
            b.ok("DELETE Work")
        a.send(cmd)
        responses: list[bytes] = []
        try:
            while True:
                responses.append(a.read_response())
        except ConnectionError:
            pass
        finally:
            a.file.close()
            a.sock.close()
        assert responses, cmd
        assert responses[-1].startswith(b"* BYE "), (cmd, responses)
        assert not any(b"SERVERBUG" in r for r in responses), (cmd, responses)
