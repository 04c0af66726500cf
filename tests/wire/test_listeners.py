"""The process around the protocols, over real sockets: TLS modes per listener, connection
limits answered with each protocol's busy reply, and a restart that keeps the mail."""

from __future__ import annotations

import json
import poplib
import smtplib
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: several conftest.py files share that module name
    from conftest import RunningServer, ServerFactory


def test_implicit_tls_listeners_speak_tls_from_the_first_byte(server: RunningServer) -> None:
    with smtplib.SMTP_SSL(
        server.host, server.port("submissions"), context=server.ssl_context, timeout=10
    ) as smtp:
        assert smtp.ehlo()[0] == 250
    pop = poplib.POP3_SSL(server.host, server.port("pop3s"), context=server.ssl_context, timeout=10)
    assert pop.getwelcome().startswith(b"+OK")
    pop.quit()


def test_listeners_json_matches_the_bound_ports(server: RunningServer) -> None:
    listing = json.loads((server.data_dir / "listeners.json").read_text())
    assert {name: entry["port"] for name, entry in listing.items()} == {
        name: server.port(name) for name in listing
    }
    assert {name: entry["tls"] for name, entry in listing.items()} == {
        "smtp": "starttls", "submission": "starttls", "submissions": "implicit",
        "pop3": "starttls", "pop3s": "implicit", "imap": "starttls", "imaps": "implicit",
    }


def test_smtp_over_the_per_ip_limit_gets_421(server_factory: ServerFactory) -> None:
    server = server_factory({"MAILWRIGHT_SMTP_MAX_CONNECTIONS_PER_IP": "1"})
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as first:
        assert first.noop()[0] == 250
        with socket.create_connection((server.host, server.port("smtp")), timeout=10) as second:
            reply = second.makefile("rb").readline()
            assert reply.startswith(b"421 4.7.0 ")
        # The submission listener shares the SMTP limit; the first client is unaffected.
        submission = (server.host, server.port("submission"))
        with socket.create_connection(submission, timeout=10) as third:
            assert third.makefile("rb").readline().startswith(b"421 4.7.0 ")
        assert first.noop()[0] == 250


def test_pop3_over_the_total_limit_gets_sys_temp(server_factory: ServerFactory) -> None:
    server = server_factory({"MAILWRIGHT_POP3_MAX_CONNECTIONS": "1"})
    first = poplib.POP3(server.host, server.port("pop3"), timeout=10)
    # pop3s shares the POP3 limit; it is implicit TLS, so its refusal comes through TLS.
    with (
        socket.create_connection((server.host, server.port("pop3s")), timeout=10) as plain,
        server.ssl_context.wrap_socket(plain, server_hostname=server.host) as second,
    ):
        reply = second.makefile("rb").readline()
    assert reply.startswith(b"-ERR [SYS/TEMP]")
    first.quit()


def test_restart_on_the_same_data_directory_keeps_mail(server_factory: ServerFactory) -> None:
    first = server_factory(durable=True)
    first.add_account("carol@example.test", "carol-password")
    with smtplib.SMTP(first.host, first.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("x@remote.test", ["carol@example.test"], "Subject: kept\r\n\r\nhello\r\n")
    first.stop()

    second = server_factory({"MAILWRIGHT_DATA": str(first.data_dir)}, durable=True)
    pop = poplib.POP3(second.host, second.port("pop3"), timeout=10)
    pop.user("carol@example.test")
    pop.pass_("carol-password")
    assert pop.stat()[0] == 1
    assert b"Subject: kept" in pop.retr(1)[1]
    pop.quit()
