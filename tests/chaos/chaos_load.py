"""The load, the ledger of acknowledgments and the verification of the kill -9 chaos test.

Who does what (one account per kind of work, so that every expectation is exact):
- MX senders (smtplib, port 25 role): messages to 1-3 of alice, bob, carol. Ack: 250 after DATA.
- a submission sender (dave, AUTH): to far@remote.test, the queue relays it to the loopback
  peer (sometimes carol too). Ack: 250 after DATA; then the message must stay queued or reach
  the peer (twice is allowed, never zero: RFC 5321 4.5.4).
- an IMAP client (alice): APPEND to Archive (ack: OK [APPENDUID]), UID STORE +FLAGS (OK),
  UID STORE \\Deleted + UID EXPUNGE (OK), UID MOVE to Trash (untagged OK [COPYUID] + OK).
- a POP3 client (bob): RETR + DELE of a few messages, QUIT (ack: +OK: the deletes are done).

Every message carries a unique token in its Subject; the ledger keeps the bytes of every attempt
(so a message found stored must be whole even if never acknowledged) and what was acknowledged.
An operation whose answer was lost to the kill makes no promise either way: its message is
"uncertain" (may or may not be there) and the IMAP client leaves it alone from then on.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import itertools
import poplib
import random
import re
import smtplib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
DOMAIN = "example.test"
ALICE, BOB, CAROL, DAVE = (f"{n}@{DOMAIN}" for n in ("alice", "bob", "carol", "dave"))
ACCOUNTS = (ALICE, BOB, CAROL, DAVE)
MX_RECIPIENTS = (ALICE, BOB, CAROL)
REMOTE_DOMAIN = "remote.test"
REMOTE = f"far@{REMOTE_DOMAIN}"
TIMEOUT = 10.0
# Sizes of the generated messages: mostly small, some beyond blobs.WRITE_BUFFER (64 KB, the
# temp file is written before the end) and one beyond INLINE_FSYNC_MAX (256 KB, fsynced apart).
SIZES = (300, 2_000, 8_000, 90_000, 300_000)
SIZE_WEIGHTS = (40, 30, 20, 8, 2)
# The server runs with MAX_MESSAGE_SIZE; TOO_BIG is over it (refused with 552 after DATA).
MAX_MESSAGE_SIZE = 400_000
TOO_BIG = 500_000
NOBODY = f"nobody@{DOMAIN}"
FLAGS = ("\\Flagged", "\\Answered", "$Chaos1", "$Chaos2")

_TOKEN = re.compile(rb"\r\nSubject: (chaos-[a-z]+-\d+)\r\n")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_FIELD_LINE = re.compile(rb"(Return-Path|Received): |[ \t]")

IMAP_ERRORS = (OSError, EOFError, imaplib.IMAP4.error)


def password(address: str) -> str:
    return "pw-" + address.split("@")[0]


def token_of(raw: bytes) -> str | None:
    found = _TOKEN.search(raw)
    return found.group(1).decode() if found else None


def trace_only(prefix: bytes) -> bool:
    """True if `prefix` is nothing or only our own Return-Path/Received fields (smtp/session.py
    `_trace_headers`), which the server puts before the bytes it was given."""
    if not prefix:
        return True
    if not prefix.endswith(b"\r\n"):
        return False
    return all(_FIELD_LINE.match(line) for line in prefix[:-2].split(b"\r\n"))


def same_message(stored: bytes, sent: bytes) -> bool:
    """The stored bytes are what was sent, byte for byte, after our trace fields."""
    return stored.endswith(sent) and trace_only(stored[: len(stored) - len(sent)])


@dataclass
class ImapMessage:
    token: str
    flags: set[str]


@dataclass
class MailboxModel:
    """What alice's IMAP client was told about one mailbox."""

    uidvalidity: int | None = None
    present: dict[int, ImapMessage] = field(default_factory=dict)  # acknowledged, must be there
    gone: set[int] = field(default_factory=set)  # acknowledged expunge or move: must not be
    uncertain: set[int] = field(default_factory=set)  # its last operation got no answer
    max_uid: int = 0  # every UID ever seen in it (acknowledged or found on disk)


