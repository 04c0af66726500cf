"""DSNs built by build_dsn, read back with the stdlib email parser (RFC 3464 / RFC 6522 /
RFC 6533)."""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from typing import Any

from mailwright.queue.dsn import (
    MAX_RETURNED_SIZE,
    SUBJECT_DELAYED,
    SUBJECT_FAILED,
    SUBJECT_SUCCESS,
    DsnRecipient,
    build_dsn,
    is_international,
    utf8_xtext_encode,
    xtext_encode,
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


# ----- success reports (RFC 3461 6.2, RFC 3464 2.3.3) --------------------------------------------
def success(action: str, address: str = "bob@dst.test", **kw: Any) -> DsnRecipient:
    values: dict[str, Any] = dict(action=action, status="2.0.0", diagnostic=None,
                                  remote_mta=None, last_attempt=NOW)
    values.update(kw)
    return failed(address, **values)


def test_relayed_report_names_the_host_and_its_250() -> None:
    report = parse(build(ret="FULL", recipients=[success(
        "relayed", diagnostic="smtp; 250 2.0.0 queued as 1234", remote_mta="mx.dst.test")]))
    assert report["Subject"] == SUBJECT_SUCCESS
    [_, rcpt] = status_blocks(report)
    assert rcpt["Action"] == "relayed"
    assert rcpt["Status"] == "2.0.0"
    assert rcpt["Remote-MTA"] == "dns; mx.dst.test"
    assert rcpt["Diagnostic-Code"] == "smtp; 250 2.0.0 queued as 1234"
    text = parts(report)[0].get_content()
    assert "does not send delivery reports" in text
    assert "<bob@dst.test>: host mx.dst.test said: 250 2.0.0 queued as 1234" in text
    # RFC 3461 4.3: a report without a failure returns the header only, whatever RET says.
    assert parts(report)[2].get_content_type() == "text/rfc822-headers"


def test_delivered_and_expanded_reports() -> None:
    report = parse(build(recipients=[
        success("delivered", original_recipient="rfc822;team@dst.test"),
        success("expanded", "list@dst.test"),
    ]))
    assert report["Subject"] == SUBJECT_SUCCESS
    _, bob, team = status_blocks(report)
    assert (bob["Action"], bob["Status"]) == ("delivered", "2.0.0")
    assert bob["Original-Recipient"] == "rfc822; team@dst.test"
    assert "Remote-MTA" not in bob
    assert "Diagnostic-Code" not in bob
    assert (team["Action"], team["Final-Recipient"]) == ("expanded", "rfc822; list@dst.test")
    text = parts(report)[0].get_content()
    assert "delivered to the mailboxes" in text
    assert "<bob@dst.test>: delivered" in text
    assert "pass it on to several" in text
    assert "<list@dst.test>: expanded" in text
    assert "could not be delivered" not in text


def test_mixed_report_takes_the_failure_subject_and_explains_both() -> None:
    report = parse(build(ret="FULL", recipients=[failed(), success("delivered", "carol@dst.test")]))
    assert report["Subject"] == SUBJECT_FAILED
    _, bob, carol = status_blocks(report)
    assert (bob["Action"], carol["Action"]) == ("failed", "delivered")
    text = parts(report)[0].get_content()
    assert text.index("could not be delivered") < text.index("delivered to the mailboxes")
    assert parts(report)[2].get_content_type() == "message/rfc822"  # a failure: RET=FULL holds


def test_final_recipient_is_not_xtext_decoded_but_orcpt_is() -> None:
    report = parse(build(recipients=[failed("bob+2bad@dst.test",
                                            original_recipient="rfc822;bob+2B2bad@dst.test")]))
    [_, rcpt] = status_blocks(report)
    assert rcpt["Final-Recipient"] == "rfc822; bob+2bad@dst.test"
    assert rcpt["Original-Recipient"] == "rfc822; bob+2bad@dst.test"


# ----- RFC 6533: internationalised reports -------------------------------------------------------
UTF8_ORIGINAL = (
    "From: Jörg <jörg@bücher.test>\r\nTo: zoë@dst.test\r\nSubject: grüße\r\n\r\nHallo!\r\n"
).encode()


def global_fields(data: bytes) -> str:
    """The message/global-delivery-status part's text (the stdlib parses it as a message)."""
    start = data.index(b"Content-Type: message/global-delivery-status")
    return data[start : data.index(b"\r\n--", start)].decode("utf-8")


def test_utf8_recipient_gives_a_global_report_with_utf8_address_type() -> None:
    orcpt = "utf-8;zo\\x{EB}+2B1@dst.test"  # RFC 6533 3 utf-8-addr-xtext as sent in ORCPT
    data = build(to="jörg@bücher.test", original=UTF8_ORIGINAL,
                 recipients=[failed("zoë@dst.test", original_recipient=orcpt)])
    assert is_international("jörg@bücher.test", [failed("zoë@dst.test")], UTF8_ORIGINAL)
    report = parse(data)
    assert report["To"] == "jörg@bücher.test"  # raw UTF-8 (RFC 6532), no encoded words
    assert "To: jörg@bücher.test\r\n".encode() in data
    assert [p.get_content_type() for p in parts(report)] == [
        "text/plain", "message/global-delivery-status", "message/global-headers"
    ]
    fields = global_fields(data)
    assert "Final-Recipient: utf-8; zoë@dst.test\r\n" in fields
    assert "Original-Recipient: utf-8; zoë+2B1@dst.test\r\n" in fields  # \x{} decoded only
    assert "Action: failed\r\n" in fields
    headers = UTF8_ORIGINAL.split(b"\r\n\r\n")[0]
    assert headers in data  # the header section, byte for byte
    assert b"Hallo!" not in data


def test_utf8_full_return_is_message_global_unchanged() -> None:
    data = build(ret="FULL", original=UTF8_ORIGINAL)
    report = parse(data)
    returned = parts(report)[2]
    assert returned.get_content_type() == "message/global"
    assert returned["Content-Transfer-Encoding"] == "8bit"
    assert UTF8_ORIGINAL in data
    # The addresses are ASCII here: only the original made it international.
    assert "Final-Recipient: rfc822; bob@dst.test\r\n" in global_fields(data)


def test_ascii_mail_keeps_the_rfc3464_types() -> None:
    assert not is_international("alice@src.test", [failed()], ORIGINAL)
    data = build()
    assert data.isascii()
    assert b"message/global" not in data


def test_xtext_encoders() -> None:
    assert xtext_encode("a+b=c@x.test") == "a+2Bb+3Dc@x.test"
    assert utf8_xtext_encode("zoë+1@x.test") == "zo\\x{EB}\\x{2B}1@x.test"
