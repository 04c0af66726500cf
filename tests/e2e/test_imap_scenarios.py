"""End-to-end IMAP scenarios over real sockets: what a user's devices do with one account.

- Bob sends with smtplib (submission, STARTTLS, AUTH); Alice reads with imaplib: SEARCH (the
  full-text index too), FETCH of ENVELOPE, BODYSTRUCTURE and parts, flags and keywords.
- A mail client saves to Sent and Drafts with APPEND and reads it back byte for byte.
- Two devices: one in IDLE sees what the other device and SMTP do, as it happens.
- IMAP and POP3 on the same INBOX: a POP3 DELE+QUIT is an IMAP EXPUNGE and the other way round.
- A restart (graceful, and kill -9 of the real process) keeps UIDVALIDITY and never reuses UIDs.
"""

from __future__ import annotations

import contextlib
import email
import imaplib
import os
import poplib
import re
import signal
import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import pytest
from support.serve_process import cli, serve_env, start

RunningServer = Any  # tests/conftest.py's RunningServer (tests/ is not a package)
ServerFactory = Any

ALICE, ALICE_PW = "alice@example.test", "alice-password"
BOB, BOB_PW = "bob@example.test", "bob-password"
# Generous bounds for "as it happens" (the design target is 100 ms; CI machines are slow).
PUSH_TIMEOUT = 10.0
# Socket timeouts of the Python clients: far above any answer, but a hang fails the test.
SOCKET_TIMEOUT = 30.0


# ----- helpers ------------------------------------------------------------------------------
def submit(server: RunningServer, message: EmailMessage, user: str = BOB,
           password: str = BOB_PW) -> None:
    """Send like a mail client: submission port, STARTTLS, AUTH, then the message."""
    with smtplib.SMTP(server.host, server.port("submission"), timeout=SOCKET_TIMEOUT) as smtp:
        smtp.starttls(context=server.ssl_context)
        smtp.login(user, password)
        assert smtp.send_message(message) == {}


def mx(host: str, port: int, subject: str, to: str = ALICE) -> None:
    """Mail from the outside world through the MX listener (no AUTH)."""
    with smtplib.SMTP(host, port, timeout=SOCKET_TIMEOUT) as smtp:
        raw = f"From: someone@remote.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhi\r\n"
        assert smtp.sendmail("someone@remote.test", [to], raw) == {}


def imap_starttls(server: RunningServer, user: str = ALICE,
                  password: str = ALICE_PW) -> imaplib.IMAP4:
    client = imaplib.IMAP4(server.host, server.port("imap"), timeout=SOCKET_TIMEOUT)
    client.starttls(ssl_context=server.ssl_context)
    client.login(user, password)
    return client


def imaps(server: RunningServer, user: str = ALICE, password: str = ALICE_PW) -> imaplib.IMAP4:
    client = imaplib.IMAP4_SSL(server.host, server.port("imaps"),
                               ssl_context=server.ssl_context, timeout=SOCKET_TIMEOUT)
    client.login(user, password)
    return client


def ok(result: tuple[str, list[Any]]) -> list[Any]:
    typ, data = result
    assert typ == "OK", data
    return data


def numbers(data: list[Any]) -> list[int]:
    """SEARCH / UID SEARCH data -> [int]."""
    return [int(n) for n in data[0].split()] if data and data[0] else []