class Ledger:
    """Everything attempted and acknowledged, shared by the load threads (one lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._counter = itertools.count(1)
        self.attempted: dict[str, bytes] = {}
        self.delivered: dict[str, tuple[str, ...]] = {}  # token -> local accounts acknowledged
        self.remote: set[str] = set()  # relayed to the peer, acknowledged
        self.refused: set[str] = set()  # answered 5xx: must never be seen anywhere
        self.pop_deleted: set[str] = set()
        self.pop_uncertain: set[str] = set()
        self.imap = {"Archive": MailboxModel(), "Trash": MailboxModel()}
        self.acks: Counter[str] = Counter()
        self.violations: list[str] = []

    def new_message(
        self, kind: str, rng: random.Random, sender: str, size: int | None = None
    ) -> tuple[str, bytes]:
        with self.lock:
            token = f"chaos-{kind}-{next(self._counter)}"
        size = size or rng.choices(SIZES, SIZE_WEIGHTS)[0]
        head = (
            f"From: <{sender}>\r\nTo: <someone@{DOMAIN}>\r\nSubject: {token}\r\n"
            f"Message-ID: <{token}@chaos.test>\r\n\r\n"
        ).encode()
        line = f"{token} {rng.getrandbits(64):016x} the quick brown fox jumps\r\n".encode()
        body = head + line * max(1, (size - len(head)) // len(line))
        with self.lock:
            self.attempted[token] = body
        return token, body

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)


class ClosingPop3(poplib.POP3):
    """poplib.POP3 that closes its socket when the greeting never comes (a server killed
    mid-connect): the stdlib's constructor leaves it open, a ResourceWarning."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = self.file = None  # close() reads both
        try:
            super().__init__(host, port, timeout)
        except BaseException:
            self.close()
            raise


