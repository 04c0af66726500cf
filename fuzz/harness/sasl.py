"""SASL PLAIN and LOGIN (auth/sasl.py): the decoders raise only SaslError; an exchange driven
by arbitrary client lines returns Challenge, Success or Failure values and never raises.

Input: byte 0 picks the mechanism and whether an initial response is given; the rest is the
client's lines (LF-separated), each as the session hands it over (CRLF removed).
"""

from __future__ import annotations

from mailwright.auth.sasl import (
    MAX_FIELD,
    Challenge,
    Failure,
    SaslError,
    SaslExchange,
    Success,
    decode_base64,
    parse_login_field,
    parse_plain,
)


def _decoders(line: bytes) -> None:
    for text in (line, line.decode("latin-1")):
        try:
            decoded = decode_base64(text)
        except SaslError:
            continue
        for parse in (parse_plain, lambda raw: parse_login_field(raw, "username")):
            try:
                result = parse(decoded)
            except SaslError:
                continue
            if isinstance(result, str):
                assert result
                assert "\x00" not in result
            else:
                assert result.username
                assert result.password
                assert len(result.password.encode()) <= MAX_FIELD


def fuzz_sasl(data: bytes) -> None:
    mode, rest = (data[0] if data else 0), data[1:]
    lines = rest.split(b"\n")
    for line in lines[:8]:
        _decoders(line.rstrip(b"\r"))
    exchange = SaslExchange("PLAIN" if mode & 1 else "LOGIN")
    initial: bytes | None = None
    if mode & 2:
        try:
            initial = decode_base64(lines[0])
        except SaslError:
            initial = None
        lines = lines[1:]
    step = exchange.start(initial)
    for line in lines:
        if not isinstance(step, Challenge):
            break
        step = exchange.step(line.rstrip(b"\r"))
    match step:
        case Success(credentials=creds):
            assert creds.username
            assert creds.password
            assert "\x00" not in creds.username + creds.password
            assert "password=" not in repr(creds)  # never in a log line
        case Failure(reason=reason):
            assert reason
        case Challenge():
            pass
