"""DSNs built by build_dsn, read back with the stdlib email parser (RFC 3464 / RFC 6522)."""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from typing import Any

from mailwright.queue.dsn import (
    MAX_RETURNED_SIZE,
    SUBJECT_DELAYED,
    SUBJECT_FAILED,
    DsnRecipient,
    build_dsn,
)

ORIGINAL = (
    b"From: Alice <alice@src.test>\r\nTo: bob@dst.test\r\nSubject: lunch?\r\n"
    b"Message-ID: <1@src.test>\r\n\r\nAre you free?\r\n"
)
NOW = 1_700_000_000.0


def failed(address: str = "bob@dst.test", **kw: Any) -> DsnRecipient:
    values: dict[str, Any] = dict(
        final_recipient=address, original_recipient=None, action="failed", status="5.1.1",
        diagnostic="smtp; 550 5.1.1 no such user", remote_mta="mx.dst.test",
        last_attempt=NOW - 1, will_retry_until=None,
    )
    values.update(kw)
    return DsnRecipient(**values)


def build(**kw: Any) -> bytes:
    values: dict[str, Any] = dict(
        reporting_mta="mail.src.test", to="alice@src.test", recipients=[failed()],
        original=ORIGINAL, ret="HDRS", envid=None, arrival=NOW - 100, now=NOW,
    )
    values.update(kw)
    return build_dsn(**values)


def parse(data: bytes) -> Message:
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    return email.message_from_bytes(data, policy=email.policy.default)


def parts(report: Message) -> list[Message]:
    payload = report.get_payload()
    assert isinstance(payload, list)
    return payload


def status_blocks(report: Message) -> list[Message]:
    blocks = parts(report)[1].get_payload()
    assert isinstance(blocks, list)
    return blocks


def test_failure_report_structure_and_headers() -> None:
    report = parse(build())
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["From"] == "Mail Delivery System <MAILER-DAEMON@mail.src.test>"
    assert report["To"] == "alice@src.test"
    assert report["Subject"] == SUBJECT_FAILED
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["Message-ID"].endswith("@mail.src.test>")
    assert [p.get_content_type() for p in parts(report)] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"
    ]


def test_per_message_and_per_recipient_fields() -> None:
    report = parse(build(
        envid="QQ+2B1",
        recipients=[failed(original_recipient="rfc822;Bob+2Bx@dst.test"),
                    failed("carol@dst.test", status="5.2.2",
                           diagnostic="smtp; 552 5.2.2 mailbox full")],
    ))
    message, bob, carol = status_blocks(report)
    assert message["Reporting-MTA"] == "dns; mail.src.test"
    assert message["Original-Envelope-Id"] == "QQ+1"  # xtext decoded (RFC 3461 4)
    assert message["Arrival-Date"]
    assert bob["Original-Recipient"] == "rfc822; Bob+x@dst.test"
    assert bob["Final-Recipient"] == "rfc822; bob@dst.test"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.dst.test"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert bob["Last-Attempt-Date"]
    assert "Will-Retry-Until" not in bob
    assert carol["Final-Recipient"] == "rfc822; carol@dst.test"
    assert "Original-Recipient" not in carol
    assert carol["Status"] == "5.2.2"


def test_human_part_names_each_failed_recipient_and_why() -> None:
    report = parse(build(recipients=[failed(), failed("carol@dst.test", remote_mta=None,
                                                      diagnostic=None, status="5.1.10")]))
    text = parts(report)[0].get_content()
    assert "<bob@dst.test>: host mx.dst.test said: 550 5.1.1 no such user" in text
    assert "<carol@dst.test>: status 5.1.10" in text


def test_delay_report() -> None:
    until = NOW + 4 * 86400
    report = parse(build(recipients=[failed(action="delayed", status="4.4.1",
                                            diagnostic="smtp; 451 4.4.1 later",
                                            will_retry_until=until)]))
    assert report["Subject"] == SUBJECT_DELAYED
    [_, rcpt] = status_blocks(report)
    assert rcpt["Action"] == "delayed"
    assert rcpt["Will-Retry-Until"]
    assert "still trying" in parts(report)[0].get_content()


def test_ret_full_returns_the_whole_message_unchanged() -> None:
    long_header = b"X-Long: " + b"word " * 40 + b"\r\n"  # must not be refolded
    original = long_header + ORIGINAL
    data = build(ret="FULL", original=original)
    report = parse(data)
    returned = parts(report)[2]
    assert returned.get_content_type() == "message/rfc822"
    [inner] = returned.get_payload()
    assert inner["Subject"] == "lunch?"
    assert inner.get_content().rstrip() == "Are you free?"
    assert original in data


def test_headers_only_for_ret_hdrs_and_for_big_messages() -> None:
    headers = ORIGINAL.split(b"\r\n\r\n")[0]
    for data in (
        build(ret="HDRS"),
        build(ret="FULL", original=ORIGINAL + b"x" * (MAX_RETURNED_SIZE + 1)),
    ):
        returned = parts(parse(data))[2]
        assert returned.get_content_type() == "text/rfc822-headers"
        assert headers in data
        assert b"Are you free?" not in data
        assert len(data) < 10_000
