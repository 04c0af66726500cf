"""mailwright.testing.MailServer: the in-process server for test suites, with real clients."""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
import threading
import time
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from mailwright.capture.faults import FaultSettings
from mailwright.testing import MailMessage, MailServer, MailTimeout
from mailwright.testing.sources import CaptureSource, LocalSource, Source

LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture
def fresh() -> Iterator[MailServer]:
    """A server of its own, for tests that look at everything (clear, to=None)."""
    with MailServer(http=False) as server:
        yield server


_counter = iter(range(1_000_000))


def unique(domain: str = "remote.example") -> str:
    return f"user{next(_counter)}-{time.monotonic_ns()}@{domain}"


def make(rcpts: list[str], subject: str, body: str = "hello\n",
         sender: str = "app@sender.example") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(rcpts)
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def send(mail: MailServer, rcpts: list[str], subject: str, body: str = "hello\n",
         sender: str = "app@sender.example") -> None:
    """Over the MX listener, no AUTH: as an application pointed at the server would."""
    with smtplib.SMTP(mail.host, mail.smtp_port, timeout=30) as client:
        client.send_message(make(rcpts, subject, body, sender), sender, rcpts)


# ----- life cycle ---------------------------------------------------------------------------------
def test_every_listener_on_its_own_free_loopback_port(mail: MailServer) -> None:
    ports = [mail.port(name) for name in LISTENERS]
    assert mail.host == "127.0.0.1"
    assert len(set(ports)) == len(ports)
    assert all(port > 0 for port in ports)
    assert (mail.smtp_port, mail.submission_port, mail.submissions_port, mail.imap_port,
            mail.imaps_port, mail.pop3_port, mail.pop3s_port) == tuple(ports)
    with smtplib.SMTP(mail.host, mail.smtp_port, timeout=30) as client:
        code, banner = client.ehlo()
        assert code == 250
        assert banner.startswith(b"mail.test")
    assert mail.startup_seconds is not None
    assert mail.startup_seconds > 0


def test_stop_removes_the_temporary_data_directory_and_is_idempotent() -> None:
    server = MailServer(http=False).start()
    data = server.data_dir
    assert data is not None
    assert (data / "mailwright.db").exists()
    assert server.running
    server.stop()
    assert not server.running
    assert not data.exists()
    server.stop()
    with pytest.raises(RuntimeError, match="not running"):
        server.messages(to="a@b.example")
    with pytest.raises(RuntimeError, match="started already"):
        server.start()


def test_a_given_data_dir_is_kept_and_reused(tmp_path: Path) -> None:
    with MailServer(data_dir=tmp_path, http=False) as server:
        server.add_account("kept@local.example", "pw-kept")
        send(server, ["kept@local.example"], "persisted")
        server.wait_for(to="kept@local.example", subject="persisted")
    assert (tmp_path / "mailwright.db").exists()
    with MailServer(data_dir=tmp_path, http=False) as again:
        assert [m["Subject"] for m in again.messages(to="kept@local.example")] == ["persisted"]


def test_durable_is_off_by_default_and_can_be_asked_for() -> None:
    with MailServer(http=False) as fast:
        assert fast.config is not None
        assert fast.config.store.durable is False
    with MailServer(durable=True, http=False) as durable:
        assert durable.config is not None
        assert durable.config.store.durable is True


def test_process_environment_is_ignored_and_env_argument_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILWRIGHT_LISTEN_SMTP", "127.0.0.1:1")  # would fail to bind
    monkeypatch.setenv("MAILWRIGHT_HOSTNAME", "from-the-shell.example")
    with MailServer(http=False, env={"MAILWRIGHT_SMTP_MAX_MESSAGE_SIZE": "12345"}) as server:
        assert server.smtp_port != 1
        with smtplib.SMTP(server.host, server.smtp_port, timeout=30) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "12345"
            assert client.ehlo_resp is not None
            assert client.ehlo_resp.startswith(b"mail.test")


