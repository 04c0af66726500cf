"""Helpers shared by the store's unit tests (a uniquely named module: several conftest.py
files exist in this tree, so tests must not import from `conftest`)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from mailwright.message import MessageInfo
from mailwright.store import Envelope, EnvelopeRecipient, SqliteStore

# Messages the index and analysis tests share: plain ASCII, and RFC 2047 + base64 UTF-8.
PLAIN = (
    b"From: Alice Example <alice@example.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Quarterly report\r\n"
    b"X-Custom: Zebra crossing\r\n"
    b"\r\n"
    b"The numbers are inside.\r\n"
)
INTL = (
    b"From: =?utf-8?q?Ren=C3=A9?= <rene@example.test>\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_cr=C3=A8me?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    # "Die Straße ist lang. ΣΊΣΥΦΟΣ\r\n"
    b"RGllIFN0cmHDn2UgaXN0IGxhbmcuIM6jzorOo86lzqbOn86jDQo=\r\n"
)


class Deliver:
    """`await deliver(data, [account ids], [remote addresses])`, as the SMTP session does."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def __call__(
        self,
        data: bytes,
        accounts: list[int],
        remotes: tuple[str, ...] = (),
        envelope: Envelope | None = None,
    ) -> None:
        staged = self.store.stage()
        staged.write(data)
        await self.store.deliver(
            staged,
            envelope or Envelope("sender@remote.test"),
            accounts,
            [EnvelopeRecipient(address) for address in remotes],
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def execute(data_dir: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def same(a: MessageInfo, b: MessageInfo) -> bool:
    return a.to_json() == b.to_json()
