"""SPF record syntax (RFC 7208 4.6, 5, 6): text -> `Record`, pure.

The whole record is parsed before any mechanism is evaluated, so a syntax error anywhere is a
permerror even when an earlier mechanism would have matched (RFC 7208 4.6).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from mailwright.mailauth.spf_macro import MacroError, expand

QUALIFIERS: Final = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS: Final = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
# RFC 7208 6: these two modifiers may appear at most once; unknown modifiers are ignored.
_MODIFIER: Final = re.compile(r"^([a-z][a-z0-9\-_.]*)=(.*)$", re.IGNORECASE | re.DOTALL)
_MECHANISM: Final = re.compile(r"^([+\-~?]?)([a-z][a-z0-9\-_.]*)(.*)$", re.IGNORECASE | re.DOTALL)
# ip4-cidr-length / ip6-cidr-length (RFC 7208 5.6): no leading zeros.
_CIDR_LEN: Final = r"(?:0|[1-9][0-9]{0,2})"
_DOMAIN_CIDR: Final = re.compile(
    rf"^(?::(?P<domain>.+?))?(?:/(?P<c4>{_CIDR_LEN}))?(?://(?P<c6>{_CIDR_LEN}))?$", re.DOTALL
)
_TOPLABEL: Final = re.compile(
    r"^(?:[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9\-]*[a-z0-9])$", re.IGNORECASE
)
_DUMMY_VALUES: Final = dict.fromkeys("slodiphvcrt", "x.example")


class SpfSyntaxError(ValueError):
    """A record that does not follow RFC 7208 (a permerror)."""


@dataclass(frozen=True, slots=True)
class Mechanism:
    qualifier: str  # "+", "-", "~" or "?"
    name: str  # lower case, one of MECHANISMS
    domain: str | None = None  # domain-spec, not yet macro-expanded; None: the current domain
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4 / ip6
    cidr4: int = 32
    cidr6: int = 128

    @property
    def result(self) -> str:
        return QUALIFIERS[self.qualifier]

    def __str__(self) -> str:
        text = ("" if self.qualifier == "+" else self.qualifier) + self.name
        if self.network is not None:
            return f"{text}:{self.network}"
        return f"{text}:{self.domain}" if self.domain else text


@dataclass(frozen=True, slots=True)
class Record:
    mechanisms: tuple[Mechanism, ...]
    redirect: str | None = None
    exp: str | None = None


def is_spf_record(text: str) -> bool:
    """RFC 7208 4.5: "v=spf1" alone or followed by a space (case-insensitive)."""
    return text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")


def parse_record(text: str) -> Record:
    terms = text.split(" ")[1:]
    mechanisms: list[Mechanism] = []
    modifiers: dict[str, str] = {}
    for term in terms:
        if not term:
            continue  # several spaces between terms
        modifier = _MODIFIER.match(term)
        if modifier is not None:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if name in modifiers:
                    raise SpfSyntaxError(f"{name}= appears twice")
                _check_domain_spec(value)
                modifiers[name] = value
            else:
                _check_macro(value)  # unknown modifiers are ignored, but must be well-formed
            continue
        mechanisms.append(_parse_mechanism(term))
    return Record(tuple(mechanisms), modifiers.get("redirect"), modifiers.get("exp"))


def _parse_mechanism(term: str) -> Mechanism:
    m = _MECHANISM.match(term)
    if m is None:
        raise SpfSyntaxError(f"unknown term {term!r}")
    qualifier, name, rest = m.group(1) or "+", m.group(2).lower(), m.group(3)
    if name not in MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism {name!r}")
    if name == "all":
        if rest:
            raise SpfSyntaxError(f"bad 'all' term {term!r}")
        return Mechanism(qualifier, name)
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs an address: {term!r}")
        return Mechanism(qualifier, name, network=_network(name, rest[1:]))
    if name in ("include", "exists", "ptr"):
        if name != "ptr" and not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs a domain: {term!r}")
        if rest and (not rest.startswith(":") or len(rest) == 1):
            raise SpfSyntaxError(f"bad term {term!r}")
        domain = rest[1:] or None
        if domain is not None:
            _check_domain_spec(domain)
        return Mechanism(qualifier, name, domain=domain)
    # a and mx: [":" domain-spec] [dual-cidr-length]
    dm = _DOMAIN_CIDR.match(rest)
    if dm is None:
        raise SpfSyntaxError(f"bad term {term!r}")
    c4, c6 = int(dm.group("c4") or 32), int(dm.group("c6") or 128)
    if c4 > 32 or c6 > 128:
        raise SpfSyntaxError(f"bad prefix length in {term!r}")
    if dm.group("domain") is not None:
        _check_domain_spec(dm.group("domain"))
    return Mechanism(qualifier, name, domain=dm.group("domain"), cidr4=c4, cidr6=c6)


def _network(name: str, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    address, slash, length = text.partition("/")
    limit = 32 if name == "ip4" else 128
    if slash and not re.fullmatch(_CIDR_LEN, length):
        raise SpfSyntaxError(f"bad prefix length in {name}:{text}")
    if slash and int(length) > limit:
        raise SpfSyntaxError(f"bad prefix length in {name}:{text}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SpfSyntaxError(f"bad address in {name}:{text}") from None
    if (ip.version == 4) != (name == "ip4"):
        raise SpfSyntaxError(f"{name} with a different address family: {text}")
    # strict=False: host bits set below the prefix are legal in SPF (5.6 compares prefixes)
    return ipaddress.ip_network(f"{address}/{length or limit}", strict=False)


def _check_macro(text: str) -> None:
    try:
        expand(text, _DUMMY_VALUES, explanation=True)
    except MacroError as exc:
        raise SpfSyntaxError(str(exc)) from None


def _check_domain_spec(text: str) -> None:
    """RFC 7208 7.1: domain-spec = macro-string domain-end; domain-end is a toplabel or a
    macro-expand."""
    if not text:
        raise SpfSyntaxError("empty domain-spec")
    try:
        expand(text, _DUMMY_VALUES)
    except MacroError as exc:
        raise SpfSyntaxError(str(exc)) from None
    if text.endswith("}"):
        return
    label = text.rstrip(".").rpartition(".")[2] if "." in text.rstrip(".") else ""
    if not label or not _TOPLABEL.match(label):
        raise SpfSyntaxError(f"domain-spec {text!r} does not end with a top-level label")
