"""SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), shared by SMTP (RFC 4954),
POP3 (RFC 5034) and IMAP (RFC 9051 6.2.2). Pure: the decoding functions take base64 text and
return credentials or raise SaslError; `SaslExchange` runs the challenge/response steps and
returns each outcome as a value, so no session re-implements the exchange.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field
from typing import Final, assert_never

MECHANISMS: Final = ("PLAIN", "LOGIN")
# LOGIN's challenges, base64 of "Username:" and "Password:".
LOGIN_USERNAME_CHALLENGE: Final = base64.b64encode(b"Username:").decode()
LOGIN_PASSWORD_CHALLENGE: Final = base64.b64encode(b"Password:").decode()
# RFC 4616 2: each of authzid, authcid and passwd is at most 255 octets.
MAX_FIELD: Final = 255


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)  # never in a log line or a traceback
    authzid: str = ""


class SaslError(ValueError):
    """Malformed SASL data: the session answers 501 / -ERR, never raises further."""


def decode_base64(text: str | bytes) -> bytes:
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    data = data.strip()
    if data == b"=":  # RFC 4954 4: "=" is an empty initial response
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("invalid base64") from None


def _utf8(raw: bytes, what: str) -> str:
    if len(raw) > MAX_FIELD:
        raise SaslError(f"{what} too long")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(f"{what} is not UTF-8") from None


def parse_plain(response: bytes) -> Credentials:
    """RFC 4616: [authzid] NUL authcid NUL passwd."""
    parts = response.split(b"\x00")
    if len(parts) != 3:
        raise SaslError("PLAIN response must have three NUL-separated fields")
    names = ("authzid", "authcid", "passwd")
    authzid, authcid, passwd = (_utf8(p, w) for p, w in zip(parts, names, strict=True))
    if not authcid or not passwd:
        raise SaslError("empty username or password")
    return Credentials(authcid, passwd, authzid)


def parse_login_field(response: bytes, what: str) -> str:
    value = _utf8(response, what)
    if not value or "\x00" in value:
        raise SaslError(f"empty or invalid {what}")
    return value


# RFC 4616 2: we offer no proxy authorization, so an authzid naming someone else fails. Sessions
# compare Failure.reason with this to map the refusal to their "invalid credentials" reply.
PROXY_REFUSED: Final = "proxy authorization is not offered"


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send this challenge to the client: base64 text, "" for an empty one."""

    text: str


@dataclass(frozen=True, slots=True)
class Success:
    """The exchange produced credentials; the session verifies them (authenticator)."""

    credentials: Credentials


@dataclass(frozen=True, slots=True)
class Failure:
    """The exchange failed; `cancelled` when the client sent "*" (RFC 4954 4, RFC 5034 4)."""

    reason: str
    cancelled: bool = False


SaslStep = Challenge | Success | Failure


class _Expect(enum.Enum):
    START = enum.auto()
    PLAIN = enum.auto()  # the PLAIN message
    USERNAME = enum.auto()  # LOGIN's first answer
    PASSWORD = enum.auto()  # LOGIN's second answer
    DONE = enum.auto()  # after Success or Failure


class SaslExchange:
    """One PLAIN or LOGIN exchange, sans I/O, shared by SMTP, POP3 and IMAP so the three cannot
    drift apart. The session sends each Challenge and feeds back the client's next line.

    A password lives only in the Success returned, never in the exchange.
    """

    def __init__(self, mechanism: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._expect = _Expect.START
        self._username = ""

    def start(self, initial: bytes | None) -> SaslStep:
        """Begin; `initial` is the decoded initial response (RFC 4954 "=" is b""), or None."""
        if self._expect is not _Expect.START:
            raise RuntimeError("SASL exchange already started")
        if self.mechanism == "PLAIN":
            self._expect = _Expect.PLAIN
            # None or empty: PLAIN is client-first, so ask with an empty challenge.
            return self._take(initial) if initial else Challenge("")
        self._expect = _Expect.USERNAME
        return Challenge(LOGIN_USERNAME_CHALLENGE) if initial is None else self._take(initial)

    def step(self, line: bytes) -> SaslStep:
        """One client response line: base64 text without its CRLF, or "*" to cancel."""
        if self._expect in (_Expect.START, _Expect.DONE):
            raise RuntimeError(f"SASL response in state {self._expect.name}")
        if line == b"*":
            return self._end(Failure("cancelled", cancelled=True))
        try:
            decoded = decode_base64(line)
        except SaslError as exc:
            return self._end(Failure(str(exc)))
        return self._take(decoded)

    def _take(self, response: bytes) -> SaslStep:
        try:
            match self._expect:
                case _Expect.PLAIN:
                    creds = parse_plain(response)
                    if creds.authzid and creds.authzid.lower() != creds.username.lower():
                        return self._end(Failure(PROXY_REFUSED))
                    return self._end(Success(creds))
                case _Expect.USERNAME:
                    self._username = parse_login_field(response, "username")
                    self._expect = _Expect.PASSWORD
                    return Challenge(LOGIN_PASSWORD_CHALLENGE)
                case _Expect.PASSWORD:
                    password = parse_login_field(response, "password")
                    return self._end(Success(Credentials(self._username, password)))
                case _Expect.START | _Expect.DONE:
                    raise AssertionError("start() and step() filter these states")
                case _:
                    assert_never(self._expect)
        except SaslError as exc:
            return self._end(Failure(str(exc)))

    def _end(self, outcome: Success | Failure) -> SaslStep:
        self._expect = _Expect.DONE
        self._username = ""
        return outcome
