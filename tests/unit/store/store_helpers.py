"""Helpers shared by the store's unit tests (a uniquely named module: several conftest.py
files exist in this tree, so tests must not import from `conftest`)."""

from __future__ import annotations

from mailwright.store import Envelope, EnvelopeRecipient, SqliteStore


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
