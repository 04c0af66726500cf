"""Recipient resolution and the hand-off to the store (see the package docstring).

Success DSNs of local delivery (RFC 3461 6.2.7) are made here, after the store returned:
"delivered" for a mailbox (directly or through an alias with one target), "expanded" for an
alias with several targets, whose copies then go on without NOTIFY=SUCCESS; an alias with one
remote target passes the parameters on and the queue reports. Every DSN (these, and the
queue's, through `deliver_report`) goes to the sender's INBOX or the queue with the null
sender, so none is ever reported on again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from mailwright.queue.dsn import (
    Action,
    DsnRecipient,
    build_dsn,
    is_international,
    utf8_xtext_encode,
    xtext_encode,
)
from mailwright.queue.notify import notify_wants, read_head, without_success
from mailwright.queue.prepare import return_path_end
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

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox

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
    # The accounts' addresses, in account_ids' order: the Final-Recipient of a success DSN.
    mailboxes: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class RemoteRecipient:
    address: str


@dataclass(frozen=True, slots=True)
class CapturedRecipient(RemoteRecipient):
    """Capture mode: a recipient outside the local domains, kept in the capture box instead of
    queued (a RemoteRecipient, so code that only asks "local or not" needs no change)."""


class Refusal(enum.Enum):
    NO_SUCH_USER = "no such user"  # SMTP 550 5.1.1
    RELAY_DENIED = "relay denied"  # SMTP 554/550 5.7.1
    BAD_ADDRESS = "bad address"  # SMTP 501 5.1.3


Resolution = LocalRecipient | RemoteRecipient | Refusal


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


class Deliverer:
    # Capture mode (capture/box.py), set by the server: every remote target, whoever sends
    # it, goes to the capture box; nothing is queued or relayed.
    capture: CaptureBox | None = None

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
            if self.capture is not None:
                return CapturedRecipient(address)
            return RemoteRecipient(address) if may_relay else Refusal.RELAY_DENIED
        accounts, forwards = self._expand(canonical, {domain: True})
        if not accounts and not forwards:
            return self._postmaster(canonical, domain) if is_postmaster else Refusal.NO_SUCH_USER
        return LocalRecipient(
            canonical, tuple(a.id for a in accounts), tuple(forwards),
            tuple(a.address for a in accounts),
        )

    def _postmaster(self, canonical: str, domain: str) -> Resolution:
        """RFC 5321 4.5.1: every host that delivers mail MUST accept "postmaster" (for each of
        its domains, and as bare <Postmaster>, which the SMTP session turns into
        postmaster@<hostname>). Without an account or alias of that name, the mail goes to the
        domain's first account, else to the server's first account (its administrator in
        practice); `mailwright alias add postmaster@DOMAIN ...` routes it elsewhere."""
        candidates = [summary.address for summary in self.store.list_accounts()]
        same_domain = [a for a in candidates if domain_of(a) == domain]
        found = [self.store.get_account(a) for a in (same_domain or candidates)]
        accounts = sorted((a for a in found if a is not None), key=lambda a: a.id)
        if not accounts:
            return Refusal.NO_SUCH_USER
        return LocalRecipient(canonical, (accounts[0].id,), (), (accounts[0].address,))

    def _expand(
        self, canonical: str, local: dict[str, bool]
    ) -> tuple[list[Account], list[str]]:
        """Breadth-first alias expansion, bounded and loop-safe; accounts win over aliases.

        `local` memoises is_local_domain for this one expansion (one query per domain, not per
        address: this runs on the event loop for every RCPT)."""
        accounts: list[Account] = []
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
                    if all(a.id != account.id for a in accounts):
                        accounts.append(account)
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
        copy, as Postfix and Dovecot do with duplicate elimination. Success DSNs (module
        docstring) are stored after the message; failing to store one is logged, never
        turned into a failure of the delivery that already happened.
        """
        local: dict[int, None] = {}
        remote: dict[str, EnvelopeRecipient] = {}
        notices: list[DsnRecipient] = []
        for rcpt, resolution in recipients:
            if isinstance(resolution, LocalRecipient):
                local.update(dict.fromkeys(resolution.account_ids))
                notice = _success_notice(rcpt, resolution) if envelope.mail_from else None
                if notice is not None:
                    notices.append(notice)
                params = _forward_params(rcpt, resolution)
                for target in resolution.forwards:
                    remote.setdefault(target.lower(), EnvelopeRecipient(target, params))
            else:
                remote.setdefault(resolution.address.lower(), rcpt)
        if self.capture is not None and remote:
            # Capture mode: alias forwards too; the original file goes on only to local accounts.
            await self.capture.capture(message, envelope, [r.address for r in remote.values()])
            remote = {}
        try:
            await self.store.deliver(
                message, envelope, list(local), list(remote.values()), junk=junk
            )
        except NotFound as exc:
            # An account was removed between RCPT and the end of DATA. A temporary failure
            # makes the client retry, and the retry's RCPT gets the permanent 550 5.1.1.
            raise StorageUnavailable(f"recipient removed during the transaction: {exc}") from exc
        if notices:
            await self._report_success(message, envelope, notices)

    async def deliver_report(self, to: str, report: bytes, *, international: bool) -> bool:
        """Store a DSN for `to`: their INBOX when local, else the outbound queue, always with
        the null sender. `international`: the report needs SMTPUTF8 (RFC 6533), which its
        queue row keeps as a MAIL parameter so the client asks for it. False when `to` cannot
        take mail (dropped with a warning); raises StorageUnavailable."""
        resolution = self.resolve(to, may_relay=True)
        if isinstance(resolution, Refusal):
            log.warning("DSN to <%s> dropped: %s", to, resolution.value)
            return False
        params: dict[str, str | None] = {}
        if international:
            params["SMTPUTF8"] = None  # RFC 6531 3.4
        if not report.isascii():
            params["BODY"] = "8BITMIME"  # RFC 6152
        envelope = Envelope(mail_from="", mail_params=params, helo=self.hostname,
                            client_ip="127.0.0.1")
        staged = self.stage()
        try:
            # Our Return-Path, as on any message we accept (the runner strips it to relay).
            staged.write(b"Return-Path: <>\r\n" + report)
            await self.deliver(staged, envelope, [(EnvelopeRecipient(to), resolution)])
        except BaseException:
            staged.abort()
            raise
        return True

    async def _report_success(
        self, message: StagedMessage, envelope: Envelope, notices: list[DsnRecipient]
    ) -> None:
        try:
            head = await asyncio.to_thread(self._stored_head, message)
            original = head[return_path_end(head[:8192]) :]
            now = time.time()
            reporting_mta = self.hostname or "localhost"
            report = build_dsn(
                reporting_mta=reporting_mta, to=envelope.mail_from, recipients=notices,
                original=original, ret="HDRS", envid=envelope.mail_params.get("ENVID"),
                arrival=now, now=now,
            )
            international = is_international(envelope.mail_from, notices, original)
            await self.deliver_report(envelope.mail_from, report, international=international)
        except Exception as exc:  # the message is stored: a lost notice must not undo that
            log.warning("success DSN to <%s> not stored: %s", envelope.mail_from, exc)

    def _stored_head(self, message: StagedMessage) -> bytes:
        """The delivered message's header section, read from its blob (bounded, notify.py)."""
        return read_head(self.store.blob_path(message.sha256))


