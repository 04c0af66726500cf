"""The queue runner: delivers due queue rows to their remote servers and records each outcome.

One pass (`run_due`): the due rows, minus those already being worked on, are grouped by
destination domain, then by message (blob, sender, MAIL parameters). Each domain gets up to
max_connections_per_domain workers (also bounded by max_connections in total and per route
bucket: a smart host is one bucket); a worker opens one SMTP session and carries message
after message to the same host over it, each message with all its recipients of that domain
(RFC 5321 4.5.4: one transaction per host, not per recipient).

Per recipient, after the remote reply (RFC 5321 4.2.5, RFC 3463):
- 2xx: the row goes (`queue_done`) once the reply is in: a crash before gives a retry and
  maybe a duplicate, never a loss. Then, for NOTIFY=SUCCESS rows, when the peer did not offer
  DSN (so it was not given NOTIFY), a "relayed" DSN (RFC 3461 5.2.2 / 6.2); a peer that offers
  DSN is now responsible and we send nothing. That DSN is built (the message's header read)
  before the row goes, since the message file goes with its last row, but stored only after:
  it is a courtesy, so a crash or stop() in between loses it rather than repeat the
  delivery, and a failure to build or store it is logged, never retried.
- 5xx, or no route for good (null MX, RFC 7505; NXDOMAIN): failure DSN, then the row goes.
- 4xx, a host failure on every hop, a temporary DNS error: attempts += 1 and retry after the
  schedule's next step (schedule.py), clamped to the message's max_age; an attempt failing at
  or after max_age gives the failure DSN instead. Once a row has waited delay_warning, one
  delay DSN (RFC 3464 "delayed").
DSNs follow notify.py (NOTIFY, RET, ENVID, ORCPT; none for the null sender). Failure and delay
DSNs are stored before the rows they report on are changed, so a crash repeats one rather
than losing it.

Time comes from `clock` (tests pass a fake one and call `run_due(now=...)`; nothing sleeps).
The background loop (`start`) runs a pass whenever something may be due: at start, after
`wake()` (new mail queued), at the next row's due time, and every poll_interval (the CLI's
`queue retry` writes from another process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from mailwright.config import QueueConfig
from mailwright.delivery import Deliverer
from mailwright.queue import notify
from mailwright.queue.client import HostFailure, OutboundSession, Outgoing, Reply, connect
from mailwright.queue.prepare import Signer, prepare
from mailwright.queue.routing import Hop, NoRoute, Router
from mailwright.queue.schedule import RetrySchedule
from mailwright.store.api import EnvelopeRecipient, QueueEntry, StorageUnavailable, Store

log = logging.getLogger(__name__)

# Rows read per pass; the rest are picked up by the next pass.
BATCH: Final = 5000
# After a pass hit an unexpected error, wait this long before the next (no busy loop).
ERROR_BACKOFF: Final = 5.0


@dataclass
class _Message:
    """One stored message and its due recipients in one destination domain."""

    blob: str
    mail_from: str
    entries: list[QueueEntry]


@dataclass
class _Worker:
    domain: str
    messages: list[_Message] = field(default_factory=list)


class QueueRunner:
    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        router: Router,
        config: QueueConfig,
        hostname: str,
        tls_context: ssl.SSLContext,
        signer: Signer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.router = router
        self.config = config
        self.hostname = hostname
        self.tls_context = tls_context
        self.signer = signer
        self.clock = clock
        self.schedule = RetrySchedule.parse(config.retry_schedule)
        self.dsn = notify.DsnSender(store, deliverer, hostname, config.max_age)
        self._in_flight: set[int] = set()
        self._sessions = asyncio.Semaphore(max(1, config.max_connections))
        self._buckets: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        # Open outbound sessions: stop() closes any that a cancelled worker left open.
        self._open: set[OutboundSession] = set()
        self.sessions_opened = 0  # in total, for tests and logs

    # ----- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(
                self._run_forever(), name="queue-runner"
            )

    async def stop(self) -> None:
        """Stop the loop and cancel deliveries in progress: their rows stay queued (a session
        cut before the final reply is retried later; one whose 250 came is recorded first)."""
        tasks = [t for t in (self._loop_task, *self._workers) if t is not None]
        self._loop_task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # A worker cancelled while it was closing its session leaves it half closed.
        for session in list(self._open):
            await self._close(session)

    async def drain(self) -> None:
        """Wait until no delivery is in progress (tests: the background loop's work done)."""
        while self._workers:
            await asyncio.gather(*list(self._workers), return_exceptions=True)

    def wake(self) -> None:
        """Something new may be due (call on the runner's loop)."""
        self._wake.set()

    async def _run_forever(self) -> None:
        while True:
            delay = self.config.poll_interval
            try:
                self.dispatch()
                upcoming = self.store.queue_next_due()
                if upcoming is not None:
                    delay = min(delay, max(0.0, upcoming - self.clock()))
            except Exception:
                log.exception("queue: pass failed")
                delay = ERROR_BACKOFF
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                # Rows in flight are due too: wait at least a little so as not to spin on them.
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.05))

    # ----- passes ----------------------------------------------------------------------------
    def dispatch(self, now: float | None = None) -> list[asyncio.Task[None]]:
        """Start workers for every due row not already in flight; returns their tasks."""
        return self._dispatch(now)[0]

    def _dispatch(self, now: float | None) -> tuple[list[asyncio.Task[None]], int]:
        now = self.clock() if now is None else now
        entries = [
            e
            for e in self.store.queue_entries(due_before=now, limit=BATCH)
            if e.id not in self._in_flight
        ]
        tasks: list[asyncio.Task[None]] = []
        for worker in self._plan(entries):
            ids = [e.id for m in worker.messages for e in m.entries]
            self._in_flight.update(ids)
            task = asyncio.get_running_loop().create_task(
                self._work(worker, now), name=f"queue {worker.domain}"
            )
            self._workers.add(task)
            task.add_done_callback(self._done_callback(ids))
            tasks.append(task)
        return tasks, len(entries)

    def _done_callback(self, ids: list[int]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._workers.discard(task)
            self._in_flight.difference_update(ids)
            if not task.cancelled() and task.exception() is not None:
                log.error("queue: worker failed", exc_info=task.exception())

        return done

    async def run_due(self, now: float | None = None) -> int:
        """One pass: attempt every due row and wait for all of them; returns how many rows
        were attempted. `now` is the time the pass believes it is (tests)."""
        tasks, attempted = self._dispatch(now)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return attempted

    def _plan(self, entries: Sequence[QueueEntry]) -> list[_Worker]:
        by_domain: dict[str, dict[tuple[str, str, str], _Message]] = defaultdict(dict)
        for entry in entries:
            domain = entry.rcpt.rpartition("@")[2].lower().rstrip(".")
            key = (entry.blob, entry.mail_from, repr(sorted(entry.mail_params.items())))
            message = by_domain[domain].get(key)
            if message is None:
                message = by_domain[domain][key] = _Message(entry.blob, entry.mail_from, [])
            message.entries.append(entry)
        workers: list[_Worker] = []
        limit = max(1, self.config.max_connections_per_domain)
        for domain, messages in by_domain.items():
            share = [_Worker(domain) for _ in range(min(limit, len(messages)))]
            for index, message in enumerate(messages.values()):
                share[index % len(share)].messages.append(message)
            workers.extend(share)
        return workers

    # ----- one worker: one domain, one session at a time ------------------------------------
    async def _work(self, worker: _Worker, now: float) -> None:
        domain = worker.domain
        try:
            hops = await self.router.hops(domain)
        except NoRoute as exc:
            for message in worker.messages:
                if exc.permanent:
                    await self._fail(message.entries, exc.status, f"x-mailwright; {exc.text}",
                                     None, now)
                else:
                    await self._defer(message.entries, f"{exc.status} {exc.text}", now)
            return
        bucket = self._buckets.setdefault(
            self.router.route_key(domain),
            asyncio.Semaphore(max(1, self.config.max_connections_per_domain)),
        )
        session: OutboundSession | None = None
        async with bucket, self._sessions:
            try:
                for message in worker.messages:
                    session = await self._deliver_message(message, hops, session, now)
            finally:
                if session is not None:
                    await self._close(session)

    async def _deliver_message(
        self, message: _Message, hops: list[Hop], session: OutboundSession | None, now: float
    ) -> OutboundSession | None:
        """Send one message over `session` (reused) or the first hop that takes it; record the
        outcome; return the session to reuse for the next message (None if there is none)."""
        entries = message.entries
        try:
            prepared = await asyncio.to_thread(
                prepare,
                self.store.blob_path(message.blob),
                self.signer,
                self._is_local_sender(message.mail_from),
            )
        except OSError as exc:  # the file is gone or unreadable: a store problem, retry later
            log.error("queue: cannot read message %s: %s", message.blob, exc)
            await self._defer(entries, f"4.3.0 cannot read the stored message: {exc}", now)
            return session
        outgoing = Outgoing(
            mail_from=message.mail_from,
            mail_params=dict(entries[0].mail_params),
            recipients=[EnvelopeRecipient(e.rcpt, dict(e.rcpt_params)) for e in entries],
            path=self.store.blob_path(message.blob),
            offset=prepared.offset,
            prefix=prepared.prefix,
        )
        failure: HostFailure | None = None
        candidates: list[Hop | OutboundSession] = [session] if session is not None else []
        candidates.extend(hops)
        for candidate in candidates:
            if isinstance(candidate, Hop):
                try:
                    current = await self._connect(candidate)
                except HostFailure as exc:
                    failure = exc
                    log.info("queue: %s [%s]: %s", candidate.host, candidate.address, exc)
                    continue
            else:
                current = candidate
            try:
                replies = await current.send(outgoing)
            except HostFailure as exc:
                await self._close(current)
                if current is not session:
                    failure = exc
                    log.info("queue: %s: %s", current.hop.host, exc)
                session = None
                continue  # a reused session that broke: try the hops afresh
            await self._record(entries, replies, current.hop, now, current.extensions)
            if session is not None and current is not session:
                await self._close(session)
            return current
        if session is not None:
            await self._close(session)
        await self._host_failed(entries, failure, now)
        return None

    async def _connect(self, hop: Hop) -> OutboundSession:
        session = await connect(
            hop,
            helo=self.hostname,
            tls_context=self.tls_context,
            connect_timeout=self.config.connect_timeout,
            command_timeout=self.config.command_timeout,
        )
        self.sessions_opened += 1
        self._open.add(session)
        return session

    async def _close(self, session: OutboundSession) -> None:
        self._open.discard(session)
        await session.close()

    def _is_local_sender(self, mail_from: str) -> bool:
        domain = mail_from.rpartition("@")[2]
        return bool(domain) and self.store.is_local_domain(domain.lower())

    # ----- outcomes ----------------------------------------------------------------------------
    async def _record(
        self,
        entries: list[QueueEntry],
        replies: dict[str, Reply],
        hop: Hop,
        now: float,
        extensions: Mapping[str, str],
    ) -> None:
        delivered: list[QueueEntry] = []
        failed: list[tuple[QueueEntry, Reply]] = []
        deferred: list[tuple[QueueEntry, Reply | None]] = []
        for entry in entries:
            reply = replies.get(entry.rcpt)
            if reply is None:
                deferred.append((entry, None))
            elif 200 <= reply.code < 300:
                delivered.append(entry)
            elif reply.code >= 500:
                failed.append((entry, reply))
            else:
                deferred.append((entry, reply))
        # The remote 250 first: from here a crash can only repeat the rest.
        if delivered:

            async def record() -> list[notify.Report]:
                # The success DSNs are built first (the message file goes with its last
                # row), and stored only once the 250 is recorded.
                built = (
                    await self._relayed(delivered, replies, hop, now)
                    if "DSN" not in extensions else []
                )
                await self.store.queue_done([e.id for e in delivered])
                return built

            # Shielded: a stop() arriving now must not drop the record of a 250 (that would
            # only cost a duplicate, but there is no reason to).
            relayed = await asyncio.shield(record())
            log.info("queue: delivered to %s via %s: %s", hop.host, hop.address,
                     ", ".join(e.rcpt for e in delivered))
            if relayed:
                try:
                    await self.dsn.store_reports(relayed)
                except Exception as exc:
                    log.warning("queue: success DSN not stored (not retried): %s", exc)
        for entry, reply in failed:
            await self._fail([entry], _status(reply, "5.0.0"), _diagnostic(reply), hop.host, now)
        same: dict[str, tuple[Reply | None, list[QueueEntry]]] = {}
        for entry, maybe in deferred:
            text = _describe(maybe) if maybe else "4.4.2 no reply for this recipient"
            same.setdefault(text, (maybe, []))[1].append(entry)
        for text, (maybe, rows) in same.items():
            await self._defer(rows, f"{hop.host}: {text}", now, hop.host, maybe)

    async def _relayed(
        self, delivered: list[QueueEntry], replies: dict[str, Reply], hop: Hop, now: float
    ) -> list[notify.Report]:
        """The "relayed" DSNs for rows that asked for SUCCESS, built (module docstring). A
        failure here is logged: it must not keep the 250 from being recorded."""
        by_reply: dict[str, list[QueueEntry]] = defaultdict(list)
        for entry in delivered:
            if notify.wants_dsn(entry, "SUCCESS"):
                by_reply[_describe(replies[entry.rcpt])].append(entry)
        reports: list[notify.Report] = []
        for text, rows in by_reply.items():
            try:
                reports += await self.dsn.build(
                    rows, "relayed", "2.0.0", f"smtp; {text}", hop.host, now
                )
            except Exception as exc:
                log.warning("queue: success DSN for %s not built: %s",
                            ", ".join(e.rcpt for e in rows), exc)
        return reports

    async def _host_failed(
        self, entries: list[QueueEntry], failure: HostFailure | None, now: float
    ) -> None:
        reply = failure.reply if failure is not None else None
        text = str(failure) if failure is not None else "no host to deliver to"
        if failure is not None and failure.permanent and reply is not None:
            await self._fail(entries, _status(reply, "5.0.0"), _diagnostic(reply), None, now)
        else:
            await self._defer(entries, f"4.4.1 {text}", now, None, reply)

    async def _defer(
        self,
        entries: list[QueueEntry],
        error: str,
        now: float,
        remote_mta: str | None = None,
        reply: Reply | None = None,
    ) -> None:
        expired = [e for e in entries if now - e.created >= self.config.max_age]
        if expired:
            # Action failed with the last (persistent transient) status, as Postfix reports an
            # expired message; 4.4.7 (RFC 3463: delivery time expired) when there was no reply.
            diagnostic = _diagnostic(reply) if reply else f"x-mailwright; {error}"
            await self._fail(expired, _status(reply, "4.4.7"), diagnostic, remote_mta, now,
                             expired=True)
        waiting = [e for e in entries if e not in expired]
        if not waiting:
            return
        warn = [
            e
            for e in waiting
            if not e.delay_warned
            and self.config.delay_warning > 0
            and now - e.created >= self.config.delay_warning
        ]
        if warn:
            wanted = [e for e in warn if notify.wants_dsn(e, "DELAY")]
            if wanted:
                await self.dsn.send(wanted, "delayed", _status(reply, "4.4.1") if reply
                                     else "4.4.1", error, remote_mta, now)
            await self.store.queue_mark_warned([e.id for e in warn])
        by_time: dict[float, list[int]] = defaultdict(list)
        for entry in waiting:
            retry = now + self.schedule.delay(entry.attempts + 1)
            by_time[min(retry, entry.created + self.config.max_age)].append(entry.id)
        for when, ids in by_time.items():
            await self.store.queue_defer(ids, when, error)

    async def _fail(
        self,
        entries: list[QueueEntry],
        status: str,
        diagnostic: str | None,
        remote_mta: str | None,
        now: float,
        *,
        expired: bool = False,
    ) -> None:
        wanted = [e for e in entries if notify.wants_dsn(e, "FAILURE")]
        if wanted:
            try:
                await self.dsn.send(wanted, "failed", status, diagnostic, remote_mta, now)
            except StorageUnavailable as exc:
                # Keep the rows: the DSN is retried with them rather than lost.
                log.warning("queue: cannot store a DSN (%s); will retry", exc)
                for entry in entries:
                    await self.store.queue_defer(
                        [entry.id], now + self.schedule.delay(entry.attempts + 1),
                        f"{status} DSN pending: {exc}",
                    )
                return
        log.info("queue: %s for %s: %s %s", "expired" if expired else "failed",
                 ", ".join(e.rcpt for e in entries), status, diagnostic or "")
        await self.store.queue_done([e.id for e in entries])


def _status(reply: Reply | None, default: str) -> str:
    if reply is None:
        return default
    if reply.enhanced:
        return reply.enhanced
    # RFC 3463 3: without an enhanced code, the class of the basic one.
    return f"{str(reply.code)[0]}.0.0" if str(reply.code)[0] in "245" else default


def _diagnostic(reply: Reply | None) -> str | None:
    return None if reply is None else f"smtp; {_describe(reply)}"


def _describe(reply: Reply) -> str:
    parts = [str(reply.code), reply.enhanced, reply.text]
    return " ".join(p for p in parts if p)



def outbound_tls_context() -> ssl.SSLContext:
    """The verifying client context (system CAs) for hops with `verify` (queue.tls_verify, or a
    route that asks for it); the client encrypts without verifying on the others (RFC 7435)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
