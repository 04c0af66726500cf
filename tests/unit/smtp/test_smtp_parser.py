"""The SMTP command grammar: tables of wire -> expected, and property tests (STYLE.md 8, 9)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.smtp.commands import (
    ALL_COMMANDS,
    Auth,
    Bdat,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
    Vrfy,
)
from mailwright.smtp.parser import SyntaxErr, parse_command, parse_mailbox

VALID = [
    (b"EHLO client.example", Ehlo("client.example")),
    (b"ehlo [192.0.2.1]", Ehlo("[192.0.2.1]")),
    (b"HELO client", Helo("client")),
    (b"MAIL FROM:<a@b.example>", Mail("a@b.example", {})),
    (b"mail from:<a@b.example>", Mail("a@b.example", {})),
    (b"MAIL FROM: <a@b.example>", Mail("a@b.example", {})),  # lenient space, as Postfix
    (b"MAIL FROM:<>", Mail("", {})),
    (b"MAIL FROM:<a@b.example> SIZE=1000 BODY=8bitmime",
     Mail("a@b.example", {"SIZE": "1000", "BODY": "8BITMIME"})),
    (b"MAIL FROM:<a@b.example> BODY=BINARYMIME", Mail("a@b.example", {"BODY": "BINARYMIME"})),
    (b"MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ+2B1",
     Mail("a@b.example", {"RET": "HDRS", "ENVID": "QQ+2B1"})),
    (b"MAIL FROM:<a@b.example> AUTH=<>", Mail("a@b.example", {"AUTH": "<>"})),
    (b"MAIL FROM:<@relay.example:a@b.example>", Mail("a@b.example", {})),
    (b'MAIL FROM:<"odd > name"@b.example>', Mail('"odd > name"@b.example', {})),
    ("MAIL FROM:<jös@bücher.example> SMTPUTF8".encode(),
     Mail("jös@bücher.example", {"SMTPUTF8": None})),
    (b"RCPT TO:<c@d.example>", Rcpt("c@d.example", {})),
    (b"RCPT TO:<Postmaster>", Rcpt("Postmaster", {})),
    (b"RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+40d.example",
     Rcpt("c@d.example", {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;c+40d.example"})),
    (b"RCPT TO:<c@[192.0.2.7]>", Rcpt("c@[192.0.2.7]", {})),
    (b"DATA", Data()),
    (b"BDAT 100", Bdat(100, False)),
    (b"BDAT 0 LAST", Bdat(0, True)),
    (b"bdat 5 last", Bdat(5, True)),
    (b"RSET", Rset()),
    (b"NOOP", Noop()),
    (b"NOOP whatever", Noop()),
    (b"QUIT", Quit()),
    (b"VRFY alice", Vrfy("alice")),
    (b"EXPN list", Expn("list")),
    (b"HELP", Help("")),
    (b"HELP MAIL", Help("MAIL")),
    (b"STARTTLS", StartTls()),
    (b"AUTH PLAIN", Auth("PLAIN", None)),
    (b"AUTH plain AGFsaWNlAHB3", Auth("PLAIN", "AGFsaWNlAHB3")),
    (b"AUTH PLAIN =", Auth("PLAIN", "=")),
    (b"AUTH LOGIN", Auth("LOGIN", None)),
]

INVALID = [
    (b"", 500, "5.5.2"),
    (b"FOO", 500, "5.5.2"),
    (b"EHLO", 501, "5.5.4"),
    (b"MAIL TO:<a@b.example>", 501, "5.5.4"),
    (b"MAIL FROM:a@b.example", 501, "5.5.4"),
    (b"MAIL FROM:<a@b.example", 501, "5.5.4"),
    (b"MAIL FROM:<a@b.example>SIZE=1", 501, "5.5.4"),
    (b"MAIL FROM:<a@b.example> FOO=1", 555, "5.5.4"),
    (b"MAIL FROM:<a@b.example> SIZE=abc", 501, "5.5.4"),
    (b"MAIL FROM:<a@b.example> SIZE=1 SIZE=2", 501, "5.5.4"),
    (b"MAIL FROM:<a@b.example> BODY=9BIT", 501, "5.5.4"),
    (b"MAIL FROM:<a@b.example> SMTPUTF8=yes", 501, "5.5.4"),
    (b"MAIL FROM:<a b@c.example>", 501, "5.1.3"),
    (b"MAIL FROM:<a@-bad.example>", 501, "5.1.3"),
    (b"MAIL FROM:<a..b@c.example>", 501, "5.1.3"),
    (b"MAIL FROM:<@c.example>", 501, "5.1.3"),
    (b"RCPT TO:<>", 501, "5.1.3"),
    (b"RCPT TO:<c@d.example> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
    (b"RCPT TO:<c@d.example> SIZE=1", 555, "5.5.4"),
    (b"DATA now", 501, "5.5.4"),
    (b"BDAT", 501, "5.5.4"),
    (b"BDAT -1", 501, "5.5.4"),
    (b"BDAT 1 FIRST", 501, "5.5.4"),
    (b"BDAT 999999999999999999999999", 501, "5.5.4"),
    (b"AUTH", 501, "5.5.4"),
    (b"VRFY", 501, "5.5.4"),
    (b"MAIL FROM:<\xff@b.example>", 500, "5.5.2"),
    (b"NOOP \x00", 500, "5.5.2"),
]


@pytest.mark.parametrize(("wire", "expected"), VALID)
def test_valid_commands_parse(wire: bytes, expected: object) -> None:
    assert parse_command(wire) == expected


@pytest.mark.parametrize(("wire", "code", "enhanced"), INVALID)
def test_invalid_commands_give_their_reply(wire: bytes, code: int, enhanced: str) -> None:
    result = parse_command(wire)
    assert isinstance(result, SyntaxErr), result
    assert (result.reply.code, result.reply.enhanced) == (code, enhanced)


def test_auth_repr_hides_initial_response() -> None:
    assert "AGFsaWNl" not in repr(parse_command(b"AUTH PLAIN AGFsaWNlAHB3"))


@pytest.mark.parametrize(
    "mailbox", ["a@b.c", '"x y"@b.c', "a.b+c@[IPv6:::1]", "ü@ü.example", "a@b-c.d"]
)
def test_parse_mailbox_accepts(mailbox: str) -> None:
    assert parse_mailbox(mailbox) == mailbox


@settings(deadline=None)  # no flaky timing on a loaded CI machine
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_command_or_syntax_error(data: bytes) -> None:
    result = parse_command(data)
    assert isinstance(result, (SyntaxErr, *ALL_COMMANDS))


@settings(deadline=None)  # no flaky timing on a loaded CI machine
@given(st.text(max_size=300))
def test_any_text_after_a_verb_never_raises(text: str) -> None:
    for verb in ("MAIL FROM:", "RCPT TO:", "EHLO ", "AUTH ", "BDAT ", "MAIL FROM:<"):
        result = parse_command((verb + text).encode("utf-8", "surrogatepass"))
        assert isinstance(result, (SyntaxErr, *ALL_COMMANDS))


_atom = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789+-_", min_size=1, max_size=10)
_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")


@settings(deadline=None)  # no flaky timing on a loaded CI machine
@given(_atom, st.lists(_label, min_size=1, max_size=4),
       st.sampled_from(["7BIT", "8BITMIME", "BINARYMIME"]),
       st.integers(min_value=0, max_value=10**12))
def test_mail_round_trips(local: str, labels: list[str], body: str, size: int) -> None:
    address = f"{local}@{'.'.join(labels)}"
    wire = f"MAIL FROM:<{address}> SIZE={size} BODY={body}".encode()
    assert parse_command(wire) == Mail(address, {"SIZE": str(size), "BODY": body})
