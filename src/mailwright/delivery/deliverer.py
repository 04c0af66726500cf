"""Recipient resolution and the hand-off to the store (see the package docstring)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mailwright.store.api import (
    Account,
    Envelope,
    EnvelopeRecipient,
    InvalidAddress,
    NotFound,
    StagedMessage,
    StorageUnavailable,
    Store,
    normalize_address,
)

log = logging.getLogger(__name__)

# Alias chains deeper than this are almost surely loops or mistakes; Postfix stops at 1000
# expansions, Sendmail at a depth of 10 (MaxAliasRecursion). We take Sendmail's depth.
MAX_ALIAS_DEPTH: Final = 10
# One RCPT may fan out to at most this many final targets (a list alias), so that one message
# cannot be multiplied without bound.
MAX_ALIAS_TARGETS: Final = 1000


@dataclass(frozen=True, slots=True)
class LocalRecipient:
    """A recipient on a local domain: delivered to these accounts, and forwarded to `forwards`
    (remote targets of an alias), which go to the outbound queue."""

    address: str  # canonical form
    account_ids: tuple[int, ...]
    forwards: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteRecipient:
    address: str


class Refusal(enum.Enum):
    NO_SUCH_USER = "no such user"  # SMTP 550 5.1.1
    RELAY_DENIED = "relay denied"  # SMTP 554/550 5.7.1
    BAD_ADDRESS = "bad address"  # SMTP 501 5.1.3


Resolution = LocalRecipient | RemoteRecipient | Refusal


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


class Deliverer:
    def __init__(self, store: Store, hostname: str = "") -> None:
        self.store = store
        self.hostname = hostname.lower().rstrip(".")

    def resolve(self, address: str, *, may_relay: bool) -> Resolution:
        """What to do with one RCPT TO address.

        Only the domain decides locality: tricks such as `user%remote@local`, `remote!user@local`
        or `"user@remote"@local` name a local domain and so are looked up (and not found) as
        local users; `user@local@remote` names `remote`; an IP literal is not a local domain. So
        none of them can make an unauthenticated session relay.
        """
        try:
            canonical = normalize_address(address)
        except InvalidAddress:
            return Refusal.BAD_ADDRESS
        if canonical.startswith("@"):
            return Refusal.BAD_ADDRESS
        domain = domain_of(canonical)
        is_postmaster = canonical.partition("@")[0] == "postmaster"
        if not self.store.is_local_domain(domain):
            if is_postmaster and domain == self.hostname:
                return self._postmaster(canonical, domain)
            return RemoteRecipient(address) if may_relay else Refusal.RELAY_DENIED
        accounts, forwards = self._expand(canonical, {domain: True})
        if not accounts and not forwards:
            return self._postmaster(canonical, domain) if is_postmaster else Refusal.NO_SUCH_USER
        return LocalRecipient(canonical, tuple(accounts), tuple(forwards))

    def _postmaster(self, canonical: str, domain: str) -> Resolution:
        """RFC 5321 4.5.1: every host that delivers mail MUST accept "postmaster" (for each of
        its domains, and as bare <Postmaster>, which the SMTP session turns into
        postmaster@<hostname>). Without an account or alias of that name, the mail goes to the
        domain's first account, else to the server's first account (its administrator in
        practice); `mailwright alias add postmaster@DOMAIN ...` routes it elsewhere."""
        candidates = [summary.address for summary in self.store.list_accounts()]
        same_domain = [a for a in candidates if domain_of(a) == domain]
        accounts = [self.store.get_account(a) for a in (same_domain or candidates)]
        ids = sorted(account.id for account in accounts if account is not None)
        if not ids:
            return Refusal.NO_SUCH_USER
        return LocalRecipient(canonical, (ids[0],))

    def _expand(self, canonical: str, local: dict[str, bool]) -> tuple[list[int], list[str]]:
        """Breadth-first alias expansion, bounded and loop-safe; accounts win over aliases.

        `local` memoises is_local_domain for this one expansion (one query per domain, not per
        address: this runs on the event loop for every RCPT)."""
        accounts: list[int] = []
        forwards: list[str] = []
        seen: set[str] = set()
        level = [canonical]
        for _depth in range(MAX_ALIAS_DEPTH + 1):
            next_level: list[str] = []
            for address in level:
                if address in seen:
                    continue
                seen.add(address)
                domain = domain_of(address)
                if domain not in local:
                    local[domain] = self.store.is_local_domain(domain)
                if not local[domain]:
                    forwards.append(address)
                    continue
                account = self.store.get_account(address)
                if account is not None:
                    if account.id not in accounts:
                        accounts.append(account.id)
                    continue
                next_level.extend(self.store.alias_targets(address))
                if len(seen) + len(next_level) > MAX_ALIAS_TARGETS:
                    log.warning("alias expansion of %s exceeds %d targets", canonical,
                                MAX_ALIAS_TARGETS)
                    return accounts, forwards
            if not next_level:
                break
            level = next_level
        else:
            log.warning("alias expansion of %s deeper than %d levels", canonical, MAX_ALIAS_DEPTH)
        return accounts, forwards

    def sender_allowed(self, account: Account, mail_from: str) -> bool:
        """May this authenticated account use `mail_from` as the envelope sender?

        Its own address and the aliases that point to it, or any address of a domain whose
        catch-all points to it. The null reverse-path is allowed: RFC 3834 3.3 asks automatic
        responders (vacation replies, read receipts) to use it, and it impersonates nobody.
        """
        if mail_from == "":
            return True
        try:
            canonical = normalize_address(mail_from)
        except InvalidAddress:
            return False
        owned = self.store.addresses_of(account.id)
        return canonical in owned or "@" + domain_of(canonical) in owned

    def stage(self) -> StagedMessage:
        return self.store.stage()

    async def deliver(
        self,
        message: StagedMessage,
        envelope: Envelope,
        recipients: Sequence[tuple[EnvelopeRecipient, LocalRecipient | RemoteRecipient]],
        *,
        junk: bool = False,
    ) -> None:
        """Store once for every local account and queue every remote target; durable on return.

        `junk`: local copies go to the accounts' Junk mailboxes (the inbound checks' verdict).

        A local account named by several recipients (directly and through an alias) gets one
        copy, as Postfix and Dovecot do with duplicate elimination.
        """
        local: dict[int, None] = {}
        remote: dict[str, EnvelopeRecipient] = {}
        for rcpt, resolution in recipients:
            if isinstance(resolution, LocalRecipient):
                local.update(dict.fromkeys(resolution.account_ids))
                for target in resolution.forwards:
                    # RFC 3461 4.2: ORCPT carries the address the sender used.
                    params = dict(rcpt.params)
                    params.setdefault("ORCPT", f"rfc822;{rcpt.address}")
                    remote.setdefault(target.lower(), EnvelopeRecipient(target, params))
            else:
                remote.setdefault(resolution.address.lower(), rcpt)
        try:
            await self.store.deliver(
                message, envelope, list(local), list(remote.values()), junk=junk
            )
        except NotFound as exc:
            # An account was removed between RCPT and the end of DATA. A temporary failure
            # makes the client retry, and the retry's RCPT gets the permanent 550 5.1.1.
            raise StorageUnavailable(f"recipient removed during the transaction: {exc}") from exc
