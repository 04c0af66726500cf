"""IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) server protocol.

Modules, as for SMTP (STYLE.md 2): `parser` (framing: lines, literals, APPEND streaming; the
`ImapParser` events), `grammar` (one command -> a `commands` value or `SyntaxErr`) over
`lexer` (atoms, strings, literals, names, dates), `commands` and `search` (frozen command
values), `sequence` (sequence sets), `mutf7` (mailbox names), and `render` (commands back to
the wire: the inverse of `grammar`, for clients and round-trip tests).

Invariants:
- Everything here is pure: no I/O, no clock, no store. Bytes in, values out.
- Client input never raises: every byte string gives commands, `SyntaxErr` (tagged BAD, or
  untagged when no tag could be read), `TooBig`, or NEED_DATA. An exception is a bug.
- Every limit is a named constant with its reason, and hitting it answers BAD/NO and leaves the
  connection usable: the parser resynchronises at the next command line, skipping (not
  storing) the octets of a refused non-synchronizing literal.
- Memory is bounded: one line, one buffered command and its small literals; APPEND message
  data leaves as `AppendChunk`s as it arrives.
- Mailbox names in commands are already decoded (modified UTF-7, or UTF-8 after ENABLE
  UTF8=ACCEPT), and INBOX is spelled "INBOX" whatever the client's case.
"""
