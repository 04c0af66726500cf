"""pytest fixtures for mailwright, registered through the `pytest11` entry point (nothing to
import or list in `pytest_plugins`). See docs/testing.md.

    mail_server          MailServer, one per test session (so one per pytest-xdist worker,
                         each worker being its own process); capture mode on
    mail_server_options  dict of MailServer keyword arguments (default {}); override it in a
                         conftest.py to configure `mail_server`
    mail_account         Account with a fresh address (`<test name>-<random>@mailwright.test`)
                         and password for each test, so tests never see each other's mail
    smtp_client          smtplib.SMTP on the submission port, STARTTLS done, logged in as
                         mail_account
    imap_client          imaplib.IMAP4_SSL on the IMAPS port, logged in as mail_account
    pop3_client          poplib.POP3_SSL on the POP3S port, logged in as mail_account

The clients are closed after each test. The fixtures are plain (sync) ones, so async tests
(pytest-asyncio) use them as they are; in async code call the awaitable helpers of the
server (`await mail_server.await_for(...)`), which do not block the test's loop.

Importing this module costs next to nothing: a suite that never asks for these fixtures
never imports the server.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the clients are imported by their fixtures: pytest loads this module always
    import imaplib
    import poplib
    import smtplib

    from mailwright.testing.mailserver import Account, MailServer

# Local domain of the per-test accounts: a reserved name (RFC 2606 .test) unlikely to be one
# the application under test sends to, since its mail for local domains is not captured.
ACCOUNT_DOMAIN = "mailwright.test"
# RFC 5321 4.5.3.1.1: a local part is at most 64 octets; the random suffix takes 7.
_NAME_MAX = 40


@pytest.fixture(scope="session")
def mail_server_options() -> dict[str, Any]:
    """Keyword arguments for `mail_server`'s MailServer; override in a conftest.py."""
    return {}


@pytest.fixture(scope="session")
def mail_server(mail_server_options: dict[str, Any]) -> Iterator[MailServer]:
    """A running MailServer for the whole session (capture mode unless the options say not)."""
    from mailwright.testing.mailserver import MailServer

    with MailServer(**mail_server_options) as server:
        yield server


@pytest.fixture
def mail_account(mail_server: MailServer, request: pytest.FixtureRequest) -> Account:
    """A fresh account for this test, named after it."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:_NAME_MAX]
    address = f"{name or 'test'}-{secrets.token_hex(3)}@{ACCOUNT_DOMAIN}"
    return mail_server.add_account(address)


@pytest.fixture
def smtp_client(mail_server: MailServer, mail_account: Account) -> Iterator[smtplib.SMTP]:
    """SMTP submission (port 587's role) with STARTTLS, authenticated as `mail_account`."""
    import smtplib

    client = smtplib.SMTP(mail_server.host, mail_server.submission_port, timeout=30)
    try:
        client.starttls(context=mail_server.ssl_context)
        client.login(mail_account.address, mail_account.password)
        yield client
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


@pytest.fixture
def imap_client(mail_server: MailServer, mail_account: Account) -> Iterator[imaplib.IMAP4_SSL]:
    """IMAP over implicit TLS, logged in as `mail_account` (nothing selected yet)."""
    import imaplib

    client = imaplib.IMAP4_SSL(
        mail_server.host, mail_server.imaps_port, ssl_context=mail_server.ssl_context, timeout=30
    )
    try:
        client.login(mail_account.address, mail_account.password)
        yield client
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()


@pytest.fixture
def pop3_client(mail_server: MailServer, mail_account: Account) -> Iterator[poplib.POP3_SSL]:
    """POP3 over implicit TLS, logged in as `mail_account`."""
    import poplib

    client = poplib.POP3_SSL(
        mail_server.host, mail_server.pop3s_port, context=mail_server.ssl_context, timeout=30
    )
    try:
        client.user(mail_account.address)
        client.pass_(mail_account.password)
        yield client
    finally:
        with contextlib.suppress(poplib.error_proto, OSError):
            client.quit()
        client.close()