def test_http_url_serves_the_web_inbox_or_is_none_when_off(mail: MailServer) -> None:
    assert mail.http_url is not None
    assert mail.http_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(mail.http_url + "/", timeout=30) as response:
        assert response.status == 200
    with MailServer(http=False) as server:
        assert server.http_url is None


# ----- TLS and accounts ---------------------------------------------------------------------------
def test_ssl_context_trusts_the_server_on_every_tls_port(mail: MailServer) -> None:
    account = mail.add_account(unique("tls.example"))
    with smtplib.SMTP_SSL(mail.host, mail.submissions_port, context=mail.ssl_context,
                          timeout=30) as smtp:
        smtp.login(account.address, account.password)
    with smtplib.SMTP(mail.host, mail.submission_port, timeout=30) as smtp:
        smtp.starttls(context=mail.ssl_context)
        smtp.login(account.address, account.password)
    imap = imaplib.IMAP4_SSL(mail.host, mail.imaps_port, ssl_context=mail.ssl_context)
    try:
        assert imap.login(account.address, account.password)[0] == "OK"
    finally:
        imap.logout()
    pop = poplib.POP3_SSL(mail.host, mail.pop3s_port, context=mail.ssl_context)
    try:
        pop.user(account.address)
        assert pop.pass_(account.password).startswith(b"+OK")
    finally:
        pop.quit()


def test_add_account_random_password_domain_created_and_cheap_hash(mail: MailServer) -> None:
    address = unique("new-domain.example").upper()
    began = time.perf_counter()
    account = mail.add_account(address)
    took = time.perf_counter() - began
    assert account.address == address.lower()
    assert len(account.password) >= 16
    assert mail.store.is_local_domain("new-domain.example")
    credentials = mail.store.get_credentials(account.address)
    assert credentials is not None
    assert credentials[1].startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert took < 5.0  # the point is milliseconds; this bound only catches a full-cost hash
    other = mail.add_account(unique("new-domain.example"))
    assert other.password != account.password
    given = mail.add_account(unique("local.example"), "s3cret-given")
    assert given.password == "s3cret-given"
    with pytest.raises(ValueError, match="exists already"):
        mail.add_account(account.address)


# ----- reading mail -------------------------------------------------------------------------------
def test_messages_of_a_local_account_and_captured_mail_for_others(mail: MailServer) -> None:
    local = mail.add_account(unique("local.example"))
    remote = unique()
    send(mail, [local.address, remote], "to both", sender="sender@app.example")
    mail.wait_for(to=remote, subject="to both")
    mail.wait_for(to=local.address, subject="to both")

    [inbox_copy] = mail.messages(to=local.address)
    assert isinstance(inbox_copy, EmailMessage)
    assert inbox_copy["Subject"] == "to both"
    assert inbox_copy.envelope_from == "sender@app.example"
    assert inbox_copy.envelope_rcpts == (local.address,)
    assert inbox_copy.get_content() == "hello\n"

    [captured] = mail.messages(to=remote)
    assert isinstance(captured, MailMessage)
    assert captured.envelope_from == "sender@app.example"
    assert captured.envelope_rcpts == (remote,)  # the local recipient is not captured
    assert captured.capture_id
    assert captured["X-Mailwright-Envelope-To"] == f"<{remote}>"
    assert mail.messages(to=unique()) == []


def test_messages_mailbox_argument_and_unknown_local_user(mail: MailServer) -> None:
    account = mail.add_account(unique("local.example"))
    imap = imaplib.IMAP4_SSL(mail.host, mail.imaps_port, ssl_context=mail.ssl_context)
    try:
        imap.login(account.address, account.password)
        raw = make([account.address], "filed away").as_bytes()
        assert imap.append("Archive", None, None, raw)[0] == "OK"
    finally:
        imap.logout()
    assert [m["Subject"] for m in mail.messages(account.address, mailbox="Archive")] == [
        "filed away"
    ]
    assert mail.messages(account.address) == []
    with pytest.raises(ValueError, match="no mailbox"):
        mail.messages(account.address, mailbox="Nope")
    with pytest.raises(ValueError, match="not an account"):
        mail.messages(to="nobody@local.example")


