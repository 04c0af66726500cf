"""Where DSNs come from, over a real (non-durable) store: the queue's DsnSender (reading only
the head of a big message) and the Deliverer's success reports for local delivery
(RFC 3461 6.2.7: delivered, single-target alias, expanded alias, no report for NEVER or <>)."""

from __future__ import annotations

import email
import email.policy
import re
import tracemalloc
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from mailwright.delivery import Deliverer, LocalRecipient, RemoteRecipient
from mailwright.queue.dsn import SUBJECT_SUCCESS
from mailwright.queue.notify import HEAD_LIMIT, DsnSender, read_head, without_success
from mailwright.store import open_store
from mailwright.store.api import Account, Envelope, EnvelopeRecipient, Store

HOST = "mail.example.test"
HEADER = b"From: <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: big one\r\n\r\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path, durable=False)
    store.add_domain("example.test")
    yield store
    store.close()


@pytest.fixture
def alice(store: Store) -> Account:
    return store.add_account("alice@example.test", "$argon2id$fake")


@pytest.fixture
def bob(store: Store) -> Account:
    return store.add_account("bob@example.test", "$argon2id$fake")


def inbox(store: Store, account: Account) -> list[bytes]:
    return [store.blob_path(m.blob).read_bytes() for m in store.pop3_messages(account.id)]


def fields(raw: bytes) -> list[dict[str, str]]:
    """The per-recipient blocks of the (global-)delivery-status part, as dicts."""
    text = raw.decode("utf-8")
    start = text.index("Content-Type: message/")
    start = text.index("\r\n\r\n", text.index("delivery-status", start)) + 4
    body = text[start : text.index("\r\n--", start)]
    blocks = [b for b in body.split("\r\n\r\n") if b.strip()]
    return [dict(re.findall(r"(?m)^([A-Za-z-]+): (.*?)\r?$", b)) for b in blocks[1:]]


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.default)


async def submit(
    store: Store,
    sender: str,
    rcpts: list[tuple[str, dict[str, str | None]]],
    body: bytes = HEADER + b"hello\r\n",
    mail_params: dict[str, str | None] | None = None,
) -> None:
    """What the SMTP session does at the end of DATA: resolve, stage, deliver."""
    deliverer = Deliverer(store, HOST)
    recipients: list[tuple[EnvelopeRecipient, LocalRecipient]] = []
    for address, params in rcpts:
        resolution = deliverer.resolve(address, may_relay=False)
        assert isinstance(resolution, LocalRecipient)
        recipients.append((EnvelopeRecipient(address, params), resolution))
    staged = deliverer.stage()
    staged.write(f"Return-Path: <{sender}>\r\n".encode() + body)
    envelope = Envelope(sender, mail_params or {}, helo="c.test", client_ip="192.0.2.1")
    await deliverer.deliver(staged, envelope, recipients)


