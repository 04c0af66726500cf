"""Where a recipient domain's mail goes: the ordered list of hosts to try (RFC 5321 5.1).

Invariants:
- Order of precedence: a static route for the domain, then the smart host, then DNS (MX in
  preference order; hosts of one preference in DNS order; each host's IPv4 addresses before its
  IPv6 ones; the domain's own A/AAAA when it has no MX: the "implicit MX" of RFC 5321 5.1).
- Every address comes from our `Resolver` (the configured DNS servers), never getaddrinfo, so
  tests and operators decide which DNS is asked.
- A failure to route is a `NoRoute` that says whether it is permanent (bounce now) or temporary
  (retry later): a DNS outage is never mistaken for "no such domain" (RFC 5321 5.1, RFC 7505).
- Configuration strings are validated once, in the constructor (server start), and a bad one is
  a `ConfigError` with a one-line reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from mailwright.config import ConfigError
from mailwright.net.resolver import DnsTemporaryError

if TYPE_CHECKING:
    from mailwright.config import QueueConfig
    from mailwright.net.resolver import Resolver

TlsMode = Literal["opportunistic", "require", "implicit", "none"]

SMARTHOST_KEY: Final = "smarthost"
# RFC 6409 (submission with STARTTLS), RFC 8314 3.3 (implicit TLS), RFC 5321 (plain relay).
SMARTHOST_DEFAULT_PORTS: Final = {"starttls": 587, "implicit": 465, "none": 25}
SMARTHOST_TLS: Final[dict[str, TlsMode]] = {
    "starttls": "require",
    "implicit": "implicit",
    "none": "none",
}
TLS_POLICIES: Final = frozenset({"opportunistic", "require"})


@dataclass(frozen=True, slots=True)
class Hop:
    """One host to try: its name (SNI, logs, DSN Remote-MTA), the IP to connect to, and how."""

    host: str
    address: str
    port: int
    tls: TlsMode
    verify: bool = False
    auth: tuple[str, str] | None = None  # smart host credentials (sent only over TLS)


class NoRoute(Exception):
    """The domain cannot be routed now (temporary) or ever (permanent)."""

    def __init__(self, permanent: bool, status: str, text: str) -> None:
        super().__init__(f"{status} {text}")
        self.permanent = permanent
        self.status = status
        self.text = text


@dataclass(frozen=True, slots=True)
class _Target:
    host: str  # a name or an IP literal
    port: int


def parse_target(value: str, where: str, default_port: int | None) -> _Target:
    """'host:port', '[v6]:port', 'host' (when a default port exists) -> _Target."""
    value = value.strip()
    port_text = ""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"{where}: malformed host {value!r}")
        port_text = rest[1:]
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host = value
    if not host or any(c.isspace() or c in "/@=," for c in host):
        raise ConfigError(f"{where}: malformed host {value!r}")
    if ":" in host:  # a bare IPv6 address must be bracketed to carry a port
        _check_ip(host, where)
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"{where}: bad port in {value!r}")
        port = int(port_text)
    elif default_port is None:
        raise ConfigError(f"{where}: expected host:port, got {value!r}")
    else:
        port = default_port
    return _Target(host.lower(), port)


def _check_ip(text: str, where: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not an IP address") from None


def parse_routes(routes: str, default_port: int) -> dict[str, _Target]:
    """'example.org=127.0.0.1:2600,example.net=[::1]:2601' -> {domain: target}."""
    result: dict[str, _Target] = {}
    for item in (part.strip() for part in routes.split(",")):
        if not item:
            continue
        domain, sep, target = item.partition("=")
        domain = domain.strip().lower().rstrip(".")
        if not sep or not domain or any(c.isspace() for c in domain):
            raise ConfigError(f"queue.routes: expected domain=host:port, got {item!r}")
        if domain in result:
            raise ConfigError(f"queue.routes: domain {domain!r} routed twice")
        result[domain] = parse_target(target, f"queue.routes ({domain})", default_port)
    return result


def _ip_literal(host: str) -> str | None:
    """The address when `host` is an IP literal (also '[1.2.3.4]', '[IPv6:...]'), else None."""
    text = host
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if text.lower().startswith("ipv6:"):  # RFC 5321 4.1.3 address literal
            text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _ipv4_first(addresses: list[str]) -> list[str]:
    return sorted(addresses, key=lambda a: ":" in a)  # stable: DNS order within a family


class Router:
    """Hosts to try for a recipient domain (module docstring)."""

    def __init__(self, config: QueueConfig, resolver: Resolver) -> None:
        self._resolver = resolver
        self._port = config.remote_smtp_port
        if not 0 < self._port < 65536:
            raise ConfigError(f"queue.remote_smtp_port: {self._port} out of range")
        self._verify = config.tls_verify
        self._routes = parse_routes(config.routes, self._port)
        if config.tls_policy not in TLS_POLICIES:
            raise ConfigError(
                f"queue.tls_policy: expected opportunistic or require, got {config.tls_policy!r}"
            )
        self._require_all = config.tls_policy == "require"
        self._require_domains = frozenset(
            d.strip().lower().rstrip(".") for d in config.tls_require_domains.split(",")
            if d.strip()
        )
        self._smarthost: _Target | None = None
        self._smarthost_tls: TlsMode = "require"
        self._auth: tuple[str, str] | None = None
        if config.smarthost_tls not in SMARTHOST_TLS:
            raise ConfigError(
                "queue.smarthost_tls: expected starttls, implicit or none, got "
                f"{config.smarthost_tls!r}"
            )
        if config.smarthost.strip():
            self._smarthost_tls = SMARTHOST_TLS[config.smarthost_tls]
            self._smarthost = parse_target(
                config.smarthost, "queue.smarthost", SMARTHOST_DEFAULT_PORTS[config.smarthost_tls]
            )
        if bool(config.smarthost_user) != bool(config.smarthost_password):
            raise ConfigError("queue.smarthost_user and queue.smarthost_password go together")
        if config.smarthost_user:
            if self._smarthost is None:
                raise ConfigError("queue.smarthost_user is set but queue.smarthost is not")
            if self._smarthost_tls == "none":
                # RFC 4954 4 / RFC 8314: never a password over a plaintext channel.
                raise ConfigError(
                    "queue.smarthost_user needs queue.smarthost_tls starttls or implicit"
                )
            self._auth = (config.smarthost_user, config.smarthost_password)

    # ----- public -------------------------------------------------------------------------------
    def route_key(self, domain: str) -> str:
        """The concurrency bucket: every smart-host delivery shares one, else the domain."""
        domain = domain.lower().rstrip(".")
        if domain not in self._routes and self._smarthost is not None:
            return SMARTHOST_KEY
        return domain

    def tls_for(self, domain: str) -> TlsMode:
        """The STARTTLS policy for MX and route hops of `domain`."""
        if self._require_all or domain in self._require_domains:
            return "require"
        return "opportunistic"

    async def hops(self, domain: str) -> list[Hop]:
        """Ordered hops for `domain`; raises NoRoute when there is none (now or ever)."""
        domain = domain.lower().rstrip(".")
        route = self._routes.get(domain)
        if route is not None:
            return await self._target_hops(route, self.tls_for(domain), None, "static route")
        if self._smarthost is not None:
            return await self._target_hops(
                self._smarthost, self._smarthost_tls, self._auth, "smart host"
            )
        literal = _ip_literal(domain)
        if literal is not None:  # user@[192.0.2.1]: no DNS at all (RFC 5321 4.1.3)
            return [Hop(domain, literal, self._port, self.tls_for(domain), self._verify)]
        return await self._mx_hops(domain)

    # ----- internals ----------------------------------------------------------------------------
    async def _target_hops(
        self, target: _Target, tls: TlsMode, auth: tuple[str, str] | None, what: str
    ) -> list[Hop]:
        literal = _ip_literal(target.host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = _ipv4_first(await self._resolver.addresses(target.host))
            except DnsTemporaryError as exc:
                raise NoRoute(
                    False, "4.4.3", f"DNS failure for {what} {target.host}: {exc}"
                ) from None
            if not addresses:
                # The operator's configuration, not the recipient, is at fault: retry, so a
                # fixed record or config lets the mail go.
                raise NoRoute(False, "4.4.3", f"{what} {target.host} has no address")
        return [Hop(target.host, a, target.port, tls, self._verify, auth) for a in addresses]

    async def _mx_hops(self, domain: str) -> list[Hop]:
        try:
            records = await self._resolver.mx(domain)
        except DnsTemporaryError as exc:
            raise NoRoute(
                False, "4.4.3", f"DNS failure looking up MX for {domain}: {exc}"
            ) from None
        if records is None:
            # RFC 3463 X.1.2: the destination system does not exist.
            raise NoRoute(True, "5.1.2", f"domain {domain} does not exist")
        if records and all(host == "" for _, host in records):
            # RFC 7505 3/4.1: a null MX says the domain accepts no mail; 556 5.1.10.
            raise NoRoute(True, "5.1.10", f"domain {domain} does not accept mail (null MX)")
        hosts = [host for _, host in records if host]
        implicit = not hosts
        if implicit:
            hosts = [domain]  # RFC 5321 5.1: no MX, so the domain's own address is the MX
        hosts = list(dict.fromkeys(hosts))
        results = await asyncio.gather(
            *(self._resolver.addresses(host) for host in hosts), return_exceptions=True
        )
        tls = self.tls_for(domain)
        hops: list[Hop] = []
        temporary: list[str] = []
        for host, result in zip(hosts, results, strict=True):
            if isinstance(result, DnsTemporaryError):
                temporary.append(host)
                continue
            if isinstance(result, BaseException):
                raise result
            hops += [Hop(host, a, self._port, tls, self._verify) for a in _ipv4_first(result)]
        if hops:
            return hops
        if temporary:
            raise NoRoute(
                False, "4.4.3", f"DNS failure looking up {', '.join(temporary)} for {domain}"
            )
        if implicit:
            raise NoRoute(True, "5.1.2", f"domain {domain} has no MX and no address")
        # RFC 3463 X.4.4 "unable to route": every MX name resolved to nothing.
        raise NoRoute(True, "5.4.4", f"no MX host of {domain} has an address")
