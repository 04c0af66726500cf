"""The outbound SMTP client against real aiosmtpd peers (tests/support/smtp_peer.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.smtp_peer import SmtpPeer

from mailwright.queue.client import (
    CHUNK_SIZE,
    DotStuffer,
    HostFailure,
    Outgoing,
    Reply,
    connect,
    parse_reply,
)
from mailwright.queue.routing import Hop, TlsMode
from mailwright.store.api import EnvelopeRecipient

PeerFactory = Callable[..., SmtpPeer]
MESSAGE = b"From: a@src.test\r\nTo: b@dst.test\r\nSubject: hi\r\n\r\nHello.\r\n"


def hop_for(
    peer: SmtpPeer, tls: TlsMode = "opportunistic", auth: tuple[str, str] | None = None,
    verify: bool = False, host: str = "peer.example.test",
) -> Hop:
    return Hop(host, peer.host, peer.port, tls, verify, auth)


def outgoing(
    path: Path, recipients: Sequence[str | tuple[str, Mapping[str, str | None]]] = ("b@dst.test",),
    *, mail_from: str = "a@src.test", mail_params: Mapping[str, str | None] | None = None,
    offset: int = 0, prefix: bytes = b"",
) -> Outgoing:
    rcpts = [
        EnvelopeRecipient(r) if isinstance(r, str) else EnvelopeRecipient(r[0], r[1])
        for r in recipients
    ]
    return Outgoing(mail_from, mail_params or {}, rcpts, path, offset, prefix)


def message_file(tmp_path: Path, content: bytes = MESSAGE, name: str = "m.eml") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


async def open_session(
    hop: Hop, context: ssl.SSLContext | None = None, command_timeout: float = 5.0
) -> Any:
    return await connect(
        hop, helo="mail.example.test", tls_context=context or ssl.create_default_context(),
        connect_timeout=5.0, command_timeout=command_timeout,
    )


async def deliver(hop: Hop, message: Outgoing, **kwargs: Any) -> dict[str, Reply]:
    session = await open_session(hop, **kwargs)
    try:
        return dict(await session.send(message))
    finally:
        await session.close()


# ----- pure parts ---------------------------------------------------------------------------------
def test_parse_reply_multiline_with_enhanced_codes() -> None:
    reply = parse_reply([b"550-5.1.1 no such", b"550 5.1.1 user here"])
    assert reply == Reply(550, "5.1.1", "no such\nuser here")
    assert reply.permanent
    assert str(reply) == "550 5.1.1 no such user here"


def test_parse_reply_without_enhanced_code_derives_the_class() -> None:
    assert parse_reply([b"451 try later"]) == Reply(451, "4.0.0", "try later")
    assert parse_reply([b"354 go ahead"]).enhanced == ""
    # An enhanced code of another class is text, not a status (RFC 2034 4).
    assert parse_reply([b"250 5.1.1 odd"]) == Reply(250, "2.0.0", "5.1.1 odd")


@pytest.mark.parametrize("lines", [[b"25 short"], [b"250-a", b"251 b"], [b"250-a"], [b"abc x"]])
def test_parse_reply_rejects_malformed_lines(lines: list[bytes]) -> None:
    with pytest.raises(ValueError, match="reply"):
        parse_reply(lines)


def unstuff(wire: bytes) -> bytes:
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    body = wire[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@given(
    st.lists(st.sampled_from([b".", b"..", b"a", b".a", b"\r\n", b"\r", b"x.y"]), max_size=40),
    st.lists(st.integers(min_value=0, max_value=200), max_size=5),
)
def test_dot_stuffing_round_trips_however_the_chunks_split(
    parts: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(parts) + b"\r\n"
    data = data.replace(b"\r\r", b"\r")  # lines end with CRLF; bare CRs only inside lines
    stuffer = DotStuffer()
    wire, start = b"", 0
    for cut in sorted(c for c in cuts if c < len(data)):
        wire += stuffer.feed(data[start:cut])
        start = cut
    wire += stuffer.feed(data[start:]) + stuffer.end()
    assert unstuff(wire) == data


def test_dot_stuffing_turns_bare_lf_into_crlf() -> None:
    stuffer = DotStuffer()
    assert stuffer.feed(b"a\n.b\r") + stuffer.feed(b"\n.") + stuffer.end() == (
        b"a\r\n..b\r\n..\r\n.\r\n"
    )


# ----- against peers ------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_delivers_over_starttls_with_pipelining(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    session = await open_session(hop_for(peer))
    assert session.is_tls
    assert "PIPELINING" in session.extensions
    result = await session.send(outgoing(message_file(tmp_path), ["b@dst.test", "c@dst.test"]))
    await session.close()
    assert {a: r.code for a, r in result.items()} == {"b@dst.test": 250, "c@dst.test": 250}
    [message] = peer.wait_for(1)
    assert message.tls
    assert message.ehlo == "mail.example.test"
    assert message.recipients == ["b@dst.test", "c@dst.test"]
    assert message.data == MESSAGE
    assert message.mail_params["SIZE"] == str(len(MESSAGE))
    assert peer.sessions[0].pipelined
    assert peer.sessions[0].commands[-1] == "QUIT"


@pytest.mark.asyncio
async def test_require_tls_without_starttls_is_a_host_failure(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory(starttls=False)
    with pytest.raises(HostFailure, match="TLS required"):
        await open_session(hop_for(peer, "require"))
    assert not any(c.startswith("MAIL") for c in peer.sessions[0].commands)


@pytest.mark.asyncio
async def test_opportunistic_without_starttls_goes_plaintext(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory(starttls=False)
    result = await deliver(hop_for(peer), outgoing(message_file(tmp_path)))
    assert result["b@dst.test"].code == 250
    assert not peer.wait_for(1)[0].tls


@pytest.mark.asyncio
async def test_broken_handshake_falls_back_to_plaintext_only_when_opportunistic(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    peer.tls_broken = True
    with pytest.raises(HostFailure, match="handshake"):
        await open_session(hop_for(peer, "require"))
    result = await deliver(hop_for(peer), outgoing(message_file(tmp_path)))
    assert result["b@dst.test"].code == 250
    [message] = peer.wait_for(1)
    assert not message.tls
    assert "STARTTLS" not in peer.sessions[message.session].commands


@pytest.mark.asyncio
async def test_starttls_refused_goes_on_in_plaintext_when_opportunistic(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    peer.starttls_reply = "454 4.7.0 TLS not available"
    with pytest.raises(HostFailure) as info:
        await open_session(hop_for(peer, "require"))
    assert info.value.reply is not None
    assert info.value.reply.code == 454
    result = await deliver(hop_for(peer), outgoing(message_file(tmp_path)))
    assert result["b@dst.test"].code == 250


@pytest.mark.asyncio
async def test_verified_tls_with_a_trusted_certificate(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    hop = hop_for(peer, "require", verify=True, host="localhost")
    result = await deliver(hop, outgoing(message_file(tmp_path)), context=peer.client_context)
    assert result["b@dst.test"].code == 250
    with pytest.raises(HostFailure):  # the default trust store does not know the peer
        await open_session(hop)


@pytest.mark.asyncio
async def test_each_recipient_gets_its_own_final_reply(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    peer.rcpt_replies["gone@dst.test"] = "550 5.1.1 no such user"
    peer.rcpt_replies["full@dst.test"] = "452 4.2.2 mailbox full"
    result = await deliver(
        hop_for(peer), outgoing(message_file(tmp_path), ["gone@dst.test", "ok@dst.test",
                                                         "full@dst.test"])
    )
    assert result == {
        "gone@dst.test": Reply(550, "5.1.1", "no such user"),
        "ok@dst.test": Reply(250, "2.0.0", "OK queued"),
        "full@dst.test": Reply(452, "4.2.2", "mailbox full"),
    }
    assert peer.wait_for(1)[0].recipients == ["ok@dst.test"]


@pytest.mark.asyncio
async def test_data_refused_applies_to_the_accepted_recipients(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    peer.rcpt_replies["gone@dst.test"] = "550 5.1.1 no such user"
    peer.data_reply = "554 5.7.1 spam"
    result = await deliver(
        hop_for(peer), outgoing(message_file(tmp_path), ["gone@dst.test", "ok@dst.test"])
    )
    assert result["gone@dst.test"].enhanced == "5.1.1"
    assert result["ok@dst.test"] == Reply(554, "5.7.1", "spam")
    assert peer.messages == []


@pytest.mark.asyncio
@pytest.mark.parametrize("pipelining", [True, False])
async def test_mail_refused_applies_to_every_recipient(
    smtp_peer_factory: PeerFactory, tmp_path: Path, pipelining: bool
) -> None:
    peer = smtp_peer_factory(pipelining=pipelining)
    peer.mail_reply = "451 4.3.0 try later"
    message = outgoing(message_file(tmp_path), ["b@x.test", "c@x.test"])
    result = await deliver(hop_for(peer), message)
    assert set(result.values()) == {Reply(451, "4.3.0", "try later")}
    assert set(result) == {"b@x.test", "c@x.test"}


@pytest.mark.asyncio
async def test_all_recipients_refused_sends_no_data(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory(pipelining=False)
    peer.rcpt_reply = "550 5.1.1 nobody"
    result = await deliver(hop_for(peer), outgoing(message_file(tmp_path)))
    assert result["b@dst.test"].code == 550
    assert "DATA" not in peer.sessions[0].commands


@pytest.mark.asyncio
@pytest.mark.parametrize("drop", ["data", "dot", "rcpt", "mail"])
async def test_connection_lost_before_the_final_reply_is_a_host_failure(
    smtp_peer_factory: PeerFactory, tmp_path: Path, drop: str
) -> None:
    peer = smtp_peer_factory()
    peer.drop = drop
    big = MESSAGE + b"x" * 78 + b"\r\n" * 5000
    session = await open_session(hop_for(peer))
    with pytest.raises(HostFailure):
        await session.send(outgoing(message_file(tmp_path, big)))
    with pytest.raises(HostFailure, match="closed"):  # a broken session is not reused
        await session.send(outgoing(message_file(tmp_path, big)))
    await session.close()  # never raises
    assert peer.messages == []


@pytest.mark.asyncio
async def test_dot_stuffing_round_trip_is_byte_exact(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    return_path = b"Return-Path: <a@src.test>\r\n"
    body = bytearray(b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmid.dle\r\n")
    while len(body) < 3 * CHUNK_SIZE:  # dotted lines on both sides of the chunk borders
        body += b"." * (len(body) % 7) + b"line\r\n"
    body += b"."  # no final CRLF: the client must add one
    path = message_file(tmp_path, return_path + bytes(body))
    prefix = b"DKIM-Signature: v=1; d=src.test\r\n"
    message = outgoing(path, offset=len(return_path), prefix=prefix)
    assert (await deliver(hop_for(peer), message))["b@dst.test"].code == 250
    assert peer.wait_for(1)[0].data == prefix + bytes(body) + b"\r\n"


@pytest.mark.asyncio
async def test_8bit_to_a_peer_without_8bitmime_is_refused_unsent(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory(eightbitmime=False)
    path = message_file(tmp_path, MESSAGE + "café\r\n".encode())
    result = await deliver(hop_for(peer), outgoing(path, mail_params={"BODY": "8BITMIME"}))
    assert result["b@dst.test"] == Reply(
        554, "5.6.3", "peer.example.test does not accept 8-bit content"
    )
    assert not any(c.startswith("MAIL") for c in peer.sessions[0].commands)
    # Declared 8BITMIME but 7-bit in fact: sent, without the BODY parameter.
    seven = message_file(tmp_path, MESSAGE, "seven.eml")
    result = await deliver(hop_for(peer), outgoing(seven, mail_params={"BODY": "8BITMIME"}))
    assert result["b@dst.test"].code == 250
    assert "BODY" not in peer.wait_for(1)[0].mail_params


@pytest.mark.asyncio
async def test_8bit_body_is_declared_to_a_peer_with_8bitmime(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    content = MESSAGE + "café\r\n".encode()
    path = message_file(tmp_path, content)
    await deliver(hop_for(peer), outgoing(path, mail_params={"BODY": "8BITMIME"}))
    [message] = peer.wait_for(1)
    assert message.mail_params["BODY"] == "8BITMIME"
    assert message.data == content


@pytest.mark.asyncio
async def test_internationalised_address_needs_smtputf8(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    path = message_file(tmp_path)
    without = smtp_peer_factory(smtputf8=False)
    result = await deliver(hop_for(without), outgoing(path, ["josé@dst.test"]))
    assert result["josé@dst.test"] == Reply(
        553, "5.6.7", "peer.example.test does not support SMTPUTF8"
    )
    with_utf8 = smtp_peer_factory()
    result = await deliver(hop_for(with_utf8), outgoing(path, ["josé@dst.test"]))
    assert result["josé@dst.test"].code == 250
    [message] = with_utf8.wait_for(1)
    assert "SMTPUTF8" in message.mail_params
    assert message.recipients == ["josé@dst.test"]


@pytest.mark.asyncio
async def test_message_over_the_peer_size_is_refused_unsent(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory(size=20)
    result = await deliver(hop_for(peer), outgoing(message_file(tmp_path)))
    assert (result["b@dst.test"].code, result["b@dst.test"].enhanced) == (552, "5.3.4")
    assert not any(c.startswith("MAIL") for c in peer.sessions[0].commands)


@pytest.mark.asyncio
async def test_dsn_parameters_only_to_a_peer_that_offers_dsn(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    path = message_file(tmp_path)
    rcpt = ("b@dst.test", {"NOTIFY": "FAILURE,DELAY", "ORCPT": "rfc822;B@dst.test"})
    params = {"RET": "HDRS", "ENVID": "QQ314159"}
    with_dsn = smtp_peer_factory()
    await deliver(hop_for(with_dsn), outgoing(path, [rcpt], mail_params=params))
    [message] = with_dsn.wait_for(1)
    assert message.mail_params["RET"] == "HDRS"
    assert message.mail_params["ENVID"] == "QQ314159"
    assert message.rcpt == [("b@dst.test", {"NOTIFY": "FAILURE,DELAY",
                                            "ORCPT": "rfc822;B@dst.test"})]
    without = smtp_peer_factory(dsn=False)
    result = await deliver(hop_for(without), outgoing(path, [rcpt], mail_params=params))
    assert result["b@dst.test"].code == 250
    [message] = without.wait_for(1)
    assert message.rcpt == [("b@dst.test", {})]
    assert "RET" not in message.mail_params


@pytest.mark.asyncio
async def test_smart_host_auth_over_starttls(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory(auth=("me", "s3cret"))
    hop = hop_for(peer, "require", auth=("me", "s3cret"))
    result = await deliver(hop, outgoing(message_file(tmp_path)))
    assert result["b@dst.test"].code == 250
    [message] = peer.wait_for(1)
    assert message.auth_user == "me"
    assert message.tls
    with pytest.raises(HostFailure) as info:
        await open_session(hop_for(peer, "require", auth=("me", "wrong")))
    assert info.value.permanent
    assert info.value.reply is not None
    assert info.value.reply.code == 535


@pytest.mark.asyncio
async def test_implicit_tls_smart_host(smtp_peer_factory: PeerFactory, tmp_path: Path) -> None:
    peer = smtp_peer_factory(implicit_tls=True, auth=("me", "pw"))
    result = await deliver(hop_for(peer, "implicit", auth=("me", "pw")),
                           outgoing(message_file(tmp_path)))
    assert result["b@dst.test"].code == 250
    [message] = peer.wait_for(1)
    assert message.tls
    assert message.auth_user == "me"


@pytest.mark.asyncio
async def test_session_reuse_resets_between_messages(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    session = await open_session(hop_for(peer))
    first = await session.send(outgoing(message_file(tmp_path), ["b@dst.test"]))
    second = await session.send(
        outgoing(message_file(tmp_path, MESSAGE + b"2\r\n", "two.eml"), ["c@dst.test"])
    )
    await session.close()
    assert first["b@dst.test"].code == second["c@dst.test"].code == 250
    one, two = peer.wait_for(2)
    assert one.session == two.session == 0
    assert two.recipients == ["c@dst.test"]
    assert two.data == MESSAGE + b"2\r\n"
    commands = [c.split(" ")[0] for c in peer.sessions[0].commands]
    assert commands.count("RSET") == 1
    assert commands.index("RSET") > commands.index("DATA")


@pytest.mark.asyncio
async def test_helo_fallback_when_ehlo_is_refused(
    smtp_peer_factory: PeerFactory, tmp_path: Path
) -> None:
    peer = smtp_peer_factory()
    peer.ehlo_reply = "502 5.5.1 EHLO not implemented"
    session = await open_session(hop_for(peer))
    assert session.extensions == {}
    assert not session.is_tls
    result = await session.send(outgoing(message_file(tmp_path)))
    await session.close()
    assert result["b@dst.test"].code == 250
    assert peer.wait_for(1)[0].ehlo == "mail.example.test"


@pytest.mark.asyncio
@pytest.mark.parametrize(("greeting", "permanent"), [("554 5.7.1 go away", True),
                                                      ("421 4.3.2 busy", False)])
async def test_refused_greeting_is_a_host_failure(
    smtp_peer_factory: PeerFactory, greeting: str, permanent: bool
) -> None:
    peer = smtp_peer_factory()
    peer.greeting = greeting
    with pytest.raises(HostFailure) as info:
        await open_session(hop_for(peer))
    assert info.value.permanent is permanent


@pytest.mark.asyncio
async def test_silent_peer_times_out(smtp_peer_factory: PeerFactory) -> None:
    peer = smtp_peer_factory()
    peer.delay = 2.0
    with pytest.raises(HostFailure, match="timeout"):
        await open_session(hop_for(peer), command_timeout=0.3)


@pytest.mark.asyncio
async def test_connection_refused_is_a_temporary_host_failure(
    smtp_peer_factory: PeerFactory,
) -> None:
    peer = smtp_peer_factory()
    port = peer.port
    peer.stop()
    with pytest.raises(HostFailure, match="connect") as info:
        await open_session(Hop("down.test", "127.0.0.1", port, "opportunistic"))
    assert not info.value.permanent
