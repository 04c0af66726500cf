"""Real non-Python IMAP clients against the real server: mbsync (isync), curl and fetchmail.

`.ci/run` installs them (Debian packages isync, curl, fetchmail); a machine without one skips
that test and says why. Each client is driven the way a user would: a config file in tmp_path,
one command line, a timeout; the result is checked on the client's side (Maildir files, curl's
output, the mbox fetchmail's MDA wrote) and on the server's side with imaplib.

mbsync and fetchmail match the server certificate against the host name as a DNS name, so they
connect to "localhost" (in the certificate, resolving to 127.0.0.1 where the server listens);
curl checks IP address SANs and connects to 127.0.0.1.
"""

from __future__ import annotations

import imaplib
import re
import shutil
import subprocess
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest

from mailwright.store.api import Account, Envelope

RunningServer = Any  # tests/conftest.py's RunningServer (tests/ is not a package)

ALICE, ALICE_PW = "alice@example.test", "alice-pw"
SPECIAL = ("Sent", "Drafts", "Trash", "Junk", "Archive")
TIMEOUT = 120  # seconds for one client run (CI machines can be slow and busy)
SOCKET_TIMEOUT = 30.0


def need(tool: str, package: str | None = None) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {package or tool}; .ci/run does)")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


def message(subject: str, body: str = "") -> bytes:
    message_id = subject.replace(" ", ".") + "@remote.test"
    return (
        f"From: Bob <bob@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\n\r\n{body or subject + ' body'}\r\n"
    ).encode()


def deliver(server: RunningServer, account: Account, *raws: bytes) -> None:
    async def go() -> None:
        for raw in raws:
            staged = server.store.stage()
            staged.write(raw)
            await server.store.deliver(staged, Envelope(mail_from="bob@remote.test"),
                                       [account.id], [])

    server.run(go())


@pytest.fixture
def alice(server: RunningServer) -> Account:
    return server.add_account(ALICE, ALICE_PW)  # type: ignore[no-any-return]


@pytest.fixture
def cert(server: RunningServer) -> str:
    return str(server.config.cert_path)


def imap_login(server: RunningServer) -> imaplib.IMAP4:
    client = imaplib.IMAP4_SSL(server.host, server.port("imaps"),
                               ssl_context=server.ssl_context, timeout=SOCKET_TIMEOUT)
    client.login(ALICE, ALICE_PW)
    return client


def server_view(server: RunningServer) -> dict[str, dict[str, frozenset[str]]]:
    """Every mailbox of alice's as {subject: flags}, read over IMAP (EXAMINE: changes nothing)."""
    client = imap_login(server)
    try:
        typ, lines = client.list()
        assert typ == "OK"
        names = [_list_name(line) for line in lines if isinstance(line, bytes)]
        out: dict[str, dict[str, frozenset[str]]] = {}
        for name in names:
            typ, exists = client.select(_quote(name), readonly=True)
            assert typ == "OK", name
            box: dict[str, frozenset[str]] = {}
            if exists != [b"0"]:  # FETCH 1:* of an empty mailbox is BAD (RFC 9051 9)
                typ, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                assert typ == "OK", data
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                    assert flags is not None, item
                    subject = BytesHeaderParser().parsebytes(item[1])["Subject"]
                    box[str(subject)] = frozenset(flags.group(1).decode().split())
            out[name] = box
            client.unselect()
        return out
    finally:
        client.logout()


def _list_name(line: bytes) -> str:
    m = re.match(rb'\([^)]*\) (?:"[^"]*"|NIL) (.*)$', line)
    assert m is not None, line
    name = m.group(1)
    return (name[1:-1] if name.startswith(b'"') else name).decode()


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ----- mbsync (isync) -----------------------------------------------------------------------
def isync_version(mbsync: str) -> tuple[int, ...]:
    out = run(mbsync, "--version")
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out.stdout + out.stderr)
    assert m is not None, out.stdout + out.stderr
    return tuple(int(g) for g in m.groups(default="0"))


def mbsyncrc(tmp_path: Path, server: RunningServer, version: tuple[int, ...], listener: str,
             auth_mech: str) -> tuple[Path, Path]:
    """An .mbsyncrc for alice and the Maildir it syncs to, in the syntax of this isync.

    isync 1.5 renamed SSLType to TLSType; 1.4 renamed Master/Slave to Far/Near.
    """
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    tls_key = "TLSType" if version >= (1, 5) else "SSLType"
    tls_type = "IMAPS" if listener == "imaps" else "STARTTLS"
    far, near = ("Far", "Near") if version >= (1, 4) else ("Master", "Slave")
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount alice\n"
        "Host localhost\n"
        f"Port {server.port(listener)}\n"
        f"User {ALICE}\n"
        f"Pass {ALICE_PW}\n"
        f"{tls_key} {tls_type}\n"
        f"CertificateFile {server.config.cert_path}\n"
        f"AuthMechs {auth_mech}\n"
        "Timeout 60\n"
        "\n"
        "IMAPStore remote\n"
        "Account alice\n"
        "\n"
        "MaildirStore local\n"
        f"Path {maildir}/\n"
        f"Inbox {maildir}/INBOX\n"
        "SubFolders Verbatim\n"
        "\n"
        "Channel alice\n"
        f"{far} :remote:\n"
        f"{near} :local:\n"
        "Patterns *\n"
        "Create Both\n"
        "Expunge Both\n"
        "SyncState *\n"
    )
    rc.chmod(0o600)
    return rc, maildir


