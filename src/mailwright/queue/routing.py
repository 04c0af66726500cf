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
- Never a hop back to ourselves. RFC 5321 5.1: a relay finding any of its names or addresses
  in the MX list MUST discard that preference and all worse ones, and with none left the
  message "MUST be returned as undeliverable" (Postfix: "mail for X loops back to myself").
  So an MX that is us (`Identity`) drops itself and its peers and worse; nothing left, an
  implicit MX, an address literal, a static route or a smart host that is us is a permanent
  `NoRoute` 5.4.6 (RFC 3463 "routing loop detected"), not a message going round between our
  queue and our MX listener until its hop count runs out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
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


Socket = tuple[str, int]  # (IP address, port)
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _norm_name(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _norm_ip(address: str) -> _IP | None:
    """The address as connect() reaches it: IPv4-mapped IPv6 as IPv4, and the unspecified
    address as loopback (Linux connects 0.0.0.0 and :: to the local host); None if not an IP."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        ip = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
    return ip


def _is_local_address(ip: _IP) -> bool:
    """True when `ip` is one of this host's addresses: the kernel lets us bind to it.

    The standard library cannot list interfaces; a bind is one syscall, stays right when
    addresses come and go (DHCP, VPN), and is what a wildcard listener would accept on.
    """
    if ip.is_loopback:
        return True
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(ip), 0))
    except OSError:  # EADDRNOTAVAIL: not ours (or the family is off)
        return False
    return True


class Identity:
    """Who "we" are, for loop detection: our hostname and our MX listeners' sockets.

    The sockets are those the "smtp" listeners are bound to, which the server knows only after
    binding (port 0 picks one), hence `listen_on`. A wildcard bind (0.0.0.0, ::) stands for
    every local address of its family (asyncio binds :: with IPV6_V6ONLY).
    """

    def __init__(self, hostname: str, sockets: Iterable[Socket] = ()) -> None:
        self.hostname = _norm_name(hostname)
        self._exact: frozenset[tuple[_IP, int]] = frozenset()
        self._wildcard: frozenset[tuple[int, int]] = frozenset()  # (IP version, port)
        self.listen_on(sockets)

    def listen_on(self, sockets: Iterable[Socket]) -> None:
        """Replace our listening sockets (the server calls this once they are bound)."""
        exact: set[tuple[_IP, int]] = set()
        wildcard: set[tuple[int, int]] = set()
        for address, port in sockets:
            try:
                ip = ipaddress.ip_address(address.partition("%")[0])
            except ValueError:
                continue  # not an IP (a Unix socket?): nothing a hop can reach
            if ip.is_unspecified:
                wildcard.add((ip.version, port))
            else:
                normalized = _norm_ip(address)
                assert normalized is not None
                exact.add((normalized, port))
        self._exact, self._wildcard = frozenset(exact), frozenset(wildcard)

    def is_our_name(self, host: str) -> bool:
        return bool(self.hostname) and _norm_name(host) == self.hostname

    def is_our_socket(self, address: str, port: int) -> bool:
        ip = _norm_ip(address)
        if ip is None:
            return False
        if (ip, port) in self._exact:
            return True
        return (ip.version, port) in self._wildcard and _is_local_address(ip)


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

    def __init__(
        self, config: QueueConfig, resolver: Resolver, identity: Identity | None = None
    ) -> None:
        self._resolver = resolver
        # Without one (unit tests of other rules), no host is taken for us.
        self.identity = identity if identity is not None else Identity("")
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
            hops = await self._target_hops(route, self.tls_for(domain), None, "static route")
            return self._not_ourselves(hops, domain, "static route")
        if self._smarthost is not None:
            hops = await self._target_hops(
                self._smarthost, self._smarthost_tls, self._auth, "smart host"
            )
            # Postfix bounces a relayhost that is itself the same way.
            return self._not_ourselves(hops, domain, "smart host")
        literal = _ip_literal(domain)
        if literal is not None:  # user@[192.0.2.1]: no DNS at all (RFC 5321 4.1.3)
            hops = [Hop(domain, literal, self._port, self.tls_for(domain), self._verify)]
            return self._not_ourselves(hops, domain, "address literal")
        return await self._mx_hops(domain)

    # ----- internals ----------------------------------------------------------------------------
    def _not_ourselves(self, hops: list[Hop], domain: str, what: str) -> list[Hop]:
        """The hops, unless one is our own MX listener: a configured target has no better
        preference to fall back to, so any address of it that is us is a loop."""
        for hop in hops:
            if self.identity.is_our_socket(hop.address, hop.port):
                raise NoRoute(
                    True, "5.4.6", f"mail for {domain} loops back to myself "
                    f"({what} {hop.host} port {hop.port} is this server)"
                )
        return hops

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
        preference: dict[str, int] = {}  # each host at its best preference, in MX order
        for pref, host in records:
            if host:
                preference.setdefault(host, pref)
        implicit = not preference
        if implicit:
            # RFC 5321 5.1: no MX, so the domain's own address is the MX (preference 0).
            preference = {domain: 0}
        hosts = list(preference)
        results = await asyncio.gather(
            *(self._resolver.addresses(host) for host in hosts), return_exceptions=True
        )
        resolved: list[tuple[str, list[str] | None]] = []  # None: temporary DNS failure
        for host, result in zip(hosts, results, strict=True):
            if isinstance(result, DnsTemporaryError):
                resolved.append((host, None))
            elif isinstance(result, BaseException):
                raise result
            else:
                resolved.append((host, _ipv4_first(result)))
        # RFC 5321 5.1 / Postfix: we are the MX at `ours`, so only better ones may be used.
        ours = min(
            (preference[host] for host, addresses in resolved if self._is_us(host, addresses)),
            default=None,
        )
        if ours is not None:
            resolved = [(host, a) for host, a in resolved if preference[host] < ours]
        tls = self.tls_for(domain)
        hops: list[Hop] = []
        temporary: list[str] = []
        for host, addresses in resolved:
            if addresses is None:
                temporary.append(host)
            else:
                hops += [Hop(host, a, self._port, tls, self._verify) for a in addresses]
        if hops:
            return hops
        if temporary:
            raise NoRoute(
                False, "4.4.3", f"DNS failure looking up {', '.join(temporary)} for {domain}"
            )
        if ours is not None:
            # RFC 3463 X.4.6 "routing loop detected"; Postfix's wording.
            raise NoRoute(True, "5.4.6", f"mail for {domain} loops back to myself")
        if implicit:
            raise NoRoute(True, "5.1.2", f"domain {domain} has no MX and no address")
        # RFC 3463 X.4.4 "unable to route": every MX name resolved to nothing.
        raise NoRoute(True, "5.4.4", f"no MX host of {domain} has an address")

    def _is_us(self, host: str, addresses: list[str] | None) -> bool:
        if self.identity.is_our_name(host):
            return True
        return any(self.identity.is_our_socket(a, self._port) for a in addresses or ())
