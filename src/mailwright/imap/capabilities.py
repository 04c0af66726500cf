"""What the server advertises (RFC 9051 6.1.1, 7.2.2), by connection state.

Pure. Before login we offer STARTTLS (plaintext only) and the SASL mechanisms, or LOGINDISABLED
where a password may not cross this connection (RFC 9051 6.2.3, RFC 8314); after login only
what an authenticated client can use. Every extension listed here is implemented by the
session; docs/imap.md lists them with their RFCs.
"""

from __future__ import annotations

from typing import Final

from mailwright.auth.sasl import MECHANISMS

# Both base protocols (RFC 9051 appendix E: a server may offer both), then the extensions.
_COMMON: Final = (
    "IMAP4rev1", "IMAP4rev2",
    "LITERAL+",       # RFC 7888
    "ID",             # RFC 2971
    "ENABLE",         # RFC 5161
    "IDLE",           # RFC 2177
    "NAMESPACE",      # RFC 2342
    "UNSELECT",       # RFC 3691
    "UIDPLUS",        # RFC 4315
    "MOVE",           # RFC 6851
    "CHILDREN",       # RFC 3348
    "LIST-EXTENDED",  # RFC 5258
    "LIST-STATUS",    # RFC 5819
    "SPECIAL-USE",    # RFC 6154
    "CREATE-SPECIAL-USE",  # RFC 6154 3
    "ESEARCH",        # RFC 4731
    "SEARCHRES",      # RFC 5182
    "BINARY",         # RFC 3516
    "STATUS=SIZE",    # RFC 8438
    "UTF8=ACCEPT",    # RFC 6855
)

# ENABLE-able capabilities (RFC 5161 4): what a client may turn on.
ENABLEABLE: Final = frozenset({"UTF8=ACCEPT", "IMAP4REV2"})


def capabilities(*, authenticated: bool, tls_active: bool, plaintext_allowed: bool,
                 append_limit: int) -> list[str]:
    caps = list(_COMMON)
    caps.append(f"APPENDLIMIT={append_limit}")  # RFC 7889
    if authenticated:
        return caps
    if not tls_active:
        caps.append("STARTTLS")  # RFC 9051 6.2.1
    if plaintext_allowed:
        caps.append("SASL-IR")  # RFC 4959
        caps.extend(f"AUTH={m}" for m in MECHANISMS)
    else:
        caps.append("LOGINDISABLED")  # RFC 9051 6.2.3: LOGIN and AUTH=PLAIN need TLS first
    return caps