# ----- the load ------------------------------------------------------------------------------
class Load:
    """One round's client threads against one server process; `stop()` joins them."""

    def __init__(self, ports: dict[str, int], ledger: Ledger, seed: int) -> None:
        self.ports = ports
        self.ledger = ledger
        self.stopping = threading.Event()
        workers: list[Callable[[random.Random], None]] = [
            self._mx_lead, self._mx, self._submission, self._imap, self._pop3
        ]
        self.threads = [
            threading.Thread(target=self._guard, args=(w, random.Random(seed + i)), daemon=True)
            for i, w in enumerate(workers)
        ]
        self._working: dict[str, threading.Event] = {
            name: threading.Event() for name in ("smtp", "submission", "imap", "pop3")
        }

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def warm(self, timeout: float) -> None:
        """Wait until every kind of client had something acknowledged (logins done), so that
        the kill lands among operations, not among connection set-ups; at most `timeout`."""
        deadline = time.monotonic() + timeout
        for event in self._working.values():
            event.wait(max(0.0, deadline - time.monotonic()))

    def _acked(self, kind: str, worker: str, n: int = 1) -> None:
        """Count an acknowledgment (under the ledger's lock)."""
        self.ledger.acks[kind] += n
        self._working[worker].set()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(TIMEOUT * 3)
            if thread.is_alive():
                self.ledger.violation(f"{thread.name} did not stop")

    def _guard(self, worker: Callable[[random.Random], None], rng: random.Random) -> None:
        """Run `worker` until stopped; a failure is the kill (reconnect), unless it is ours."""
        while not self.stopping.is_set():
            try:
                worker(rng)
            except (OSError, EOFError, smtplib.SMTPException, imaplib.IMAP4.error,
                    poplib.error_proto):
                time.sleep(0.05)
            except Exception as exc:  # a bug of the test: report it, do not hang the round
                self.ledger.violation(f"{worker.__name__}: {exc!r}")
                return

    def _mx_lead(self, rng: random.Random) -> None:
        """An MX sender whose every session starts with one refusal of each kind, so that each
        round has some (the rest of the load is drawn at random)."""
        self._mx(rng, ["250", "550", "552"])

    def _mx(self, rng: random.Random, script: list[str] | None = None) -> None:
        script = list(script or [])
        with smtplib.SMTP(HOST, self.ports["smtp"], timeout=TIMEOUT) as client:
            while not self.stopping.is_set():
                rcpts = rng.sample(MX_RECIPIENTS, rng.randint(1, len(MX_RECIPIENTS)))
                chance = rng.random()
                if script:
                    chance = {"250": 1.0, "550": 0.0, "552": 0.04}[script.pop(0)]
                if chance < 0.03:
                    self._refused_at_rcpt(client, rng)
                    continue
                if chance < 0.05:
                    self._refused_after_data(client, rng, rcpts)
                    continue
                token, body = self.ledger.new_message("mx", rng, "sender@elsewhere.test")
                refused = client.sendmail("sender@elsewhere.test", rcpts, body)
                with self.ledger.lock:  # only after the 250 that ends DATA
                    self.ledger.delivered[token] = tuple(r for r in rcpts if r not in refused)
                    self._acked("smtp 250", "smtp")

    def _refused_at_rcpt(self, client: smtplib.SMTP, rng: random.Random) -> None:
        token, body = self.ledger.new_message("refused", rng, "sender@elsewhere.test")
        try:
            client.sendmail("sender@elsewhere.test", [NOBODY], body)
        except smtplib.SMTPRecipientsRefused:
            with self.ledger.lock:
                self.ledger.refused.add(token)
                self._acked("smtp refused (550)", "smtp")
            return
        self.ledger.violation(f"{token} for an unknown user was accepted")

    def _refused_after_data(
        self, client: smtplib.SMTP, rng: random.Random, rcpts: list[str]
    ) -> None:
        """A message over the size limit, announced without SIZE: refused after the whole
        DATA (552) while its temp file was written beyond WRITE_BUFFER."""
        token, body = self.ledger.new_message("toobig", rng, "sender@elsewhere.test", TOO_BIG)
        client.mail("sender@elsewhere.test")
        for rcpt in rcpts:
            client.rcpt(rcpt)
        code, _ = client.data(body)
        client.rset()
        if code == 552:
            with self.ledger.lock:
                self.ledger.refused.add(token)
                self._acked("smtp refused (552)", "smtp")
        else:
            self.ledger.violation(f"{token} over the size limit answered {code}")

    def _submission(self, rng: random.Random) -> None:
        with smtplib.SMTP(HOST, self.ports["submission"], timeout=TIMEOUT) as client:
            client.login(DAVE, password(DAVE))
            while not self.stopping.is_set():
                local = (CAROL,) if rng.random() < 0.3 else ()
                token, body = self.ledger.new_message("out", rng, DAVE)
                client.sendmail(DAVE, [REMOTE, *local], body)
                with self.ledger.lock:
                    self.ledger.remote.add(token)
                    if local:
                        self.ledger.delivered[token] = local
                    self._acked("submission 250", "submission")

    def _pop3(self, rng: random.Random) -> None:
        ledger = self.ledger
        pop = ClosingPop3(HOST, self.ports["pop3"], TIMEOUT)
        try:
            pop.user(BOB)
            pop.pass_(password(BOB))
            count, _ = pop.stat()
            tokens: list[str] = []
            for number in rng.sample(range(1, count + 1), min(count, rng.randint(1, 4))):
                _, lines, _ = pop.retr(number)
                raw = b"\r\n".join(lines) + b"\r\n"
                token = token_of(raw)
                with ledger.lock:
                    sent = ledger.attempted.get(token or "")
                if token is None or sent is None or not same_message(raw, sent):
                    ledger.violation(f"POP3 RETR of {token} gave other bytes than were sent")
                    continue
                pop.dele(number)
                tokens.append(token)
            with ledger.lock:
                ledger.pop_uncertain.update(tokens)
            pop.quit()  # +OK: the deletes are committed (RFC 1939 UPDATE state)
            with ledger.lock:
                ledger.pop_uncertain.difference_update(tokens)
                ledger.pop_deleted.update(tokens)
                self._acked("pop3 QUIT +OK", "pop3")
                self._acked("pop3 deletes", "pop3", len(tokens))
        finally:
            pop.close()
        self.stopping.wait(rng.uniform(0.05, 0.2))  # let mail pile up a little

    # ----- IMAP (alice) ---------------------------------------------------------------------------
    def _imap(self, rng: random.Random) -> None:
        imap = imaplib.IMAP4(HOST, self.ports["imap"], timeout=TIMEOUT)
        try:
            imap.login(ALICE, password(ALICE))
            for name in ("Trash", "Archive"):  # after a restart: same UIDVALIDITY, UIDNEXT ahead
                typ, data = imap.status(name, "(UIDVALIDITY UIDNEXT)")
                if typ == "OK":
                    self._check_status(name, data[0] or b"")
            imap.select("Archive")
            ops = (self._append, self._store, self._expunge, self._move)
            # Each session starts with one of each (so that each round has some), then draws.
            script = [self._append, self._append, self._store, self._move, self._expunge]
            while not self.stopping.is_set():
                op = script.pop(0) if script else rng.choices(ops, (4, 3, 1, 1))[0]
                op(imap, rng)
                imap.untagged_responses.clear()
        finally:
            with contextlib.suppress(OSError):
                imap.shutdown()

    def _check_status(self, name: str, data: bytes | str) -> None:
        raw = data if isinstance(data, bytes) else data.encode()
        values = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT) (\d+)", raw))
        validity, uidnext = int(values[b"UIDVALIDITY"]), int(values[b"UIDNEXT"])
        with self.ledger.lock:
            model = self.ledger.imap[name]
            if model.uidvalidity is None:
                model.uidvalidity = validity
            elif model.uidvalidity != validity:
                self.ledger.violations.append(f"{name}: UIDVALIDITY {model.uidvalidity} -> "
                                              f"{validity} after a restart")
            if uidnext <= model.max_uid:
                self.ledger.violations.append(f"{name}: UIDNEXT {uidnext} after a restart, but "
                                              f"UID {model.max_uid} was given before")

    def _new_uid(self, name: str, validity: int, uid: int) -> MailboxModel:
        """Check a UID the server just gave (under the lock): same UIDVALIDITY, above all."""
        model = self.ledger.imap[name]
        if model.uidvalidity is None:
            model.uidvalidity = validity
        if validity != model.uidvalidity:
            self.ledger.violations.append(f"{name}: UIDVALIDITY {validity}, was "
                                          f"{model.uidvalidity}")
        if uid <= model.max_uid:
            self.ledger.violations.append(f"{name}: new UID {uid} not above {model.max_uid}")
        model.max_uid = max(model.max_uid, uid)
        return model

    def _append(self, imap: imaplib.IMAP4, rng: random.Random) -> None:
        token, body = self.ledger.new_message("imap", rng, ALICE)
        flag = rng.choice(("", "\\Seen", "$Appended"))
        typ, data = imap.append("Archive", flag or None, None, body)
        found = _APPENDUID.search(data[-1] or b"") if typ == "OK" else None
        if found is None:
            return  # a NO (say, storage unavailable) acknowledges nothing
        with self.ledger.lock:
            model = self._new_uid("Archive", int(found.group(1)), int(found.group(2)))
            model.present[int(found.group(2))] = ImapMessage(token, {flag} if flag else set())
            self._acked("imap APPEND", "imap")

    def _pick(self, rng: random.Random) -> int | None:
        with self.ledger.lock:
            present = self.ledger.imap["Archive"].present
            return rng.choice(list(present)) if present else None

    def _store(self, imap: imaplib.IMAP4, rng: random.Random) -> None:
        uid = self._pick(rng)
        if uid is None:
            return
        flag = rng.choice(FLAGS)
        typ, _ = imap.uid("STORE", str(uid), "+FLAGS.SILENT", f"({flag})")
        if typ == "OK":
            with self.ledger.lock:
                message = self.ledger.imap["Archive"].present.get(uid)
                if message is not None:
                    message.flags.add(flag)
                self._acked("imap STORE", "imap")

    def _forget(self, uid: int) -> None:
        """Its next operation may be lost: from now on no promise either way."""
        with self.ledger.lock:
            model = self.ledger.imap["Archive"]
            model.present.pop(uid, None)
            model.uncertain.add(uid)

    def _expunge(self, imap: imaplib.IMAP4, rng: random.Random) -> None:
        uid = self._pick(rng)
        if uid is None:
            return
        self._forget(uid)
        typ, _ = imap.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        if typ != "OK":
            return
        typ, _ = imap.uid("EXPUNGE", str(uid))
        if typ == "OK":
            with self.ledger.lock:
                model = self.ledger.imap["Archive"]
                model.uncertain.discard(uid)
                model.gone.add(uid)
                self._acked("imap EXPUNGE", "imap")

    def _move(self, imap: imaplib.IMAP4, rng: random.Random) -> None:
        uid = self._pick(rng)
        if uid is None:
            return
        with self.ledger.lock:
            message = self.ledger.imap["Archive"].present[uid]
        self._forget(uid)
        imap.untagged_responses.pop("COPYUID", None)
        typ, _ = imap.uid("MOVE", str(uid), "Trash")
        codes = imap.untagged_responses.pop("COPYUID", [])
        if typ != "OK" or not codes:
            return
        validity, source, dest = (codes[-1] or b"").split()
        if int(source) != uid:
            self.ledger.violation(f"MOVE of UID {uid} answered COPYUID for {source!r}")
            return
        with self.ledger.lock:
            archive = self.ledger.imap["Archive"]
            archive.uncertain.discard(uid)
            archive.gone.add(uid)
            trash = self._new_uid("Trash", int(validity), int(dest))
            trash.present[int(dest)] = ImapMessage(message.token, set(message.flags))
            self._acked("imap MOVE", "imap")


