"""kill -9 a process in the middle of deliveries: every acknowledged message survives intact,
nothing half-written is visible, and UIDs carry on above every earlier one.

(The page cache survives kill -9, so this proves crash consistency, not the fsync discipline;
that is what the order of operations documented in blobs.py and writer.py is for.)
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from mailwright.store import Envelope, SqliteStore

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from mailwright.store import Envelope, SqliteStore

    async def main() -> None:
        store = SqliteStore(Path(sys.argv[1]))
        account = store.get_account("alice@example.test")
        n = 0

        async def sender(worker: int) -> None:
            nonlocal n
            while True:
                n += 1
                body = b"message %d\\r\\n" % n
                staged = store.stage()
                staged.write(body)
                await store.deliver(staged, Envelope("s@remote.test"), [account.id], [])
                sys.stdout.write(body.decode())
                sys.stdout.flush()

        await asyncio.gather(*(sender(w) for w in range(8)))

    asyncio.run(main())
    """
)
ACKS_BEFORE_KILL = 60


def test_acknowledged_deliveries_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    setup = SqliteStore(data)
    setup.add_domain("example.test")
    alice = setup.add_account("alice@example.test", "h")
    setup.close()

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acked: list[bytes] = []
    try:
        for line in child.stdout:
            acked.append(line.rstrip("\n").encode() + b"\r\n")
            if len(acked) >= ACKS_BEFORE_KILL:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    assert len(acked) >= ACKS_BEFORE_KILL, "the child died early"

    store = SqliteStore(data)
    try:
        messages = store.pop3_messages(alice.id)
        bodies = set()
        for message in messages:
            raw = store.blob_path(message.blob).read_bytes()
            assert hashlib.sha256(raw).hexdigest() == message.blob
            bodies.add(raw)
        assert set(acked) <= bodies
        highest = max(m.uid for m in messages)
        staged = store.stage()
        staged.write(b"after the crash\r\n")
        asyncio.run(store.deliver(staged, Envelope(""), [alice.id], []))
        assert store.pop3_messages(alice.id)[-1].uid > highest
    finally:
        store.close()
