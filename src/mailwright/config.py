"""One typed configuration: defaults, then a TOML file, then environment variables.

Invariants:
- Every key a user can write is declared here; an unknown key is a `ConfigError`, never ignored,
  so a typo cannot silently leave a listener on or a limit off.
- `load()` either returns a complete, validated `Config` or raises `ConfigError` with a one-line
  reason that `mailwright serve` prints before exiting non-zero.

Environment variables (each overrides the file):
  MAILWRIGHT_DATA, MAILWRIGHT_HOSTNAME, MAILWRIGHT_CONFIG (the file itself),
  MAILWRIGHT_LISTEN_<NAME> for NAME in SMTP, SUBMISSION, SUBMISSIONS, POP3, POP3S, IMAP, IMAPS,
  HTTP ("host:port"; an empty value turns the listener off; port 0 picks a free port),
  MAILWRIGHT_<SECTION>_<KEY> for any key of the [smtp], [pop3], [imap], [auth], [tls], [store],
  [queue], [dns], [inbound], [dkim], [capture] tables,
  e.g. MAILWRIGHT_SMTP_MAX_MESSAGE_SIZE=10485760 or MAILWRIGHT_AUTH_ALLOW_PLAINTEXT=true,
  and the short names of issue 5: MAILWRIGHT_ROUTES (= queue.routes), MAILWRIGHT_SMARTHOST
  (= queue.smarthost), MAILWRIGHT_REMOTE_SMTP_PORT (= queue.remote_smtp_port) and
  MAILWRIGHT_DNS_SERVERS (= dns.servers, which is also its long name), and
  MAILWRIGHT_CAPTURE (= capture.enabled; MAILWRIGHT_CAPTURE_ACCEPT_ANY_AUTH etc. are the long
  names of the other [capture] keys).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

LISTENER_NAMES: Final = (
    "smtp",
    "submission",
    "submissions",
    "pop3",
    "pop3s",
    "imap",
    "imaps",
    "http",  # the web inbox and JSON API (mailwright.web); off unless set or `serve --capture`
)
# Unprivileged ports for the embedded default (DESIGN.md); production configs name 25/587/465/...
DEFAULT_LISTENERS: Final[Mapping[str, str | None]] = {
    "smtp": "127.0.0.1:2525",
    "submission": "127.0.0.1:2587",
    "submissions": "127.0.0.1:2465",
    "pop3": "127.0.0.1:2110",
    "pop3s": "127.0.0.1:2995",
    "imap": "127.0.0.1:2143",
    "imaps": "127.0.0.1:2993",
    "http": None,
}
# Where `mailwright serve --capture` puts the web inbox when listen.http is not set (Mailpit's
# port). Loopback: the inbox has no authentication (docs/web.md).
CAPTURE_HTTP_DEFAULT: Final = "127.0.0.1:8025"


class ConfigError(Exception):
    """A configuration the server must refuse to start with; str() is the one-line reason."""


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    # RFC 1870 SIZE. 50 MiB: above Gmail's 25 MB / Postfix's 10 MB defaults, so we are never the
    # narrowest hop, yet bounded for a small server's disk.
    max_message_size: int = 50 * 1024 * 1024
    # RFC 5321 4.5.3.1.8 requires accepting at least 100; Postfix's default is 1000.
    max_recipients: int = 1000
    # RFC 5321 4.5.3.1.4: 512 octets for a command line; ESMTP parameters (RFC 1870, 3461, 4954)
    # make MAIL/RCPT/AUTH longer, and the issue sets 1000 as the wire limit (then 500 5.5.2).
    max_command_line: int = 1000
    # RFC 5321 4.5.3.1.6 says 1000 octets for a text line; real mail breaks this, so be lenient
    # up to 4096 (configurable) and answer 500 5.5.2 beyond it.
    max_data_line: int = 4096
    # Errors (syntax or sequence) after which the session gets 421 and is closed, as Postfix's
    # smtpd_hard_error_limit (default 20).
    max_errors: int = 20
    # RFC 5321 4.5.3.2.7: a server SHOULD wait at least 5 minutes for the next command. It is a
    # deadline for the whole command line, not reset by each byte (Postfix's
    # smtpd_per_record_deadline), so a client trickling a byte at a time is cut off too.
    command_timeout: float = 300.0
    # RFC 5321 4.5.3.2.5: 3 minutes per data block; we apply it per read during DATA/BDAT.
    data_timeout: float = 180.0
    # Concurrency limits against one abusive peer, and against all peers together.
    max_connections_per_ip: int = 20
    max_connections: int = 1000
    # Wall-clock limit of one connection, whatever it does (a trickle of DATA resets no read
    # timer); then 421 4.4.2. Stalwart's session.duration is 10 min; 30 leaves room for a few
    # 50 MiB messages over a slow link. 0: no limit.
    max_session_time: float = 1800.0
    # Commands per second one connection may send; beyond that it is made to wait (pacing, no
    # error), so a runaway loop cannot take the event loop. Above a pipelined 1000-RCPT burst.
    max_commands_per_second: int = 5000
    # Failed AUTH attempts per connection before 421 4.7.0 and close: a password guesser must
    # reconnect (and meet the per-IP throttle) every few tries; Dovecot disconnects after 3.
    max_auth_failures: int = 3


@dataclass(frozen=True, slots=True)
class Pop3Config:
    # RFC 1939 3: the autologout timer MUST be at least 10 minutes.
    idle_timeout: float = 600.0
    # Longest command line we accept (RFC 2449 4: 255 octets, plus room for SASL initial responses).
    max_command_line: int = 8192
    max_errors: int = 20
    max_connections_per_ip: int = 20
    max_connections: int = 1000
    # Deadline from connect to a successful login, however active the client is (a trickle of
    # bytes resets the idle timer, not this): 10 minutes, so RFC 1939's 10-minute minimum for
    # the autologout timer holds before login too.
    login_timeout: float = 600.0
    # Wall-clock limit of a logged-in session; 0 (default): none, as Dovecot (a big maildrop
    # over a slow link may take hours).
    max_session_time: float = 0.0
    # Commands per second before the client is made to wait (pacing, no error); above a
    # pipelined RETR of 1,000 small messages (bench: ~3,000 per second).
    max_commands_per_second: int = 5000
    # Failed logins per connection before -ERR [AUTH] and close (Dovecot disconnects after 3).
    max_auth_failures: int = 3


@dataclass(frozen=True, slots=True)
class ImapConfig:
    # RFC 9051 5.4: the inactivity autologout timer MUST be at least 30 minutes; IDLE clients
    # re-issue IDLE within that time (RFC 2177 3).
    idle_timeout: float = 1800.0
    # APPENDLIMIT (RFC 7889): the largest message APPEND accepts, like SMTP's SIZE.
    max_message_size: int = 50 * 1024 * 1024
    # Client errors (BAD/NO for bad syntax) before the connection is closed.
    max_errors: int = 50
    # Commands a client may send per second before it is slowed down (a runaway or hostile loop).
    max_commands_per_second: int = 2000
    max_connections_per_ip: int = 50
    max_connections: int = 5000
    # Deadline from connect to a successful login, however active the client is (the 3-minute
    # pre-login inactivity timer alone is reset by every byte a trickling client sends);
    # RFC 9051 5.4 allows a shortened timer before login. Dovecot also gives 3 minutes.
    login_timeout: float = 180.0
    # Wall-clock limit of a logged-in session; 0 (default): none, since a mail client may stay
    # connected (IDLE) for days.
    max_session_time: float = 0.0
    # Failed LOGIN/AUTHENTICATE attempts per connection before BYE (Dovecot: 3).
    max_auth_failures: int = 3


@dataclass(frozen=True, slots=True)
class AuthConfig:
    # RFC 8314 / RFC 4954 14: no plaintext passwords on an unencrypted channel unless allowed.
    allow_plaintext: bool = False
    # Loopback connections never cross a network, so plaintext there is allowed by default
    # (this is what makes the classic smtplib/poplib tutorial work on localhost).
    allow_plaintext_loopback: bool = True
    # Failed-login throttling per client IP and per account name (auth/throttle.py):
    # delay = min(max_delay, base_delay * 2**(failures-1)), failures forgotten after 1 h.
    failure_base_delay: float = 0.5
    failure_max_delay: float = 10.0
    # After this many failures from one address (IPv6: one /64), refuse its logins with a
    # temporary error for ban_time seconds (0: never ban). fail2ban's defaults are 5 failures
    # and 10 minutes; 10 leaves room for a user fumbling a new password on two devices.
    ban_after: int = 10
    ban_time: float = 600.0


@dataclass(frozen=True, slots=True)
class TlsConfig:
    # Empty means: use (and on first run create) a self-signed pair under <data>/tls/.
    cert: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    # False skips fsync (tests and throwaway servers only): a crash may then lose mail.
    durable: bool = True


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Outbound delivery (docs/sending.md)."""

    # Waits between attempts after a temporary failure; the last one repeats until max_age.
    # Postfix backs off from 5 min to 4000 s; we follow the 5m..4h ladder.
    retry_schedule: str = "5m,15m,30m,1h,2h,4h"
    # RFC 5321 4.5.4.1: give up after at least 4-5 days; then a failure DSN.
    max_age: float = 5 * 86400.0
    # A delay DSN once a message has waited this long (0: never). Postfix: delay_warning_time.
    delay_warning: float = 4 * 3600.0
    # Outbound SMTP sessions at once, in total and per destination domain.
    max_connections: int = 50
    max_connections_per_domain: int = 5
    # Port of remote MXes (25 on the internet; tests run whole networks unprivileged).
    remote_smtp_port: int = 25
    # Relay everything through this host ("host:port"; empty: deliver directly by MX).
    smarthost: str = ""
    smarthost_user: str = ""
    smarthost_password: str = ""
    # "starttls" (required), "implicit" (RFC 8314 port 465) or "none" (trusted networks only).
    smarthost_tls: str = "starttls"
    # Static routes: "example.org=127.0.0.1:2600,example.net=[::1]:2601" (no MX lookup for them).
    routes: str = ""
    # STARTTLS policy: "opportunistic" (use it when offered) or "require" (defer without it);
    # tls_require_domains lists domains that get "require" whatever the default.
    tls_policy: str = "opportunistic"
    tls_require_domains: str = ""
    # Verify the peer's certificate (MX certificates are often self-signed; Postfix's "may"/
    # "encrypt" levels do not verify either).
    tls_verify: bool = False
    connect_timeout: float = 30.0
    # RFC 5321 4.5.3.2: 5 min for MAIL/RCPT, 10 min for the final '.'; one figure for all.
    command_timeout: float = 300.0
    # How often the runner looks for work queued by another process (the CLI's retry).
    poll_interval: float = 2.0