# ----- verification on disk (the server is down) -----------------------------------------------
@dataclass
class MailboxHistory:
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    seen: dict[int, str] = field(default_factory=dict)  # uid -> blob, ever seen
    vanished: set[int] = field(default_factory=set)


@dataclass
class Verifier:
    """Compares the data directory with the ledger after each kill; keeps the UID history."""

    data_dir: Path
    ledger: Ledger
    history: dict[tuple[str, str], MailboxHistory] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)  # blob -> bytes (immutable)
    checked: int = 0  # acknowledged facts checked, all rounds together

    def _read(self, blob: str) -> bytes:
        raw = self.contents.get(blob)
        if raw is None:
            raw = (self.data_dir / "blobs" / blob[:2] / blob).read_bytes()
            if hashlib.sha256(raw).hexdigest() != blob:
                raise AssertionError(f"blob {blob} does not hold its content")
            self.contents[blob] = raw
        return raw

    def verify(self, peer_messages: list[bytes]) -> list[str]:
        """Every violation found (empty: all good); also the ledger's own."""
        ledger = self.ledger
        problems = list(ledger.violations)
        ledger.violations.clear()
        conn = sqlite3.connect(self.data_dir / "mailwright.db")
        try:
            boxes = conn.execute(
                "SELECT b.id, a.address, b.name, b.uidvalidity, b.uidnext, b.highestmodseq "
                "FROM mailboxes b JOIN accounts a ON a.id = b.account_id"
            ).fetchall()
            rows = conn.execute("SELECT mailbox_id, uid, blob, flags FROM messages").fetchall()
            queued = [blob for (blob,) in conn.execute("SELECT blob FROM queue")]
        finally:
            conn.close()
        by_box: dict[int, dict[int, tuple[str, str]]] = {}
        for mailbox_id, uid, blob, flags in rows:
            by_box.setdefault(mailbox_id, {})[uid] = (blob, flags)
        where: dict[str, list[tuple[str, str]]] = {}  # token -> [(account, mailbox)]
        with ledger.lock:
            for mailbox_id, address, name, validity, uidnext, modseq in boxes:
                messages = by_box.get(mailbox_id, {})
                problems += self._uids(address, name, validity, uidnext, modseq, messages)
                for uid, (blob, flags) in messages.items():
                    raw = self._read(blob)
                    token = token_of(raw)
                    if token is None:
                        continue
                    where.setdefault(token, []).append((address, name))
                    sent = ledger.attempted.get(token)
                    if sent is None or not same_message(raw, sent):
                        problems.append(f"{address}/{name} UID {uid}: {token} is not whole")
                    if address == ALICE and name in ledger.imap:
                        problems += self._imap_row(name, uid, token, set(flags.split()))
            problems += self._acknowledged(where)
            problems += self._queue(queued, peer_messages)
        return problems

    def _uids(self, address: str, name: str, validity: int, uidnext: int, modseq: int,
              messages: dict[int, tuple[str, str]]) -> list[str]:
        """UIDs never go backwards nor come back (RFC 3501 2.3.1.1), nor does HIGHESTMODSEQ
        (RFC 7162 3.1.2.1)."""
        key = (address, name)
        label = f"{address}/{name}"
        problems = []
        history = self.history.get(key)
        if history is None:
            history = self.history[key] = MailboxHistory(validity, uidnext, modseq)
        if validity != history.uidvalidity:
            problems.append(f"{label}: UIDVALIDITY {history.uidvalidity} -> {validity}")
        if uidnext < history.uidnext:
            problems.append(f"{label}: UIDNEXT went back from {history.uidnext} to {uidnext}")
        if modseq < history.highestmodseq:
            problems.append(f"{label}: HIGHESTMODSEQ went back from {history.highestmodseq} "
                            f"to {modseq}")
        history.uidnext, history.highestmodseq = uidnext, modseq
        for uid, (blob, _) in messages.items():
            if uid >= uidnext:
                problems.append(f"{label}: UID {uid} at or above UIDNEXT {uidnext}")
            if uid in history.vanished or history.seen.setdefault(uid, blob) != blob:
                problems.append(f"{label}: UID {uid} reused")
        history.vanished.update(uid for uid in history.seen if uid not in messages)
        if address == ALICE and name in self.ledger.imap and messages:
            model = self.ledger.imap[name]
            model.max_uid = max(model.max_uid, max(messages))
            if model.uidvalidity is not None and model.uidvalidity != validity:
                problems.append(f"{label}: UIDVALIDITY {validity}, IMAP was told "
                                f"{model.uidvalidity}")
        return problems

    def _imap_row(self, name: str, uid: int, token: str, flags: set[str]) -> list[str]:
        model = self.ledger.imap[name]
        if uid in model.gone:
            return [f"alice/{name} UID {uid}: expunged or moved (acknowledged), still there"]
        expected = model.present.get(uid)
        if expected is None:
            return []
        self.checked += 1
        if expected.token != token:
            return [f"alice/{name} UID {uid}: holds {token}, APPENDUID said {expected.token}"]
        if not expected.flags <= flags:
            return [f"alice/{name} UID {uid}: flags {sorted(flags)}, acknowledged "
                    f"{sorted(expected.flags)}"]
        return []

    def _acknowledged(self, where: dict[str, list[tuple[str, str]]]) -> list[str]:
        ledger = self.ledger
        problems = []
        for name, model in ledger.imap.items():
            for uid, expected in model.present.items():
                if (ALICE, name) not in where.get(expected.token, []):
                    problems.append(f"alice/{name} UID {uid} ({expected.token}): acknowledged, "
                                    "missing")
        for token, accounts in ledger.delivered.items():
            found = {address for address, box in where.get(token, []) if box == "INBOX"}
            for account in accounts:
                if account == BOB and token in ledger.pop_deleted | ledger.pop_uncertain:
                    continue
                self.checked += 1
                if account not in found:
                    problems.append(f"{account}: {token} acknowledged (250), missing")
        for token in ledger.refused:
            self.checked += 1
            if token in where:
                problems.append(f"{token} was refused, yet is stored in {where[token]}")
        for token in ledger.pop_deleted:
            self.checked += 1
            if (BOB, "INBOX") in where.get(token, []):
                problems.append(f"bob: {token} deleted by POP3 (QUIT +OK), back again")
        return problems

    def _queue(self, queued: list[str], peer_messages: list[bytes]) -> list[str]:
        ledger = self.ledger
        problems = []
        arrived: set[str] = set()
        for data in peer_messages:
            token = token_of(data)
            sent = ledger.attempted.get(token or "")
            if token is None or sent is None or not same_message(data, sent):
                problems.append(f"the peer got other bytes than were sent for {token}")
            elif token is not None:
                arrived.add(token)
        waiting = {token_of(self._read(blob)) for blob in queued}
        for token in ledger.refused & (arrived | waiting):
            problems.append(f"{token} was refused, yet is queued or arrived")
        for token in ledger.remote:
            self.checked += 1
            if token not in arrived and token not in waiting:
                problems.append(f"{token}: accepted for {REMOTE}, neither queued nor arrived")
        return problems