def test_outbound_lists_captured_mail_oldest_first_with_envelopes(mail: MailServer) -> None:
    first, second = unique(), unique("other.example")
    send(mail, [first, second], "outbound one", sender="")
    send(mail, [second], "outbound two")
    mail.wait_for(to=second, subject="outbound two")
    mine = [m for m in mail.outbound if set(m.envelope_rcpts) & {first, second}]
    assert [(m["Subject"], m.envelope_rcpts, m.envelope_from) for m in mine] == [
        ("outbound one", (first, second), ""),
        ("outbound two", (second,), "app@sender.example"),
    ]


# ----- wait_for -----------------------------------------------------------------------------------
def test_wait_for_finds_a_message_that_arrived_before_it_was_called(mail: MailServer) -> None:
    account = mail.add_account(unique("local.example"))
    remote = unique()
    send(mail, [account.address, remote], "already here")
    # No wait between sending and looking: the 250 means it is stored.
    began = time.perf_counter()
    assert mail.wait_for(to=account.address, subject="already")["Subject"] == "already here"
    assert mail.wait_for(to=remote, subject="already")["Subject"] == "already here"
    assert time.perf_counter() - began < 2.0


def test_wait_for_is_woken_by_a_message_arriving_during_the_wait(mail: MailServer) -> None:
    account = mail.add_account(unique("local.example"))
    remote = unique()
    sent_at: list[float] = []

    def later(rcpt: str, subject: str) -> threading.Thread:
        def run() -> None:
            time.sleep(0.3)
            sent_at.append(time.perf_counter())
            send(mail, [rcpt], subject)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    for rcpt in (account.address, remote):
        sent_at.clear()
        thread = later(rcpt, f"late for {rcpt}")
        message = mail.wait_for(to=rcpt, subject="late", timeout=20)
        woke = time.perf_counter()
        thread.join()
        assert message["Subject"] == f"late for {rcpt}"
        assert woke - sent_at[0] < 5.0  # an event woke it, long before the timeout