@dataclass(frozen=True, slots=True)
class DnsConfig:
    # "host[:port],..." (IPv6 as [addr]:port); empty: the system's /etc/resolv.conf.
    servers: str = ""
    timeout: float = 5.0
    # Answers kept (bounded by their TTL).
    cache_size: int = 10000


@dataclass(frozen=True, slots=True)
class InboundConfig:
    """SPF/DKIM/DMARC on the MX listener (RFC 7208, 6376, 7489, 8601)."""

    checks: bool = True
    # DMARC p=reject: refuse with 550 5.7.1 at the end of DATA (false: deliver to Junk).
    enforce_dmarc: bool = True
    # DMARC p=quarantine: deliver to the recipients' Junk mailbox.
    quarantine_to_junk: bool = True
    # SPF "fail" without any passing DKIM signature: deliver to Junk.
    spf_fail_to_junk: bool = True


@dataclass(frozen=True, slots=True)
class DkimConfig:
    # Sign outbound mail from local domains with the keys under <data>/dkim (docs/sending.md).
    sign: bool = True
    # Selector used by `mailwright dkim generate` when none is given.
    selector: str = "mw"


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """Capture mode (docs/testing.md): mail for other domains is kept, never relayed."""

    enabled: bool = False
    # Any AUTH credentials succeed on SMTP (capture mode only): apps under test log in with
    # whatever their settings say.
    accept_any_auth: bool = False
    # The account that holds captured mail (created with its domain at start), for IMAP/POP3.
    account: str = "captured@capture.test"
    password: str = "captured"
    # "catch-all": everything in the account's INBOX; "per-domain": a mailbox per domain.
    imap: str = "catch-all"
    # Injected faults (capture/faults.py): fractions of RCPTs / DATAs failed with fail_code,
    # and a delay before each reply. Changed at runtime by `mailwright captured faults`.
    rcpt_fail_rate: float = 0.0
    data_fail_rate: float = 0.0
    fail_code: int = 451
    reply_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.imap not in ("catch-all", "per-domain"):
            raise ConfigError(
                f'capture.imap: expected "catch-all" or "per-domain", got {self.imap!r}'
            )
        for name in ("rcpt_fail_rate", "data_fail_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"capture.{name}: expected a number from 0 to 1")
        if not 400 <= self.fail_code <= 599:
            raise ConfigError(f"capture.fail_code: expected 4xx or 5xx, not {self.fail_code}")
        if "@" not in self.account or not self.password:
            raise ConfigError("capture.account must be an address and capture.password non-empty")


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    hostname: str
    listeners: Mapping[str, Listen]  # only the enabled ones, by name
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    pop3: Pop3Config = field(default_factory=Pop3Config)
    imap: ImapConfig = field(default_factory=ImapConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    dkim: DkimConfig = field(default_factory=DkimConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    warnings: tuple[str, ...] = ()

    @property
    def cert_path(self) -> Path:
        return Path(self.tls.cert) if self.tls.cert else self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        return Path(self.tls.key) if self.tls.key else self.data_dir / "tls" / "key.pem"


_SECTIONS: Final[Mapping[str, type[Any]]] = {
    "smtp": SmtpConfig,
    "pop3": Pop3Config,
    "imap": ImapConfig,
    "auth": AuthConfig,
    "tls": TlsConfig,
    "store": StoreConfig,
    "queue": QueueConfig,
    "dns": DnsConfig,
    "inbound": InboundConfig,
    "dkim": DkimConfig,
    "capture": CaptureConfig,
}
# Short environment names that the issue (and its acceptance tests) use.
_ENV_ALIASES: Final[Mapping[str, tuple[str, str]]] = {
    "MAILWRIGHT_ROUTES": ("queue", "routes"),
    "MAILWRIGHT_SMARTHOST": ("queue", "smarthost"),
    "MAILWRIGHT_REMOTE_SMTP_PORT": ("queue", "remote_smtp_port"),
    "MAILWRIGHT_CAPTURE": ("capture", "enabled"),
}
_TOP_KEYS: Final = frozenset({"data", "hostname", "listen", *_SECTIONS})


def parse_listen(value: str, name: str) -> Listen | None:
    """'host:port' or '[v6]:port' -> Listen; '' -> None (listener off)."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
    else:
        host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"listen.{name}: expected host:port, got {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"listen.{name}: port must be a number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"listen.{name}: port {port} out of range")
    return Listen(host, port)


def _coerce(section: str, key: str, value: Any, target: type[Any] | str) -> Any:
    kind = target if isinstance(target, str) else target.__name__
    where = f"{section}.{key}"
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind == "int":
        try:
            result = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        if isinstance(value, bool) or result < 0:
            raise ConfigError(f"{where}: expected a non-negative integer, got {value!r}")
        return result
    if kind == "float":
        try:
            result_f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or result_f < 0:
            raise ConfigError(f"{where}: expected a non-negative number, got {value!r}")
        return result_f
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _build_section(name: str, values: Mapping[str, Any]) -> Any:
    cls = _SECTIONS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown configuration key {name}.{key}")
        kwargs[key] = _coerce(name, key, value, fields[key].type)
    return cls(**kwargs)


def load(
    config_file: str | Path | None = None,
    data_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    listen_defaults: Mapping[str, str] | None = None,
) -> Config:
    """Defaults < TOML file < environment < explicit arguments (the CLI's --data).

    `listen_defaults` replaces the built-in default of some listeners (`serve --capture`
    turns "http" on this way, unless the file or the environment says otherwise)."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    config_file = config_file or env.get("MAILWRIGHT_CONFIG") or None
    if config_file:
        try:
            raw = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file}: {exc}") from None
    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(f"unknown configuration key {key}")

    sections: dict[str, dict[str, Any]] = {}
    for name in _SECTIONS:
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = dict(table)

    listen_raw = raw.get("listen", {})
    if not isinstance(listen_raw, dict):
        raise ConfigError("[listen] must be a table")
    listen_values: dict[str, str | None] = {**DEFAULT_LISTENERS, **(listen_defaults or {})}
    for name, value in listen_raw.items():
        if name not in LISTENER_NAMES:
            raise ConfigError(f"unknown configuration key listen.{name}")
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"listen.{name}: expected \"host:port\" or \"\"")
        listen_values[name] = value

    # Environment overrides.
    for name in LISTENER_NAMES:
        env_value = env.get(f"MAILWRIGHT_LISTEN_{name.upper()}")
        if env_value is not None:
            listen_values[name] = env_value
    for name, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            env_value = env.get(f"MAILWRIGHT_{name.upper()}_{f.name.upper()}")
            if env_value is not None:
                sections[name][f.name] = env_value
    for env_name, (name, key) in _ENV_ALIASES.items():
        env_value = env.get(env_name)
        if env_value is not None:
            sections[name][key] = env_value

    data = data_dir or env.get("MAILWRIGHT_DATA") or raw.get("data") or "./data"
    hostname = env.get("MAILWRIGHT_HOSTNAME") or raw.get("hostname") or socket.getfqdn()
    if not isinstance(hostname, str) or not hostname or any(c.isspace() for c in hostname):
        raise ConfigError(f"hostname: invalid value {hostname!r}")

    warnings: list[str] = []
    listeners: dict[str, Listen] = {}
    for name in LISTENER_NAMES:
        value = listen_values[name]
        listen = parse_listen(value, name) if value else None
        if listen is None:
            continue
        listeners[name] = listen

    built = {name: _build_section(name, values) for name, values in sections.items()}
    return Config(
        data_dir=Path(data).expanduser().absolute(),
        hostname=hostname.lower(),
        listeners=listeners,
        warnings=tuple(warnings),
        **built,
    )
