"""mailwright's benchmark: `.venv/bin/python -m bench` (see README, "Benchmark").

It starts the real server as a separate process (durable store, fsync on), drives it from this
process with raw asyncio sockets (so the client never shares the server's event loop or GIL),
verifies every delivered message byte for byte, and prints a table. Never part of pass/fail.
"""