@pytest.mark.parametrize("where", ["local", "captured"])
def test_wait_for_misses_nothing_between_its_read_and_its_wait(
    mail: MailServer, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A message committed right after wait_for read the mailbox (and before it starts to
    wait) is still found: the subscription was made before the read."""
    rcpt = mail.add_account(unique("local.example")).address if where == "local" else unique()
    source_class = LocalSource if where == "local" else CaptureSource
    original = source_class.read

    async def read_then_deliver(self: Source) -> list[MailMessage]:
        snapshot = await original(self)  # type: ignore[arg-type]
        # Off the loop, so the server's SMTP session (on this loop) can take the message.
        await asyncio.to_thread(send, mail, [rcpt], "slipped in")
        return snapshot

    monkeypatch.setattr(source_class, "read", read_then_deliver)
    assert mail.wait_for(to=rcpt, timeout=10)["Subject"] == "slipped in"


def test_wait_for_predicate_skips_non_matching_mail(mail: MailServer) -> None:
    remote = unique()
    send(mail, [remote], "code mail", body="no code here\n")
    send(mail, [remote], "code mail", body="your code is 123456\n")

    def has_code(msg: MailMessage) -> bool:
        return "123456" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    found = mail.wait_for(to=remote, predicate=has_code)
    assert "123456" in found.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_wait_for_timeout_lists_what_did_arrive(mail: MailServer) -> None:
    remote = unique()
    send(mail, [remote], "Welcome aboard")
    send(mail, [remote], "Your receipt")
    began = time.perf_counter()
    with pytest.raises(MailTimeout) as caught:
        mail.wait_for(to=remote, subject="Password reset", timeout=0.5)
    waited = time.perf_counter() - began
    assert 0.5 <= waited < 10.0
    assert isinstance(caught.value, AssertionError)
    assert isinstance(caught.value, TimeoutError)
    text = str(caught.value)
    assert f"no message to {remote} with a Subject containing 'Password reset' within 0.5 s" in text
    assert "2 message(s) arrived" in text
    assert "'Welcome aboard'" in text
    assert "'Your receipt'" in text
    with pytest.raises(MailTimeout, match="no mail arrived at all"):
        mail.wait_for(to=unique(), timeout=0.2)


def test_wait_for_anyone_and_clear(fresh: MailServer) -> None:
    account = fresh.add_account("someone@local.example")
    send(fresh, [account.address], "local one")
    send(fresh, ["x@remote.example"], "remote one")
    assert fresh.wait_for(subject="local one").envelope_rcpts == (account.address,)
    assert fresh.wait_for(subject="remote one").envelope_rcpts == ("x@remote.example",)
    assert fresh.clear() == 2
    assert fresh.outbound == []
    assert fresh.messages(account.address) == []
    with pytest.raises(MailTimeout, match="to anyone"):
        fresh.wait_for(timeout=0.2)
    # The account itself stays and still receives.
    send(fresh, [account.address], "after clear")
    assert fresh.wait_for(to=account.address)["Subject"] == "after clear"


# ----- capture options ----------------------------------------------------------------------------
def test_faults_argument_and_set_faults() -> None:
    with (
        MailServer(http=False, faults=FaultSettings(rcpt_fail_rate=1.0)) as server,
        smtplib.SMTP(server.host, server.smtp_port, timeout=30) as client,
    ):
        client.ehlo()
        client.mail("app@sender.example")
        assert client.rcpt("a@remote.example")[0] == 451
        client.rset()
        server.set_faults(FaultSettings())
        client.mail("app@sender.example")
        assert client.rcpt("a@remote.example")[0] == 250
        assert client.rcpt("permerror@remote.example")[0] == 550


def test_accept_any_auth_and_capture_off() -> None:
    with MailServer(http=False, accept_any_auth=True) as server:
        with smtplib.SMTP(server.host, server.submission_port, timeout=30) as client:
            client.starttls(context=server.ssl_context)
            client.login("whoever", "whatever")
            client.send_message(make(["z@remote.example"], "any auth"))
        assert server.wait_for(to="z@remote.example")["Subject"] == "any auth"
    with MailServer(http=False, capture=False) as server:
        assert server.capture is None
        with pytest.raises(RuntimeError, match="capture is off"):
            _ = server.outbound
        with pytest.raises(ValueError, match="capture is off"):
            server.messages(to="z@remote.example")
        account = server.add_account("real@local.example")
        send(server, [account.address], "real semantics")
        assert server.wait_for(to=account.address)["Subject"] == "real semantics"


# ----- async use ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_async_context_manager_runs_on_the_callers_loop() -> None:
    async with MailServer(http=False) as server:
        assert server.server.store is not None
        data = server.data_dir
        assert data is not None
        remote = unique()
        waiter = asyncio.create_task(server.await_for(to=remote, subject="async", timeout=20))
        await asyncio.sleep(0)
        await aiosmtplib.send(make([remote], "async hello"), hostname=server.host,
                              port=server.smtp_port, start_tls=False)
        found = await waiter
        assert found.envelope_rcpts == (remote,)
        assert [m["Subject"] for m in await server.amessages(to=remote)] == ["async hello"]
        assert len(await server.aoutbound()) == 1
        with pytest.raises(RuntimeError, match="await_for"):
            server.wait_for(to=remote)
        with pytest.raises(RuntimeError, match="amessages"):
            server.messages(to=remote)
        with pytest.raises(MailTimeout):
            await server.await_for(to=remote, subject="never", timeout=0.2)
        assert await server.aclear() == 1
    assert not data.exists()
    assert not server.running


@pytest.mark.asyncio
async def test_threaded_server_from_async_code(mail: MailServer) -> None:
    """The session fixture's server (own thread) with an application on the test's loop."""
    remote = unique()

    async def application() -> None:
        await asyncio.sleep(0.2)
        await aiosmtplib.send(make([remote], "from the app"), hostname=mail.host,
                              port=mail.smtp_port, start_tls=False)

    app = asyncio.create_task(application())
    found = await mail.await_for(to=remote, timeout=20)  # does not block this loop
    await app
    assert found["Subject"] == "from the app"
    assert [m["Subject"] for m in await mail.amessages(to=remote)] == ["from the app"]