# ----- reading the head only ------------------------------------------------------------------
def test_read_head_stops_at_the_blank_line_and_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.write_bytes(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore")
    assert read_head(path) == b"A: 1\r\nB: 2\r\n\r\n"
    path.write_bytes(b"A: 1\nB: 2\n\nbody")
    assert read_head(path) == b"A: 1\nB: 2\n\n"
    path.write_bytes(b"A: 1\r\n")
    assert read_head(path) == b"A: 1\r\n"  # no body at all
    # A separator across the 64 KiB read boundary is still found.
    path.write_bytes(b"X: " + b"y" * (64 * 1024 - 5) + b"\r\n\r\nbody")
    assert read_head(path).endswith(b"y\r\n\r\n")
    # No end in sight: cut at the last whole line within the limit.
    path.write_bytes(b"X-Long: y\r\n" * (HEAD_LIMIT // 5))
    head = read_head(path)
    assert len(head) <= HEAD_LIMIT
    assert head.endswith(b"y\r\n")


@pytest.mark.asyncio
async def test_dsn_of_a_big_message_reads_only_its_head(store: Store, alice: Account) -> None:
    size = 24 * 1024 * 1024
    deliverer = Deliverer(store, HOST)
    staged = deliverer.stage()
    staged.write(b"Return-Path: <alice@example.test>\r\n" + HEADER)
    chunk = b"x" * 1023 + b"\n"
    for _ in range(size // len(chunk)):
        staged.write(chunk)
    envelope = Envelope("alice@example.test", {"RET": "FULL"}, helo="c.test")
    remote = deliverer.resolve("carol@remote.test", may_relay=True)
    assert isinstance(remote, RemoteRecipient)
    await deliverer.deliver(staged, envelope, [(EnvelopeRecipient(remote.address), remote)])
    [entry] = store.queue_entries()
    sender = DsnSender(store, deliverer, HOST, 86400.0)
    tracemalloc.start()
    try:
        report, international = sender._build(
            entry.blob, [entry], "failed", "5.1.1", "smtp; 550 5.1.1 no", "mx.remote.test", 1.0
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024  # the file is 24 MiB: it was never read whole
    assert not international
    assert HEADER.rstrip(b"\r\n") in report
    assert b"xxxx" not in report
    assert parse(report).get_payload()[2].get_content_type() == "text/rfc822-headers"


# ----- local delivery: RFC 3461 6.2.7 ---------------------------------------------------------
@pytest.mark.asyncio
async def test_local_delivery_with_notify_success_reports_delivered(
    store: Store, alice: Account, bob: Account
) -> None:
    await submit(store, "alice@example.test",
                 [("bob@example.test", {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;b+2B@x"})],
                 mail_params={"ENVID": "env+2B1"})
    assert len(inbox(store, bob)) == 1
    [raw] = inbox(store, alice)
    assert raw.startswith(b"Return-Path: <>\r\n")
    report = parse(raw)
    assert report["Subject"] == SUBJECT_SUCCESS
    assert report["To"] == "alice@example.test"
    [rcpt] = fields(raw)
    assert rcpt["Action"] == "delivered"
    assert rcpt["Status"] == "2.0.0"
    assert rcpt["Final-Recipient"] == "rfc822; bob@example.test"
    assert rcpt["Original-Recipient"] == "rfc822; b+@x"
    assert "Original-Envelope-Id: env+1" in raw.decode()
    assert b"Subject: big one" in raw
    assert b"hello" not in raw


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("sender", "notify"), [("alice@example.test", "NEVER"), ("alice@example.test", "FAILURE"),
                           ("alice@example.test", None), ("", "SUCCESS")],
)
async def test_no_success_report_unless_asked_and_never_for_the_null_sender(
    store: Store, alice: Account, bob: Account, sender: str, notify: str | None
) -> None:
    params = {"NOTIFY": notify} if notify else {}
    await submit(store, sender, [("bob@example.test", params)])
    assert len(inbox(store, bob)) == 1
    assert inbox(store, alice) == []
    assert store.queue_size() == 0


@pytest.mark.asyncio
async def test_single_target_alias_reports_delivered_for_the_mailbox(
    store: Store, alice: Account, bob: Account
) -> None:
    store.add_alias("robert@example.test", "bob@example.test")
    await submit(store, "alice@example.test", [("robert@example.test", {"NOTIFY": "SUCCESS"})])
    [rcpt] = fields(inbox(store, alice)[0])
    assert rcpt["Action"] == "delivered"
    assert rcpt["Final-Recipient"] == "rfc822; bob@example.test"
    assert rcpt["Original-Recipient"] == "rfc822; robert@example.test"


@pytest.mark.asyncio
async def test_alias_with_several_targets_reports_expanded_and_drops_success(
    store: Store, alice: Account, bob: Account
) -> None:
    carol = store.add_account("carol@example.test", "$argon2id$fake")
    for target in ("bob@example.test", "carol@example.test", "dave@remote.test"):
        store.add_alias("team@example.test", target)
    await submit(store, "alice@example.test",
                 [("team@example.test", {"NOTIFY": "SUCCESS,DELAY"})])
    assert len(inbox(store, bob)) == len(inbox(store, carol)) == 1
    [raw] = inbox(store, alice)  # one "expanded", no "delivered" for bob or carol
    [rcpt] = fields(raw)
    assert (rcpt["Action"], rcpt["Status"]) == ("expanded", "2.0.0")
    assert rcpt["Final-Recipient"] == "rfc822; team@example.test"
    [row] = store.queue_entries()
    assert row.rcpt == "dave@remote.test"
    assert row.rcpt_params == {"NOTIFY": "DELAY", "ORCPT": "rfc822;team@example.test"}


@pytest.mark.asyncio
async def test_alias_to_one_remote_target_passes_notify_on(
    store: Store, alice: Account
) -> None:
    store.add_alias("fwd@example.test", "dave@remote.test")
    await submit(store, "alice@example.test", [("fwd@example.test", {"NOTIFY": "SUCCESS"})])
    assert inbox(store, alice) == []  # the queue reports, once the remote side answered
    [row] = store.queue_entries()
    assert row.rcpt_params == {"NOTIFY": "SUCCESS", "ORCPT": "rfc822;fwd@example.test"}


def test_without_success() -> None:
    assert without_success({"NOTIFY": "SUCCESS"})["NOTIFY"] == "NEVER"
    assert without_success({"NOTIFY": "success,Failure"})["NOTIFY"] == "FAILURE"
    assert without_success({"ORCPT": "rfc822;a@b"}) == {"ORCPT": "rfc822;a@b"}


@pytest.mark.asyncio
async def test_international_report_to_a_remote_sender_is_queued_with_smtputf8(
    store: Store, bob: Account
) -> None:
    sender = "jörg@bücher.example"
    body = f"From: Jörg <{sender}>\r\nTo: bob@example.test\r\nSubject: grüße\r\n\r\nhi\r\n"
    await submit(store, sender, [("bob@example.test", {"NOTIFY": "SUCCESS"})],
                 body=body.encode(), mail_params={"SMTPUTF8": None, "BODY": "8BITMIME"})
    [row] = store.queue_entries()
    assert (row.mail_from, row.rcpt) == ("", sender)
    assert row.mail_params == {"SMTPUTF8": None, "BODY": "8BITMIME"}
    raw = store.blob_path(row.blob).read_bytes()
    assert "To: jörg@bücher.example\r\n".encode() in raw
    assert b"Content-Type: message/global-delivery-status" in raw
    assert b"Content-Type: message/global-headers" in raw
    [rcpt] = fields(raw)
    assert rcpt["Final-Recipient"] == "rfc822; bob@example.test"
    assert rcpt["Action"] == "delivered"