def status(client: imaplib.IMAP4, mailbox: str) -> dict[str, int]:
    [line] = ok(client.status(mailbox, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"))
    items = re.search(rb"\((.*)\)", line)
    assert items is not None, line
    words = items.group(1).split()
    return {words[i].decode(): int(words[i + 1]) for i in range(0, len(words), 2)}


def uids(client: imaplib.IMAP4) -> list[int]:
    return numbers(ok(client.uid("SEARCH", "ALL")))


def flags_of(client: imaplib.IMAP4, uid: int) -> set[str]:
    data = ok(client.uid("FETCH", str(uid), "(FLAGS)"))
    m = re.search(rb"FLAGS \(([^)]*)\)", data[0])
    assert m is not None, data
    return set(m.group(1).decode().split())


class IdleClient:
    """A raw IMAP client for IDLE (imaplib has no IDLE before Python 3.14)."""

    def __init__(self, server: RunningServer) -> None:
        raw = socket.create_connection((server.host, server.port("imaps")), timeout=SOCKET_TIMEOUT)
        self.sock = server.ssl_context.wrap_socket(raw, server_hostname=server.host)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"* OK")
        self.n = 0

    def command(self, text: str) -> list[bytes]:
        self.n += 1
        tag = f"i{self.n}".encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        lines = []
        while not (line := self.file.readline()).startswith(tag + b" "):
            assert line, "connection closed"
            lines.append(line)
        assert line.startswith(tag + b" OK"), (text, lines, line)
        return lines

    def idle(self) -> None:
        self.n += 1
        self.idle_tag = f"i{self.n}".encode()
        self.sock.sendall(self.idle_tag + b" IDLE\r\n")
        assert self.file.readline().startswith(b"+ ")

    def wait_for(self, pattern: bytes) -> tuple[bytes, float]:
        """The first untagged line matching `pattern` and how long it took to come."""
        start = time.monotonic()
        self.sock.settimeout(PUSH_TIMEOUT)
        try:
            while True:
                line = self.file.readline()
                assert line, "connection closed"
                if re.search(pattern, line):
                    return line, time.monotonic() - start
        finally:
            self.sock.settimeout(SOCKET_TIMEOUT)

    def done(self) -> list[bytes]:
        self.sock.sendall(b"DONE\r\n")
        lines = []
        while not (line := self.file.readline()).startswith(self.idle_tag + b" "):
            assert line, "connection closed"
            lines.append(line)
        assert line.startswith(self.idle_tag + b" OK"), line
        return lines

    def close(self) -> None:
        with contextlib.suppress(OSError, AssertionError):
            self.command("LOGOUT")
        self.file.close()
        self.sock.close()


@pytest.fixture
def users(server: RunningServer) -> None:
    server.add_account(ALICE, ALICE_PW)
    server.add_account(BOB, BOB_PW)


# ----- 0. The README's imaplib tutorial, verbatim but for the ports ---------------------------
README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_imaplib_tutorial(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.add_account(ALICE, ALICE_PW)
    bob = server.add_account(BOB, BOB_PW)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    [code] = [b for b in blocks if "imaplib.IMAP4(" in b]
    code = code.replace("2525", str(server.port("smtp"))).replace(
        "2143", str(server.port("imap")))
    exec(compile(code, str(README), "exec"), {})  # our own README
    out = capsys.readouterr().out
    for name in ("INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"):
        assert name in out
    assert "Subject: Hello over IMAP" in out
    assert "Hi Bob!" in out
    records = server.store.mailbox_messages(server.store.mailbox(bob.id, "INBOX").id)
    assert [sorted(m.flags) for m in records] == [["\\Flagged", "\\Seen"]]
    sent = server.store.mailbox_messages(server.store.mailbox(bob.id, "Sent").id)
    assert [sorted(m.flags) for m in sent] == [["\\Seen"]]


# ----- 1. SMTP in, IMAP out -------------------------------------------------------------------
ATTACHMENT = bytes(range(1, 256)) * 40  # binary, no NUL: imaplib cannot read literal8


def report_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Bob <{BOB}>"
    msg["To"] = f"Alice <{ALICE}>"
    msg["Subject"] = "Quarterly report"
    msg["Message-ID"] = "<report-1@example.test>"
    msg.set_content("Hi Alice,\n\nthe zebrafish numbers are attached.\n")
    msg.add_attachment(ATTACHMENT, maintype="application", subtype="octet-stream",
                       filename="numbers.bin")
    return msg


def test_submission_then_imap_search_fetch_and_flags(server: RunningServer, users: None) -> None:
    submit(server, report_message())
    lunch = EmailMessage()
    lunch["From"], lunch["To"], lunch["Subject"] = BOB, ALICE, "Lunch on Friday?"
    lunch.set_content("Usual place at noon.\n")
    submit(server, lunch)

    client = imap_starttls(server)
    assert ok(client.select("INBOX")) == [b"2"]
    assert numbers(ok(client.search(None, "UNSEEN"))) == [1, 2]
    assert numbers(ok(client.search(None, "FROM", BOB))) == [1, 2]
    assert numbers(ok(client.search(None, "SUBJECT", "report"))) == [1]
    assert numbers(ok(client.search(None, "TEXT", "zebrafish"))) == [1]  # FTS index
    assert numbers(ok(client.search(None, "BODY", "ZEBRAFISH"))) == [1]  # case-insensitive
    assert numbers(ok(client.search(None, "BODY", "Quarterly"))) == []  # BODY: no headers
    assert numbers(ok(client.search("UTF-8", "OR", "SUBJECT", "lunch", "BODY", "noon"))) == [2]
    assert numbers(ok(client.search(None, "LARGER", "5000"))) == [1]

    data = ok(client.fetch("1", "(ENVELOPE BODYSTRUCTURE RFC822.SIZE)"))
    meta = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert b'"Quarterly report"' in meta
    assert b'("Bob" NIL "bob" "example.test")' in meta
    assert b'"<report-1@example.test>"' in meta
    assert b'BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" ' in meta
    assert b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" ' in meta
    assert b'("ATTACHMENT" ("FILENAME" "numbers.bin"))' in meta
    assert b'"MIXED" ("BOUNDARY" ' in meta

    header = ok(client.fetch("1", "(BODY.PEEK[HEADER])"))[0][1]
    assert header.startswith(b"Return-Path: <bob@example.test>\r\nReceived: ")
    part2 = ok(client.fetch("1", "(BODY.PEEK[2])"))[0][1]
    assert email.message_from_bytes(b"Content-Transfer-Encoding: base64\r\n\r\n" + part2) \
        .get_payload(decode=True) == ATTACHMENT
    binary = ok(client.fetch("1", "(BINARY.PEEK[2])"))[0][1]
    assert binary == ATTACHMENT
    assert b"BINARY.SIZE[2] %d" % len(ATTACHMENT) in ok(client.fetch("1", "(BINARY.SIZE[2])"))[0]
    text = ok(client.fetch("1", "(BODY.PEEK[1])"))[0][1]
    assert b"zebrafish numbers" in text
    assert flags_of(client, 1) == set()  # PEEK leaves \Seen alone

    data = ok(client.fetch("1", "(BODY[TEXT])"))  # not PEEK: sets \Seen and says so
    assert data[-1] == b" FLAGS (\\Seen))"
    assert numbers(ok(client.search(None, "SEEN"))) == [1]
    ok(client.store("2", "+FLAGS", "(\\Flagged $Important)"))
    assert numbers(ok(client.search(None, "FLAGGED"))) == [2]
    assert numbers(ok(client.search(None, "KEYWORD", "$Important"))) == [2]
    ok(client.store("2", "-FLAGS", "(\\Flagged)"))
    assert flags_of(client, 2) == {"$Important"}

    # Another device sees the same state at once.
    other = imaps(server)
    assert status(other, "INBOX")["UNSEEN"] == 1
    ok(other.select("INBOX", readonly=True))
    assert flags_of(other, 1) == {"\\Seen"}
    other.logout()
    client.logout()


# ----- 2. APPEND to Sent and Drafts -----------------------------------------------------------
def test_append_to_sent_and_drafts_then_read_back(server: RunningServer, users: None) -> None:
    client = imaps(server)
    listing = ok(client.list())
    [sent] = [line for line in listing if line.endswith(b' "/" Sent')]
    assert b"\\Sent" in sent, listing

    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"], msg["To"], msg["Subject"] = ALICE, BOB, "Re: Lunch on Friday?"
    msg.set_content("Yes, see you there.\n")
    raw = msg.as_bytes()
    when = imaplib.Time2Internaldate(1_700_000_000)  # 14-Nov-2023 22:13:20 +0000
    typ, data = client.append("Sent", "(\\Seen)", when, raw)
    assert typ == "OK", data
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert m is not None, data
    uidvalidity, uid = int(m.group(1)), int(m.group(2))

    # A draft with a 3 MB attachment: streamed in, read back byte for byte.
    draft = EmailMessage(policy=SMTP_POLICY)
    draft["From"], draft["Subject"] = ALICE, "Draft with photos"
    draft.set_content("unfinished\n")
    draft.add_attachment(os.urandom(3 * 1024 * 1024), maintype="image", subtype="jpeg",
                         filename="photo.jpg")
    draft_raw = draft.as_bytes()
    ok(client.append("Drafts", "(\\Draft)", None, draft_raw))

    typ, data = client.append("Does-Not-Exist", None, None, raw)
    assert typ == "NO"
    assert b"[TRYCREATE]" in data[0]

    ok(client.select("Sent"))
    assert status(client, "Sent")["UIDVALIDITY"] == uidvalidity
    fetched = ok(client.uid("FETCH", str(uid), "(RFC822 FLAGS INTERNALDATE)"))
    assert fetched[0][1] == raw
    items = fetched[0][0] + fetched[1]  # imaplib splits the response around the literal
    assert b"\\Seen" in items
    assert imaplib.Internaldate2tuple(items) == time.localtime(1_700_000_000)
    ok(client.select("Drafts"))
    fetched = ok(client.fetch("1", "(FLAGS BODY.PEEK[])"))
    assert fetched[0][1] == draft_raw
    assert b"\\Draft" in fetched[0][0]
    client.logout()


def test_folder_names_modified_utf7_then_utf8(server: RunningServer, users: None) -> None:
    """An older client creates "Entwürfe/2024" in modified UTF-7; a client that ENABLEs
    UTF8=ACCEPT sees and uses the same folder under its UTF-8 name (RFC 3501 5.1.3, RFC 6855)."""
    old = imaps(server)
    ok(old.create('"Entw&APw-rfe/2024"'))
    assert ok(old.list('""', '"Entw*"')) == [b'(\\HasChildren) "/" Entw&APw-rfe',
                                            b'(\\HasNoChildren) "/" Entw&APw-rfe/2024']
    new = imaps(server)
    ok(new.enable("UTF8=ACCEPT"))
    assert new.response("ENABLED")[1] == [b"UTF8=ACCEPT"]
    names = ok(new.list('""', "*"))
    assert b'(\\HasNoChildren) "/" "Entw\xc3\xbcrfe/2024"' in names, names
    ok(new.append('"Entwürfe/2024"', None, None, "Subject: Grüße\r\n\r\nÄ\r\n".encode()))
    ok(new.create('"Été"'))
    new.logout()
    assert b"(MESSAGES 1)" in ok(old.status('"Entw&APw-rfe/2024"', "(MESSAGES)"))[0]
    assert b'(\\HasNoChildren) "/" &AMk-t&AOk-' in ok(old.list('""', "*"))
    old.logout()


# ----- 3. Two devices, one in IDLE --------------------------------------------------------------
def test_idle_device_sees_delivery_flags_and_expunge(server: RunningServer, users: None) -> None:
    phone = IdleClient(server)
    phone.command(f'LOGIN {ALICE} "{ALICE_PW}"')
    phone.command("SELECT INBOX")
    phone.idle()
    try:
        mx(server.host, server.port("smtp"), "pushed to the phone")
        line, took = phone.wait_for(rb"^\* 1 EXISTS")
        assert took < PUSH_TIMEOUT

        laptop = imap_starttls(server)
        ok(laptop.select("INBOX"))
        ok(laptop.store("1", "+FLAGS", "(\\Seen)"))
        line, _ = phone.wait_for(rb"^\* 1 FETCH")
        assert b"\\Seen" in line
        assert b"UID 1" in line

        ok(laptop.store("1", "+FLAGS", "(\\Deleted)"))
        ok(laptop.expunge())
        phone.wait_for(rb"^\* 1 EXPUNGE")
        laptop.logout()
    finally:
        phone.done()
        phone.close()


# ----- 4. IMAP and POP3 on the same INBOX -----------------------------------------------------
def pop3(server: RunningServer, user: str = ALICE, password: str = ALICE_PW) -> poplib.POP3:
    client = poplib.POP3(server.host, server.port("pop3"), timeout=SOCKET_TIMEOUT)
    client.stls(context=server.ssl_context)
    client.user(user)
    client.pass_(password)
    return client


def pop3_when_free(server: RunningServer) -> poplib.POP3:
    """Log in once the server has noticed a dropped session and released its maildrop lock
    (until then a new session gets -ERR [IN-USE], RFC 2449 8.1.2)."""
    deadline = time.monotonic() + PUSH_TIMEOUT
    while True:
        try:
            return pop3(server)
        except poplib.error_proto as exc:
            if b"[IN-USE]" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def uidl(client: poplib.POP3) -> dict[int, bytes]:
    _, lines, _ = client.uidl()
    return {int(n): u for n, u in (line.split() for line in lines)}


def test_imap_and_pop3_share_the_inbox(server: RunningServer, users: None) -> None:
    for n in range(1, 4):
        mx(server.host, server.port("smtp"), f"shared-{n}")
    client = imap_starttls(server)
    assert ok(client.select("INBOX")) == [b"3"]
    assert uids(client) == [1, 2, 3]

    # POP3 DELE + QUIT: the IMAP session is told with an EXPUNGE at its next NOOP.
    pop = pop3(server)
    before = uidl(pop)
    assert len(before) == 3
    _, lines, _ = pop.retr(1)
    assert b"Subject: shared-1" in lines
    pop.dele(1)
    pop.quit()
    ok(client.noop())
    assert client.response("EXPUNGE")[1] == [b"1"]
    assert uids(client) == [2, 3]

    # A POP3 session that drops without QUIT deletes nothing.
    pop = pop3(server)
    pop.dele(1)
    pop.file.close()
    pop.sock.close()
    pop3_again = pop3_when_free(server)
    assert pop3_again.stat()[0] == 2
    pop3_again.quit()
    ok(client.noop())
    assert client.response("EXPUNGE")[1] == [None]
    assert uids(client) == [2, 3]

    # IMAP EXPUNGE: POP3 no longer lists the message; the other keeps its UIDL.
    ok(client.uid("STORE", "3", "+FLAGS", "(\\Deleted)"))
    ok(client.expunge())
    pop = pop3(server)
    after = uidl(pop)
    assert list(after.values()) == [before[2]]
    _, lines, _ = pop.retr(1)
    assert b"Subject: shared-2" in lines
    pop.quit()
    client.logout()


def test_pop3_keep_policy_leaves_the_message_for_imap(server: RunningServer) -> None:
    server.add_account("carol@example.test", "carol-pw", pop3_policy="keep")
    mx(server.host, server.port("smtp"), "kept-for-imap", to="carol@example.test")
    pop = pop3(server, "carol@example.test", "carol-pw")
    pop.retr(1)
    pop.dele(1)
    pop.quit()
    pop = pop3(server, "carol@example.test", "carol-pw")
    assert pop.stat()[0] == 0
    pop.quit()
    client = imaps(server, "carol@example.test", "carol-pw")
    assert ok(client.select("INBOX")) == [b"1"]
    data = ok(client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert data[0][1].strip() == b"Subject: kept-for-imap"
    client.logout()


# ----- 5. Restarts: UIDVALIDITY stays, UIDs are never reused ------------------------------------
def test_graceful_restart_keeps_uidvalidity_and_uids(server_factory: ServerFactory) -> None:
    first = server_factory()
    first.add_account(ALICE, ALICE_PW)
    for n in range(1, 4):
        mx(first.host, first.port("smtp"), f"before-restart-{n}")
    client = imaps(first)
    ok(client.create("Projects"))
    for n in range(2):
        ok(client.append("Projects", None, None, f"Subject: project-{n}\r\n\r\nx\r\n".encode()))
    ok(client.select("INBOX"))
    ok(client.uid("STORE", "3", "+FLAGS", "(\\Deleted)"))  # the highest UID goes away
    ok(client.expunge())
    ok(client.select("Projects"))
    ok(client.uid("STORE", "2", "+FLAGS", "(\\Deleted)"))
    ok(client.expunge())
    ok(client.unselect())
    inbox, projects = status(client, "INBOX"), status(client, "Projects")
    assert (inbox["UIDNEXT"], projects["UIDNEXT"]) == (4, 3)
    client.logout()
    pop = pop3(first)
    uidls = uidl(pop)
    pop.quit()
    first.stop()

    second = server_factory({"MAILWRIGHT_DATA": str(first.data_dir)})
    client = imaps(second)
    assert status(client, "INBOX") == inbox
    assert status(client, "Projects") == projects
    mx(second.host, second.port("smtp"), "after-restart")
    typ, data = client.append("Projects", None, None, b"Subject: project-2\r\n\r\nx\r\n")
    assert typ == "OK"
    assert b"[APPENDUID %d 3]" % projects["UIDVALIDITY"] in data[0]
    ok(client.select("INBOX"))
    assert uids(client) == [1, 2, 4]
    ok(client.select("Projects"))
    assert uids(client) == [1, 3]
    client.logout()
    pop = pop3(second)
    assert list(uidl(pop).values())[:2] == list(uidls.values())
    pop.quit()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start `mailwright serve` on tmp_path/data (smtp and imap only); returns (proc, ports)."""
    data = tmp_path / "data"
    procs: list[subprocess.Popen[bytes]] = []

    def start_server() -> tuple[subprocess.Popen[bytes], dict[str, int]]:
        proc, ports = start(data, serve_env("smtp", "imap"))
        procs.append(proc)
        return proc, ports

    cli(data, "domain", "add", "example.test")
    cli(data, "account", "add", ALICE, "--password-stdin", stdin=ALICE_PW + "\n")
    yield start_server
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def plain_imap(port: int) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=SOCKET_TIMEOUT)
    client.login(ALICE, ALICE_PW)  # plaintext LOGIN is allowed on loopback
    return client


def test_kill_9_keeps_uidvalidity_and_uids(serve: Any) -> None:
    proc, ports = serve()
    for n in range(1, 4):
        mx("127.0.0.1", ports["smtp"], f"before-crash-{n}")
    client = plain_imap(ports["imap"])
    ok(client.select("INBOX"))
    ok(client.uid("STORE", "2:3", "+FLAGS", "(\\Deleted)"))
    ok(client.expunge())
    before = status(client, "INBOX")
    assert before["MESSAGES"] == 1
    assert before["UIDNEXT"] == 4
    client.shutdown()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    proc, ports = serve()
    client = plain_imap(ports["imap"])
    assert status(client, "INBOX") == before
    mx("127.0.0.1", ports["smtp"], "after-crash")
    ok(client.select("INBOX"))
    assert uids(client) == [1, 4]
    data = ok(client.uid("FETCH", "4", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert data[0][1].strip() == b"Subject: after-crash"
    client.logout()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