def maildir_messages(folder: Path) -> dict[str, Path]:
    """{subject: file} of a Maildir folder (new/ and cur/)."""
    out: dict[str, Path] = {}
    for sub in ("new", "cur"):
        for path in sorted((folder / sub).iterdir()) if (folder / sub).is_dir() else ():
            subject = BytesHeaderParser().parsebytes(path.read_bytes())["Subject"]
            out[str(subject)] = path
    return out


def maildir_flags(path: Path) -> str:
    """The flag letters of a Maildir file name ("...:2,FS" -> "FS")."""
    _, sep, flags = path.name.rpartition(":2,")
    return flags if sep else ""


def snapshot(maildir: Path) -> set[str]:
    return {str(p.relative_to(maildir)) for p in maildir.rglob("*")
            if p.is_file() and ("cur" in p.parts or "new" in p.parts)}


def sync(mbsync: str, rc: Path) -> subprocess.CompletedProcess[str]:
    result = run(mbsync, "-c", str(rc), "-a")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


@pytest.mark.parametrize(("listener", "auth_mech"), [("imaps", "PLAIN"), ("imap", "LOGIN")],
                         ids=["imaps-plain", "starttls-login"])
def test_mbsync_syncs_both_ways(server: RunningServer, alice: Account, tmp_path: Path,
                                listener: str, auth_mech: str) -> None:
    mbsync = need("mbsync", "isync")
    rc, maildir = mbsyncrc(tmp_path, server, isync_version(mbsync), listener, auth_mech)
    deliver(server, alice, message("keep-and-flag"), message("trash-locally"),
            message("flag-on-server"))

    # 1. First sync: every mailbox comes down, with the delivered messages in INBOX.
    sync(mbsync, rc)
    for name in ("INBOX", *SPECIAL):
        assert (maildir / name / "cur").is_dir(), name
    local = maildir_messages(maildir / "INBOX")
    assert set(local) == {"keep-and-flag", "trash-locally", "flag-on-server"}
    raw = local["keep-and-flag"].read_bytes()
    assert b"keep-and-flag body" in raw
    assert all(maildir_flags(p) == "" for p in local.values())  # unseen stays unseen

    # 2. Changes on both sides.
    new_file = maildir / "INBOX" / "new" / "1700000000.1_1.laptop"
    new_file.write_bytes(b"From: alice@example.test\nSubject: written-locally\n\nfrom mutt\n")
    flagged = local["keep-and-flag"]
    flagged.rename(maildir / "INBOX" / "cur" / (flagged.name.partition(":2,")[0] + ":2,FS"))
    trashed = local["trash-locally"]
    trashed.rename(maildir / "INBOX" / "cur" / (trashed.name.partition(":2,")[0] + ":2,ST"))
    project = maildir / "Projects"
    for sub in ("cur", "new", "tmp"):
        (project / sub).mkdir(parents=True)
    (project / "new" / "1700000000.2_1.laptop").write_bytes(
        b"From: alice@example.test\nSubject: project-plan\n\nplan\n")
    client = imap_login(server)
    client.select("INBOX")
    typ, found = client.search(None, "SUBJECT", '"flag-on-server"')
    assert typ == "OK"
    assert len(found[0].split()) == 1
    client.store(found[0].decode(), "+FLAGS", "(\\Flagged \\Answered)")
    client.logout()
    deliver(server, alice, message("arrived-between-syncs"))

    # 3. Second sync carries them over.
    sync(mbsync, rc)
    view = server_view(server)
    inbox = view["INBOX"]
    assert set(inbox) == {"keep-and-flag", "flag-on-server", "written-locally",
                          "arrived-between-syncs"}
    assert {"\\Seen", "\\Flagged"} <= inbox["keep-and-flag"]
    assert "Projects" in view, view.keys()
    assert set(view["Projects"]) == {"project-plan"}
    local = maildir_messages(maildir / "INBOX")
    assert set(local) == {"keep-and-flag", "flag-on-server", "written-locally",
                          "arrived-between-syncs"}
    assert set(maildir_flags(local["flag-on-server"])) == {"F", "R"}
    assert set(maildir_flags(local["keep-and-flag"])) == {"F", "S"}

    # 4. A third sync finds nothing to do and changes nothing on either side.
    before_local, before_server = snapshot(maildir), server_view(server)
    sync(mbsync, rc)
    assert snapshot(maildir) == before_local
    assert server_view(server) == before_server


