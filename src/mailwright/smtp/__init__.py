"""SMTP server side: MX (RFC 5321) and submission (RFC 6409, 8314), with ESMTP extensions.

Layout (STYLE.md 2): `commands` (typed, frozen command objects), `parser` (one line of bytes ->
Command | SyntaxErr), `responses` (Reply and its wire form), `state` (the transaction state
table), `limits` (named limits with their reasons), `core` (the pure connection: framing, DATA
and BDAT, sequencing) and `session` (asyncio: reading, timeouts, policy, delivery).

Invariants:
- Everything except `session` is pure: bytes in, events and reply bytes out; no awaits, no
  sockets, no clock, no store.
- Input never raises: every byte string a client sends becomes a command, or an error value
  carrying its reply (`SyntaxErr`, `BadSequence`, or the `error` of `DataEnd` / `ChunkEnd`). An
  exception escaping the core is a bug; the session logs it, answers 421 and closes, and the
  server keeps running.
- The end of DATA is only CRLF "." CRLF (RFC 5321 4.1.1.4). A message with a bare LF or bare CR
  is rejected as a whole, so that no relay can disagree with us about where it ends
  (SMTP smuggling, CVE-2023-51764).
- Limits are enforced while reading: an oversize line or message is drained (never buffered)
  and answered once the client is back in step (RFC 1870 3, STYLE.md 6).
- STARTTLS drops every byte received before the handshake and forgets the session (RFC 3207 4.2).
- 250 after DATA or BDAT LAST is sent only after `Deliverer.deliver()` returned (durability).
- Passwords are never logged.
"""
