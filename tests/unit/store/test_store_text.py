"""Parsed metadata stored at delivery (message_info) and the full-text index (search_text)."""

from __future__ import annotations

import datetime
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_asyncio
from store_helpers import INTL, PLAIN, Deliver, execute, same, sha256_hex

from mailwright.imap.search_eval import SearchContext, default_text_match, message_header
from mailwright.message import FORMAT_VERSION, MessageInfo, analyze
from mailwright.store import Account, MailboxInfo, NotFound, SqliteStore, TextField, textindex
from mailwright.store.schema import MIGRATIONS, migrate

SYMBOLS = (
    b"Subject: symbols\r\n"
    b"\r\n"
    b'He said "hi" * twice AND NEAR(x) body: {col} - done\r\n'
)


def _rows(data_dir: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _inbox(store: SqliteStore, account: Account) -> MailboxInfo:
    box = store.mailbox(account.id, "INBOX")
    assert box is not None
    return box


async def _append(store: SqliteStore, account: Account, mailbox: str, data: bytes) -> int:
    staged = store.stage()
    staged.write(data)
    return (await store.append(account.id, mailbox, staged)).uid


def _meta_rows(data_dir: Path) -> dict[str, MessageInfo]:
    """blob_meta as MessageInfos (with the text analyzed afresh, since it is not stored)."""
    out: dict[str, MessageInfo] = {}
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        rows = conn.execute(
            "SELECT sha256, v, size, envelope, body, bodystructure, parts FROM blob_meta"
        ).fetchall()
    finally:
        conn.close()
    for sha, v, size, envelope, body, bodystructure, parts in rows:
        assert v == FORMAT_VERSION
        raw = (data_dir / "blobs" / sha[:2] / sha).read_bytes()
        parsed = textindex.unpack_parts(parts)
        out[sha] = MessageInfo(size, envelope, body, bodystructure, parsed, analyze(raw).text)
    return out


@pytest.fixture
def analyses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every message the store analyzes, in order."""
    seen: list[bytes] = []
    real = textindex.analyze_blob

    def counting(raw: bytes) -> textindex.Analysis:
        seen.append(raw)
        return real(raw)

    monkeypatch.setattr(textindex, "analyze_blob", counting)
    return seen


# ----- metadata at delivery ----------------------------------------------------------------
@pytest.mark.asyncio
async def test_deliver_stores_meta_and_index_row(
    store: SqliteStore, data_dir: Path, alice: Account, deliver: Deliver
) -> None:
    await deliver(PLAIN, [alice.id])
    sha = sha256_hex(PLAIN)
    assert store.wait_for_index()  # the index row is written in the background
    [(meta_id,)] = _rows(data_dir, "SELECT id FROM blob_meta WHERE sha256 = ?", (sha,))
    assert same(_meta_rows(data_dir)[sha], analyze(PLAIN))
    [(header, body)] = _rows(
        data_dir, "SELECT header, body FROM blob_text WHERE rowid = ?", (meta_id,)
    )
    assert "subject: quarterly report" in str(header)
    assert str(body).startswith("the numbers are inside.")
    assert _rows(data_dir, "SELECT count(*) FROM blob_text_pending") == [(0,)]
    assert same(store.message_info(sha), analyze(PLAIN))


@pytest.mark.asyncio
async def test_append_stores_meta_for_small_and_large_messages(
    store: SqliteStore, data_dir: Path, alice: Account
) -> None:
    # Over WRITE_BUFFER a message is read back from its file and analyzed in the pool; over
    # INLINE_FSYNC_MAX it is fsynced there too.
    medium = b"Subject: medium\r\n\r\n" + b"row of words\r\n" * 8_000
    large = b"Subject: big\r\n\r\n" + b"line of text\r\n" * 40_000
    for data in (PLAIN, medium, large):
        await _append(store, alice, "Sent", data)
    metas = {sha: info.to_json() for sha, info in _meta_rows(data_dir).items()}
    assert metas == {sha256_hex(d): analyze(d).to_json() for d in (PLAIN, medium, large)}
    sent = store.mailbox(alice.id, "Sent")
    assert sent is not None
    assert store.search_text(sent.id, "BODY", "LINE OF TEXT") == {3}
    assert store.search_text(sent.id, "TEXT", "medium") == {2}


@pytest.mark.asyncio
async def test_shared_blob_is_analyzed_once(
    store: SqliteStore,
    data_dir: Path,
    alice: Account,
    bob: Account,
    deliver: Deliver,
    analyses: list[bytes],
) -> None:
    await deliver(PLAIN, [alice.id, bob.id])
    await deliver(PLAIN, [alice.id])
    await _append(store, bob, "Archive", PLAIN)
    assert analyses == [PLAIN]
    assert _rows(data_dir, "SELECT count(*) FROM blob_meta") == [(1,)]
    assert _rows(data_dir, "SELECT refcount FROM blobs") == [(4,)]


@pytest.mark.asyncio
async def test_remote_only_delivery_is_not_analyzed_until_delivered_locally(
    store: SqliteStore,
    data_dir: Path,
    alice: Account,
    deliver: Deliver,
    analyses: list[bytes],
) -> None:
    await deliver(PLAIN, [], ("someone@remote.test",))
    assert analyses == []
    assert _rows(data_dir, "SELECT count(*) FROM blob_meta") == [(0,)]
    # The blob exists (the queue holds it): the same bytes delivered locally get analyzed
    # under the write lock, since their file is already at the address.
    await deliver(PLAIN, [alice.id])
    assert analyses == [PLAIN]
    assert store.search_text(_inbox(store, alice).id, "TEXT", "zebra") == {1}


@pytest.mark.asyncio
async def test_message_info_falls_back_to_the_file_without_writing(
    data_dir: Path, alice: Account, deliver: Deliver, store: SqliteStore
) -> None:
    await deliver(PLAIN, [alice.id])
    await deliver(INTL, [alice.id])
    store.close()
    execute(data_dir, "DELETE FROM blob_text")
    execute(data_dir, "DELETE FROM blob_meta WHERE sha256 = ?", (sha256_hex(PLAIN),))
    execute(data_dir, "UPDATE blob_meta SET v = 0 WHERE sha256 = ?", (sha256_hex(INTL),))
    fresh = SqliteStore(data_dir)
    try:
        assert same(fresh.message_info(sha256_hex(PLAIN)), analyze(PLAIN))
        infos = fresh.message_infos([sha256_hex(INTL), sha256_hex(PLAIN)])
        assert set(infos) == {sha256_hex(INTL), sha256_hex(PLAIN)}
        assert same(infos[sha256_hex(INTL)], analyze(INTL))
    finally:
        fresh.close()
    # Readers never write: the rows are as they were.
    assert _rows(data_dir, "SELECT sha256 FROM blob_meta") == [(sha256_hex(INTL),)]


@pytest.mark.asyncio
async def test_message_infos_answers_from_one_query_and_the_cache(
    store: SqliteStore, data_dir: Path, alice: Account, deliver: Deliver
) -> None:
    await deliver(PLAIN, [alice.id])
    await deliver(INTL, [alice.id])
    unknown = "0" * 64
    infos = store.message_infos([sha256_hex(PLAIN), unknown, sha256_hex(INTL), sha256_hex(PLAIN)])
    assert set(infos) == {sha256_hex(PLAIN), sha256_hex(INTL)}  # unknown blobs are left out
    assert same(infos[sha256_hex(INTL)], analyze(INTL))
    # Cached: the same objects come back without the database.
    execute(data_dir, "UPDATE blob_meta SET v = 0, envelope = x'00', parts = x''")
    again = store.message_infos([sha256_hex(PLAIN), sha256_hex(INTL)])
    assert again[sha256_hex(PLAIN)] is infos[sha256_hex(PLAIN)]
    with pytest.raises(NotFound):
        store.message_info(unknown)


def test_info_cache_is_bounded_by_entries_and_bytes() -> None:
    info = analyze(PLAIN)
    cache = textindex.InfoCache(max_entries=3, max_bytes=10**9)
    cache.put_many((str(i), info) for i in range(5))
    assert len(cache) == 3
    assert cache.get("0") is None
    assert cache.get("4") is info
    one = textindex._cost(info)
    cache = textindex.InfoCache(max_entries=100, max_bytes=2 * one)
    for key in "abc":
        cache.put(key, info)
    assert cache.get_many("abc") == ({"b": info, "c": info}, ["a"])


# ----- search --------------------------------------------------------------------------------
@pytest_asyncio.fixture
async def box(store: SqliteStore, alice: Account, deliver: Deliver) -> MailboxInfo:
    for data in (PLAIN, INTL, SYMBOLS):
        await deliver(data, [alice.id])
    return _inbox(store, alice)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "needle", "uids"),
    [
        ("TEXT", "quarterly", {1}),  # Subject
        ("BODY", "quarterly", set()),
        ("BODY", "NUMBERS ARE", {1}),
        ("TEXT", "x-custom: zebra", {1}),  # any header field, as "name: value"
        ("BODY", "zebra", set()),
        ("TEXT", "", {1, 2, 3}),  # the empty string is in every message
        ("BODY", "absent", set()),
    ],
)
async def test_text_searches_headers_and_body_but_body_only_the_body(
    store: SqliteStore, box: MailboxInfo, field: TextField, needle: str, uids: set[int]
) -> None:
    assert store.search_text(box.id, field, needle) == uids


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "needle", "uids"),
    [
        ("TEXT", "Q", {1}),  # "quarterly": one character, no index
        ("BODY", "q", set()),
        ("TEXT", "é", {2}),  # decoded encoded-word in the Subject
        ("BODY", "ß", {2}),
        ("BODY", "*", {3}),
        ("BODY", '"', {3}),
        ("TEXT", "ZE", {1}),
        ("BODY", "ze", set()),
        ("BODY", "lo", set()),
    ],
)
async def test_short_needles_are_scanned(
    store: SqliteStore, box: MailboxInfo, field: TextField, needle: str, uids: set[int]
) -> None:
    assert store.search_text(box.id, field, needle) == uids


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "needle", "uids"),
    [
        ("TEXT", "CAFÉ CRÈME", {2}),
        ("BODY", "straße", {2}),
        ("BODY", "STRASSE", {2}),  # full case folding: ß is ss
        ("BODY", "STRAẞE", {2}),  # capital sharp s
        ("BODY", "σίσυφος", {2}),  # final sigma folds like sigma
        ("TEXT", "rené", {2}),
        ("TEXT", "cafe", set()),  # no accent folding: IMAP compares characters
    ],
)
async def test_non_ascii_needles_fold_like_imap(
    store: SqliteStore, box: MailboxInfo, field: TextField, needle: str, uids: set[int]
) -> None:
    assert store.search_text(box.id, field, needle) == uids


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "needle",
    ['"hi" *', 'said "hi', "* twice AND", "NEAR(x)", "body: {col}", "- done", '""'],
)
async def test_query_syntax_in_needles_is_literal(
    store: SqliteStore, box: MailboxInfo, needle: str
) -> None:
    expected = {3} if needle != '""' else set()
    assert store.search_text(box.id, "BODY", needle) == expected
    assert store.search_text(box.id, "TEXT", needle.upper()) == expected


@pytest.mark.asyncio
async def test_odd_needles_and_mailboxes(store: SqliteStore, box: MailboxInfo) -> None:
    assert store.search_text(box.id, "TEXT", "quar\x00terly") == frozenset()
    assert store.search_text(999_999, "TEXT", "quarterly") == frozenset()
    assert store.search_text(box.id, "TEXT", "\ud800abc") == frozenset()  # lone surrogate
    with pytest.raises(ValueError, match="search field"):
        store.search_text(box.id, "SUBJECT", "x")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_expunged_messages_leave_the_index_when_their_blob_goes(
    store: SqliteStore, data_dir: Path, alice: Account, bob: Account, deliver: Deliver
) -> None:
    await deliver(PLAIN, [alice.id, bob.id])
    assert store.wait_for_index()
    inbox_a, inbox_b = _inbox(store, alice), _inbox(store, bob)
    await store.store_flags(inbox_a.id, [1], "add", ["\\Deleted"])
    assert await store.expunge(inbox_a.id) == [1]
    assert store.search_text(inbox_a.id, "TEXT", "zebra") == frozenset()
    assert store.search_text(inbox_b.id, "TEXT", "zebra") == {1}  # the blob is shared
    assert _rows(data_dir, "SELECT count(*) FROM blob_text") == [(1,)]
    await store.pop3_commit(bob.id, [1], "delete")
    assert store.search_text(inbox_b.id, "TEXT", "zebra") == frozenset()
    store.collect_garbage()  # the deferred clean-up (blobgc.py; test_store_blobgc.py)
    assert _rows(data_dir, "SELECT count(*) FROM blob_meta") == [(0,)]
    assert _rows(data_dir, "SELECT count(*) FROM blob_text") == [(0,)]
    assert _rows(data_dir, "SELECT count(*) FROM blobs") == [(0,)]


@pytest.mark.asyncio
async def test_copies_and_moves_are_found_in_their_new_mailbox(
    store: SqliteStore, alice: Account, box: MailboxInfo
) -> None:
    archive = store.mailbox(alice.id, "Archive")
    assert archive is not None
    assert await store.copy(box.id, [1, 2], archive.id) == [(1, 1), (2, 2)]
    assert await store.move(box.id, [3], archive.id) == [(3, 3)]
    assert store.search_text(archive.id, "BODY", "twice") == {3}
    assert store.search_text(archive.id, "TEXT", "e") == {1, 2, 3}
    assert store.search_text(box.id, "TEXT", "e") == {1, 2}


@pytest.mark.asyncio
async def test_messages_without_index_rows_are_searched_from_their_files(
    store: SqliteStore, data_dir: Path, box: MailboxInfo
) -> None:
    # What a blob whose file could not be read during migration 3 looks like (then readable).
    assert store.wait_for_index()
    execute(data_dir, "DELETE FROM blob_text")
    execute(data_dir, "DELETE FROM blob_meta")
    assert store.search_text(box.id, "TEXT", "x-custom: ZEBRA") == {1}
    assert store.search_text(box.id, "BODY", "strasse") == {2}
    assert store.search_text(box.id, "BODY", "z") == set()
    store.blob_path(sha256_hex(SYMBOLS)).unlink()  # gone: nothing to find, no error
    assert store.search_text(box.id, "BODY", "twice") == set()


def _default_match(raw: bytes) -> Callable[[TextField, str], bool]:
    info = analyze(raw)

    def match(field: TextField, needle: str) -> bool:
        ctx = SearchContext(
            msn=1,
            uid=1,
            flags=frozenset(),
            internal_date=datetime.datetime.fromtimestamp(0, datetime.UTC),
            size=len(raw),
            info=info,
            header=message_header(raw, info),
            last_msn=1,
            last_uid=1,
        )
        return default_text_match(field, needle, ctx)

    return match


@pytest.mark.asyncio
async def test_index_agrees_with_the_search_evaluator(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    """The index is the fast form of imap/search_eval.py's `default_text_match`."""
    messages = [PLAIN, INTL, SYMBOLS]
    for data in messages:
        await deliver(data, [alice.id])
    inbox = _inbox(store, alice)
    rng = random.Random(4)
    for uid, raw in enumerate(messages, start=1):
        oracle = _default_match(raw)
        header, body = textindex.index_text(raw, analyze(raw))
        for _ in range(60):
            source = rng.choice([header, body, header.upper(), body.swapcase()])
            start = rng.randrange(max(1, len(source)))
            needle = source[start : start + rng.choice([1, 2, 3, 5, 12])]
            if "\n" in needle:
                continue  # the index keeps fields and parts apart; see textindex.py
            for field in ("TEXT", "BODY"):
                found = uid in store.search_text(inbox.id, field, needle)
                assert found == oracle(field, needle), (field, needle, uid)


# ----- migration 3 ---------------------------------------------------------------------------
def test_migration_3_analyzes_and_indexes_existing_blobs(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    blobs = {sha256_hex(PLAIN): PLAIN, sha256_hex(INTL): INTL}
    missing = "f" * 64  # a row whose file is gone: the upgrade goes on without it
    conn = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        assert migrate(conn, MIGRATIONS[:2]) == 2
        conn.execute("INSERT INTO domains (name, created) VALUES ('example.test', 0)")
        conn.execute(
            "INSERT INTO accounts (address, domain_id, password_hash, created) "
            "VALUES ('old@example.test', 1, 'h', 0)"
        )
        conn.execute(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, created) "
            "VALUES (1, 'INBOX', 1, 4, 0)"
        )
        for uid, (sha, raw) in enumerate([*blobs.items(), (missing, b"")], start=1):
            conn.execute(
                "INSERT INTO blobs (sha256, size, refcount, created) VALUES (?, ?, 1, 0)",
                (sha, len(raw)),
            )
            conn.execute(
                "INSERT INTO messages (mailbox_id, uid, blob, internal_date, size, modseq) "
                "VALUES (1, ?, ?, 0, ?, 1)",
                (uid, sha, len(raw)),
            )
            if raw:
                path = data_dir / "blobs" / sha[:2] / sha
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(raw)
    finally:
        conn.close()
    store = SqliteStore(data_dir)  # migrations 3 and 4
    try:
        metas = {sha: info.to_json() for sha, info in _meta_rows(data_dir).items()}
        assert metas == {sha: analyze(raw).to_json() for sha, raw in blobs.items()}
        assert _rows(data_dir, "SELECT count(*) FROM blob_text_pending") == [(0,)]
        assert same(store.message_info(sha256_hex(INTL)), analyze(INTL))
        assert store.search_text(1, "TEXT", "café") == {2}
        assert store.search_text(1, "BODY", "numbers") == {1}
        assert store.search_text(1, "TEXT", "e") == {1, 2}
        with pytest.raises(NotFound):
            store.message_info(missing)
    finally:
        store.close()


def test_migration_3_without_a_data_directory_refuses_existing_blobs(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    try:
        migrate(conn, MIGRATIONS[:2])
        conn.execute("INSERT INTO blobs (sha256, size, refcount, created) VALUES ('a', 1, 1, 0)")
        with pytest.raises(RuntimeError, match="data directory"):
            migrate(conn)
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (2,)
    finally:
        conn.close()
