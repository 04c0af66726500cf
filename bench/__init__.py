"""mailwright's benchmark: `.venv/bin/python -m bench` (see README, "Benchmark").

It starts the real server as a separate process (durable store, fsync on), drives it from this
process with raw sockets (so the client never shares the server's event loop or GIL), verifies
what it stored, and prints tables. Never part of pass/fail.

- SMTP in and POP3 out: `smtp_bench`, `pop3_bench` (one server; `--only 4k-10`, `--only smtp`).
- IMAP (issue 4), each entry on its own server with the issue's targets and Dovecot 2.3's figures
  as columns: `imap-append` (APPEND/s at 1 and 10 clients), `imap-10k` (commands on a
  10,000-message mailbox), `imap-idle` (1,000 sessions in IDLE: RSS, delivery-to-EXISTS
  latency), and, only when named, `imap-idle-5000`. See `imap_bench` and `imap_idle`.
- `--profile FILE` (cProfile, event-loop thread) or `--py-spy FILE` (all threads), then
  `python -m bench.spy_report FILE.<entry> [--grep TEXT]` for the hotspots by mailwright function.
"""
