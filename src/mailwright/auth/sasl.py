"""SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) decoding, shared by SMTP
(RFC 4954) and POP3 (RFC 5034). Pure functions: base64 text in, credentials or an error out.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

MECHANISMS: Final = ("PLAIN", "LOGIN")
# LOGIN's challenges, base64 of "Username:" and "Password:".
LOGIN_USERNAME_CHALLENGE: Final = base64.b64encode(b"Username:").decode()
LOGIN_PASSWORD_CHALLENGE: Final = base64.b64encode(b"Password:").decode()
# RFC 4616 2: each of authzid, authcid and passwd is at most 255 octets.
MAX_FIELD: Final = 255


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str
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
