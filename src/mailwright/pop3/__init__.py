"""POP3 server: RFC 1939 (base protocol), 2449 (CAPA, response codes, pipelining),
2595 (STLS), 5034 (SASL AUTH), 8314 (implicit TLS on 995), 3206 (SYS and AUTH codes).

Layout (DESIGN.md, STYLE.md 2): `commands` (typed frozen commands), `parser` (one line ->
Command | SyntaxErr), `responses` (every reply's bytes), `state` (the one state table),
`core` (sans-I/O connection: receive_data / next_event / NEED_DATA), `maildrop` (the per-session
view of the mailbox) and `stuffing` (RETR/TOP byte-stuffing and the TOP cut) are pure: they never
await, touch sockets, read the clock or call the store. `session` is the asyncio edge.

Invariants:
- Every client mistake is a `-ERR` reply value, never an exception; an exception is a bug, which
  the session logs before closing that one connection (the server keeps running).
- Message numbers are fixed for the whole session (RFC 1939 5): DELE only marks; the store is
  changed only in the UPDATE state, by one `pop3_commit` that is durable before `+OK` is sent.
  A dropped connection, a timeout or a crash commits nothing.
- The maildrop lock (RFC 1939 8, `Services.pop3_locks`) is taken before the maildrop is read and
  released whenever the session ends, however it ends.
- STLS drops every byte the client pipelined after the command (RFC 2595 4, CVE-2011-0411).
- Passwords are never logged and never kept after verification.
- Sizes in STAT/LIST are the stored file's octets, which are exactly the octets RETR sends
  before byte-stuffing (stored files already use CRLF).
"""
