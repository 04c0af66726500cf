"""CaptureBox over a real SQLite store: capture, list, get, raw, delete, clear, subscribe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from mailwright.capture import CaptureBox, Captured, FaultSettings
from mailwright.capture.box import envelope_fields, parse_head, parse_id
from mailwright.store import SqliteStore
from mailwright.store.api import Envelope

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

MESSAGE = (
    b"From: =?utf-8?q?Ren=C3=A9?= <rene@app.test>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?= order\r\n"
    b"\r\n"
    b"Hello\r\n"
)


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "data", durable=False)
    try:
        yield s
    finally:
        await s.aclose()


def make_box(store: SqliteStore, tmp_path: Path, imap: str = "catch-all") -> CaptureBox:
    box = CaptureBox(store, imap=imap, data_dir=tmp_path / "data")  # type: ignore[arg-type]
    store.add_domain("capture.test")
    store.add_account("captured@capture.test", "not-a-hash")
    return box


async def capture(
    box: CaptureBox, rcpts: list[str], data: bytes = MESSAGE, sender: str = "app@app.test"
) -> None:
    staged = box.store.stage()
    staged.write(data)
    try:
        await box.capture(staged, Envelope(mail_from=sender), rcpts)
    finally:
        staged.abort()


def test_envelope_fields_round_trip() -> None:
    rcpts = [f"user{i}@example{i}.com" for i in range(30)]
    fields = envelope_fields("a@b.test", rcpts)
    assert all(len(line) <= 78 for line in fields.split(b"\r\n"))
    head = parse_head(fields + MESSAGE)
    assert head.mail_from == "a@b.test"
    assert head.rcpts == tuple(rcpts)
    assert head.subject == "Café order"
    assert head.from_header == "René <rene@app.test>"
    assert head.to_header == "Bob <bob@example.com>"


def test_forged_envelope_fields_are_not_trusted() -> None:
    forged = b"Subject: x\r\nX-Mailwright-Envelope-From: <evil@x>\r\n\r\n"
    head = parse_head(forged)
    assert head.mail_from == ""
    assert head.rcpts == ()
    assert parse_head(envelope_fields("", ["a@b"]) + b"\r\n").mail_from == ""


def test_parse_id() -> None:
    assert parse_id("3-17") == (3, 17)
    assert parse_id("3-x") is None
    assert parse_id("317") is None
    assert parse_id("-1-2") is None


@pytest.mark.asyncio
async def test_catch_all_list_get_raw_delete(store: SqliteStore, tmp_path: Path) -> None:
    box = make_box(store, tmp_path)
    await capture(box, ["bob@example.com", "carol@example.org"])
    await capture(box, ["dave@example.net"], MESSAGE.replace(b"order", b"second"), "")
    items = await box.list()
    assert [c.subject for c in items] == ["Café second", "Café order"]  # newest first
    first = items[1]
    assert isinstance(first, Captured)
    assert first.mailbox == "INBOX"
    assert first.mail_from == "app@app.test"
    assert first.rcpts == ("bob@example.com", "carol@example.org")
    assert items[0].mail_from == ""
    assert first.size > len(MESSAGE)
    assert (await box.get(first.id)) == first
    raw = await box.raw(first.id)
    assert raw is not None
    assert raw.startswith(
        b"X-Mailwright-Envelope-From: <app@app.test>\r\n"
        b"X-Mailwright-Envelope-To: <bob@example.com>, <carol@example.org>\r\n"
    )
    assert raw.endswith(MESSAGE)
    assert [c.id for c in await box.list(to="CAROL@example.org")] == [first.id]
    assert [c.id for c in await box.list(query="SECOND")] == [items[0].id]
    assert [c.id for c in await box.list(query="rené")] == [c.id for c in items]
    assert [c.id for c in await box.list(limit=1, offset=1)] == [first.id]
    assert await box.get("999-1") is None
    assert await box.raw("bogus") is None
    assert await box.delete(first.id) is True
    assert await box.delete(first.id) is False
    assert [c.id for c in await box.list()] == [items[0].id]
    assert await box.clear() == 1
    assert await box.list() == []


@pytest.mark.asyncio
async def test_per_domain_one_copy_per_domain(store: SqliteStore, tmp_path: Path) -> None:
    box = make_box(store, tmp_path, imap="per-domain")
    await capture(box, ["a@example.com", "b@Example.COM", "c@other.org"])
    items = await box.list()
    by_box = {c.mailbox: c.rcpts for c in items}
    assert by_box == {
        "example.com": ("a@example.com", "b@Example.COM"),
        "other.org": ("c@other.org",),
    }
    account = store.get_account("captured@capture.test")
    assert account is not None
    names = {m.name for m in store.list_mailboxes(account.id)}
    assert {"example.com", "other.org", "INBOX"} <= names
    assert await box.clear() == 2


@pytest.mark.asyncio
async def test_subscribe_sees_new_mail_including_new_domain_mailboxes(
    store: SqliteStore, tmp_path: Path
) -> None:
    box = make_box(store, tmp_path, imap="per-domain")
    sub = box.subscribe()
    try:
        await capture(box, ["x@new.example"])
        got = await asyncio.wait_for(sub.next(), 5)
        assert got.rcpts == ("x@new.example",)
        assert got.mailbox == "new.example"
        await capture(box, ["y@new.example"])
        async for item in sub:
            assert item.rcpts == ("y@new.example",)
            break
    finally:
        sub.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(sub.next(), 1)


@pytest.mark.asyncio
async def test_close_wakes_a_waiting_subscriber(store: SqliteStore, tmp_path: Path) -> None:
    box = make_box(store, tmp_path)
    sub = box.subscribe()
    waiter = asyncio.ensure_future(asyncio.wait_for(sub.next(), 5))
    await asyncio.sleep(0.01)
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await waiter


def test_faults_persist_and_are_reread(store: SqliteStore, tmp_path: Path) -> None:
    box = make_box(store, tmp_path)
    assert box.faults == FaultSettings()
    box.set_faults(FaultSettings(rcpt_fail_rate=0.5, reply_delay=0.1))
    other = CaptureBox(store, data_dir=tmp_path / "data")  # another process, say the CLI
    assert other.faults == FaultSettings(rcpt_fail_rate=0.5, reply_delay=0.1)
    other.set_faults(FaultSettings(data_fail_rate=1.0, fail_code=554))
    assert box.faults == FaultSettings(data_fail_rate=1.0, fail_code=554)
    with pytest.raises(TypeError):
        box.set_faults({"rcpt_fail_rate": 1})  # type: ignore[arg-type]
