"""Failed logins from one address get slower and slower, across protocols; success resets."""

from __future__ import annotations

import poplib
import smtplib
import time
from typing import Any

import pytest

ALICE, ALICE_PW = "alice@example.test", "alice-pw"
BASE = 0.3  # seconds: failures wait 0.3, 0.6, 1.2, ... (argon2 adds ~0.15 s to each)


def pop3_login(server: Any, password: str) -> float:
    """Seconds the PASS took; asserts the protocol's answer."""
    client = poplib.POP3(server.host, server.port("pop3"), timeout=30)
    try:
        client.user(ALICE)
        started = time.monotonic()
        if password == ALICE_PW:
            client.pass_(password)
        else:
            with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
                client.pass_(password)
        elapsed = time.monotonic() - started
        client.quit()
    finally:
        client.close()
    return elapsed


def test_failure_delay_grows_per_address_is_shared_and_resets(server_factory: Any) -> None:
    server = server_factory({"MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": str(BASE),
                             "MAILWRIGHT_AUTH_FAILURE_MAX_DELAY": "5"})
    server.add_account(ALICE, ALICE_PW)
    first = pop3_login(server, "wrong-1")
    second = pop3_login(server, "wrong-2")
    assert first >= BASE
    assert second >= 2 * BASE
    # The third failure comes through SMTP: the penalty belongs to the address, not the protocol.
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as client:
        client.ehlo()
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(ALICE, "wrong-3")
        third = time.monotonic() - started
    assert third >= 4 * BASE
    assert third > first + 2 * BASE
    pop3_login(server, ALICE_PW)  # success clears the penalty
    assert pop3_login(server, "wrong-4") < third  # back to the first step (0.3 s, not 2.4 s)
