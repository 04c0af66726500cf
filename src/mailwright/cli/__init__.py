"""The `mailwright` command: `serve` runs the server, the rest administer its data directory.

Invariants:
- Every command takes `--data DIR` (or MAILWRIGHT_DATA, or `data` in the config file) and
  resolves it exactly as `mailwright serve` does, so admin commands always act on the server's
  store, also while it runs (SQLite WAL lets them write beside it).
- Failures a user can fix print one line, "mailwright: error: <reason>", on stderr: exit 1 for
  an admin command the store refused, exit 2 for a configuration `serve` cannot start with.
- Passwords are read from a hidden prompt or one line of stdin, hashed at once, and never printed.
"""