def _success_notice(rcpt: EnvelopeRecipient, resolution: LocalRecipient) -> DsnRecipient | None:
    """The success DSN entry owed for one local RCPT (RFC 3461 6.2.7), or None."""
    if not notify_wants(rcpt.params, "SUCCESS"):
        return None
    targets = len(resolution.account_ids) + len(resolution.forwards)
    orcpt = rcpt.params.get("ORCPT")
    action: Action
    if targets > 1:
        action, final = "expanded", resolution.address  # 6.2.7.3
    elif resolution.account_ids:
        action = "delivered"
        final = resolution.mailboxes[0] if resolution.mailboxes else resolution.address
        if orcpt is None and final != resolution.address:
            orcpt = _orcpt(rcpt.address)  # an alias: say which address the sender used
    else:
        return None  # one remote target: NOTIFY goes with it and the queue reports (6.2.7.2)
    return DsnRecipient(
        final_recipient=final, original_recipient=orcpt, action=action, status="2.0.0",
        diagnostic=None, remote_mta=None, last_attempt=time.time(), will_retry_until=None,
    )


def _forward_params(
    rcpt: EnvelopeRecipient, resolution: LocalRecipient
) -> dict[str, str | None]:
    """RCPT parameters for the remote targets of a local alias: ORCPT names the address the
    sender used (RFC 3461 4.2); NOTIFY=SUCCESS stays behind when the alias had several
    targets (RFC 3461 6.2.7.3: the "expanded" DSN reported the success)."""
    params = dict(rcpt.params)
    params.setdefault("ORCPT", _orcpt(rcpt.address))
    if len(resolution.account_ids) + len(resolution.forwards) > 1:
        params = without_success(params)
    return params


def _orcpt(address: str) -> str:
    """An ORCPT value for `address` (RFC 3461 4.2; RFC 6533 3 for a non-ASCII one)."""
    if address.isascii():
        return f"rfc822;{xtext_encode(address)}"
    return f"utf-8;{utf8_xtext_encode(address)}"
