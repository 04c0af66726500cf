"""Recipient resolution and the hand-off to the store (see the package docstring)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from mailwright.store.api import (
    Account,
    Envelope,
    EnvelopeRecipient,
    InvalidAddress,
    StagedMessage,
    Store,
    normalize_address,
)


@dataclass(frozen=True, slots=True)
class LocalRecipient:
    address: str  # canonical form
    account_ids: tuple[int, ...]  # after alias expansion; at least one


@dataclass(frozen=True, slots=True)
class RemoteRecipient:
    address: str


class Refusal(enum.Enum):
    NO_SUCH_USER = "no such user"  # SMTP 550 5.1.1
    RELAY_DENIED = "relay denied"  # SMTP 554/550 5.7.1
    BAD_ADDRESS = "bad address"  # SMTP 501 5.1.3


Resolution = LocalRecipient | RemoteRecipient | Refusal


class Deliverer:
    def __init__(self, store: Store) -> None:
        self.store = store

    def resolve(self, address: str, *, may_relay: bool) -> Resolution:
        raise NotImplementedError  # implemented by the lead while helpers work

    def sender_allowed(self, account: Account, mail_from: str) -> bool:
        raise NotImplementedError

    def stage(self) -> StagedMessage:
        return self.store.stage()

    async def deliver(
        self,
        message: StagedMessage,
        envelope: Envelope,
        recipients: Sequence[tuple[EnvelopeRecipient, LocalRecipient | RemoteRecipient]],
    ) -> None:
        raise NotImplementedError