# ----- curl ---------------------------------------------------------------------------------
def curl_imap(curl: str, url: str, cert: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [curl, "-sS", "--url", url, "--cacert", cert, "--user", f"{ALICE}:{ALICE_PW}"]
    if url.startswith("imap://"):
        args.append("--ssl-reqd")  # STARTTLS, and fail if the server does not offer it
    return run(*args, *extra)


@pytest.mark.parametrize("scheme", ["imap", "imaps"])
def test_curl_lists_fetches_searches_and_appends(server: RunningServer, alice: Account,
                                                 cert: str, tmp_path: Path, scheme: str) -> None:
    curl = need("curl")
    base = f"{scheme}://{server.host}:{server.port(scheme)}"
    deliver(server, alice, message("first for curl"), message("second for curl", "needle-xyz"))

    listing = curl_imap(curl, f"{base}/", cert)
    assert listing.returncode == 0, listing.stderr
    for name in ("INBOX", *SPECIAL):
        assert re.search(rf'^\* LIST \([^)]*\) "/" {name}\r?$', listing.stdout, re.M), \
            listing.stdout
    assert re.search(r"^\* LIST \([^)]*\\Sent[^)]*\) \"/\" Sent", listing.stdout, re.M)

    fetched = curl_imap(curl, f"{base}/INBOX;UID=2", cert)
    assert fetched.returncode == 0, fetched.stderr
    assert "Subject: second for curl" in fetched.stdout
    assert "needle-xyz" in fetched.stdout
    assert fetched.stdout.startswith("From: Bob <bob@remote.test>")

    header = curl_imap(curl, f"{base}/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)", cert)
    assert header.returncode == 0, header.stderr
    assert header.stdout.strip() == "Subject: first for curl"

    search = curl_imap(curl, f"{base}/INBOX?BODY%20needle-xyz", cert)
    assert search.returncode == 0, search.stderr
    assert search.stdout.split() == ["*", "SEARCH", "2"]

    examine = curl_imap(curl, f"{base}/", cert, "-X", "EXAMINE INBOX")
    assert examine.returncode == 0, examine.stderr
    assert "* 2 EXISTS" in examine.stdout
    assert re.search(r"\* OK \[UIDVALIDITY \d+\]", examine.stdout)
    assert "* OK [UIDNEXT 3]" in examine.stdout

    missing = curl_imap(curl, f"{base}/INBOX;UID=99", cert)
    assert missing.returncode != 0

    upload = tmp_path / "sent.eml"
    upload.write_bytes(b"From: alice@example.test\r\nSubject: uploaded by curl\r\n\r\nhi\r\n")
    appended = curl_imap(curl, f"{base}/Sent", cert, "-T", str(upload))
    assert appended.returncode == 0, appended.stderr
    view = server_view(server)
    assert set(view["Sent"]) == {"uploaded by curl"}
    # curl fetched UID 2 with BODY[] (not PEEK): that marks it \Seen (RFC 9051 6.4.5).
    assert "\\Seen" in view["INBOX"]["second for curl"]


# ----- fetchmail ----------------------------------------------------------------------------
@pytest.mark.parametrize("listener", ["imap", "imaps"])
def test_fetchmail_over_imap_keep_then_nokeep(
    server: RunningServer, alice: Account, cert: str, tmp_path: Path, listener: str
) -> None:
    fetchmail = need("fetchmail")
    rc, mbox = tmp_path / "fetchmailrc", tmp_path / "fetched.mbox"
    # imap: STARTTLS is required by sslproto; imaps: TLS from the first octet ("ssl").
    tls = "ssl " if listener == "imaps" else ""
    rc.write_text(
        "set no syslog\n"
        f"poll localhost service {server.port(listener)} protocol IMAP "
        f'user "{ALICE}" password "{ALICE_PW}" {tls}sslproto tls1.2+ sslcertfile {cert} '
        f'sslcertck mda "cat >> {mbox}"\n'
    )
    rc.chmod(0o600)
    deliver(server, alice, message("fetch-one"), message("fetch-two"))

    kept = run(fetchmail, "-f", str(rc), "--nodetach", "--nosyslog", "--keep", "--all")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert mbox.read_bytes().count(b"Subject: fetch-") == 2
    assert set(server_view(server)["INBOX"]) == {"fetch-one", "fetch-two"}

    taken = run(fetchmail, "-f", str(rc), "--nodetach", "--nosyslog", "--nokeep", "--all")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    data = mbox.read_bytes()
    assert data.count(b"Subject: fetch-one") == 2
    assert data.count(b"Subject: fetch-two") == 2
    assert server_view(server)["INBOX"] == {}
    assert server.store.pop3_messages(alice.id) == []  # POP3 sees the expunge too

    empty = run(fetchmail, "-f", str(rc), "--nodetach", "--nosyslog", "--all")
    assert empty.returncode == 1, empty.stdout + empty.stderr  # fetchmail's "no mail"
