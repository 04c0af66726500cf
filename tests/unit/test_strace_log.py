"""The strace log reader and the fsync-before-reply checker (tests/support/strace_log.py).

Synthetic logs in the format `strace -f -y -yy` writes: the checker must accept the store's
real order and flag each way of breaking it, or tests/e2e/test_fsync_discipline.py proves
nothing.
"""

from __future__ import annotations

from pathlib import Path

from support.strace_log import Ack, check, parse, unescape

DATA = Path("/d")
WAL = DATA / "mailwright.db-wal"
SHA = "ab" + "0" * 62
BLOB = DATA / "blobs" / "ab" / SHA
TMP = "/d/tmp/x.tmp"
CLIENT = 40000
SOCK = f"7<TCP:[127.0.0.1:2525->127.0.0.1:{CLIENT}]>"

# The order the store uses (writer.py, blobs.py), two threads: the event loop (100) and the
# writer (200). The WAL header rewrite and its sync (a WAL restart) come first.
GOOD = [
    f'100 read({SOCK}, "Subject: hi\\r\\n\\r\\nbody\\r\\n.\\r\\n", 256000) = 27',
    f'200 write(9<{TMP}>, "Subject: hi\\r\\n", 13) = 13',
    f"200 fsync(9<{TMP}>) = 0",
    f'200 link("{TMP}", "{BLOB}") = 0',
    "200 fsync(10</d/blobs/ab>) = 0",
    f'200 pwrite64(11<{WAL}>, "7\\177\\6\\202", 32, 0) = 32',
    f"200 fdatasync(11<{WAL}>) = 0",
    f'200 pwrite64(11<{WAL}>, "\\0\\0\\0\\2", 4096, 32) = 4096',
    f"200 fdatasync(11<{WAL}>) = 0",
    f'100 write({SOCK}, "250 2.0.0 OK queued as X\\r\\n", 26) = 26',
]
ACK = Ack("data", CLIENT, b"Subject: hi", CLIENT, b"250 2.0.0 OK", BLOB)


def problems(lines: list[str], ack: Ack = ACK) -> tuple[str, ...]:
    [verdict] = check(parse(lines), WAL, [ack])
    return verdict.problems


def without(*fragments: str) -> list[str]:
    return [line for line in GOOD if not any(f in line for f in fragments)]


def test_unescape() -> None:
    assert unescape(r"a\r\n\t\"\\") == b'a\r\n\t"\\'
    assert unescape(r"\0\177\6\2024") == b"\x00\x7f\x06\x824"
    assert unescape(r"\x41\x7e") == b"A~"


def test_parse_fields() -> None:
    [read, write, *_] = parse(GOOD)
    assert read.name == "read"
    assert read.tid == 100
    assert read.ok
    assert read.fd == f"TCP:[127.0.0.1:2525->127.0.0.1:{CLIENT}]"
    assert read.on_socket(CLIENT)
    assert not read.on_socket(2525)
    assert read.data == b"Subject: hi\r\n\r\nbody\r\n.\r\n"
    assert write.fd == TMP
    calls = parse(GOOD)
    link = next(c for c in calls if c.name == "link")
    assert link.strings == (TMP.encode(), str(BLOB).encode())
    header, frame = (c for c in calls if c.name == "pwrite64")
    assert (header.offset, header.wal_frames) == (0, False)
    assert (frame.offset, frame.wal_frames) == (32, True)


def test_parse_split_calls_writev_linkat_and_errors() -> None:
    calls = parse([
        f"[pid   200] 12:00:00.000001 fsync(9<{TMP}> <unfinished ...>",
        f'[pid   100] 12:00:00.000002 writev({SOCK}, [{{iov_base="A1 OK", iov_len=5}}, '
        f'{{iov_base=" done\\r\\n", iov_len=7}}], 2) = 12',
        "[pid   200] 12:00:00.000003 <... fsync resumed>) = 0",
        f'300 linkat(AT_FDCWD</work>, "{TMP}", AT_FDCWD</work>, "{BLOB}", 0) = 0',
        '300 write(5</d/tmp/y.tmp>, "x", 1) = -1 ENOSPC (No space left on device)',
        "300 +++ exited with 0 +++",
    ])
    fsync, writev, linkat, failed = calls
    assert (fsync.name, fsync.start, fsync.end) == ("fsync", 0, 2)  # spans the writev
    assert writev.data == b"A1 OK done\r\n"
    assert writev.start == writev.end == 1
    assert linkat.strings == (TMP.encode(), str(BLOB).encode())
    assert failed.result == -1
    assert not failed.ok


def test_the_stores_order_passes() -> None:
    [verdict] = check(parse(GOOD), WAL, [ACK])
    assert verdict.problems == ()
    assert verdict.commit is not None
    assert verdict.commit.start == 8


def test_missing_file_fsync() -> None:
    assert any("not fsynced before its link" in p for p in problems(without(f"fsync(9<{TMP}")))


def test_write_after_the_file_fsync() -> None:
    lines = list(GOOD)
    lines.insert(3, f'200 write(9<{TMP}>, "more", 4) = 4')
    assert any("written after its last fsync" in p for p in problems(lines))


def test_missing_directory_fsync() -> None:
    found = problems(without("fsync(10</d/blobs/ab>"))
    assert any("/d/blobs/ab not fsynced after the link" in p for p in found)


def test_directory_fsync_after_the_commit() -> None:
    lines = without("fsync(10</d/blobs/ab>")
    lines.insert(-1, "200 fsync(10</d/blobs/ab>) = 0")  # after the WAL sync: too late
    assert any("no WAL fsync" in p for p in problems(lines))


def test_only_the_wal_header_was_synced() -> None:
    lines = GOOD[:-2] + GOOD[-1:]  # the frames were written but never synced
    assert any("no WAL fsync" in p for p in problems(lines))


def test_reply_before_the_commit() -> None:
    lines = GOOD[:-3] + GOOD[-1:] + GOOD[-3:-1]
    assert any("no WAL" in p for p in problems(lines))


def test_commit_still_running_when_the_reply_starts() -> None:
    # Another thread's reply starts while the fsync is in flight: that is not "after".
    lines = [
        *GOOD[:-2],
        f"200 fdatasync(11<{WAL}> <unfinished ...>",
        GOOD[-1],
        "200 <... fdatasync resumed>) = 0",
    ]
    assert any("no WAL fsync" in p for p in problems(lines))


def test_failed_fsync_does_not_count() -> None:
    lines = [line.replace(") = 0", ") = -1 EIO (Input/output error)")
             if line.startswith(f"200 fsync(9<{TMP}") else line for line in GOOD]
    assert any("not fsynced before its link" in p for p in problems(lines))


def test_no_link_at_all() -> None:
    assert any("no link/rename" in p for p in problems(without("link(")))


def test_change_without_a_file() -> None:
    store = Ack("store", CLIENT, b"A4 STORE", CLIENT, b"A4 OK")
    lines = [
        f'100 read({SOCK}, "A4 STORE 1 +FLAGS (\\\\Seen)\\r\\n", 256000) = 28',
        f'200 pwrite64(11<{WAL}>, "\\0", 4096, 4128) = 4096',
        f"200 fdatasync(11<{WAL}>) = 0",
        f'100 write({SOCK}, "* 1 FETCH (FLAGS (\\\\Seen))\\r\\nA4 OK STORE done\\r\\n", 40) = 40',
    ]
    assert problems(lines, store) == ()
    # A sync from before the command was read does not cover it.
    assert problems([lines[1], lines[2], lines[0], lines[3]], store) != ()
    assert any("no write of" in p for p in problems(lines[:-1], store))
