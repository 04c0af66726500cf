"""Real non-Python clients against the real server: swaks and curl send, curl and fetchmail fetch.

`.ci/run` installs them (Debian packages swaks, curl, fetchmail); a machine without one skips
that test and says why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mailwright.store.api import Account

ALICE, ALICE_PW = "alice@example.test", "alice-pw"
BOB, BOB_PW = "bob@example.test", "bob-pw"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool}; .ci/run does)")
    return path


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)


def bodies(server: object, account: Account) -> list[bytes]:
    store = server.store  # type: ignore[attr-defined]
    return [store.blob_path(m.blob).read_bytes() for m in store.pop3_messages(account.id)]


@pytest.fixture
def users(server: object) -> tuple[Account, Account]:
    alice = server.add_account(ALICE, ALICE_PW)  # type: ignore[attr-defined]
    bob = server.add_account(BOB, BOB_PW)  # type: ignore[attr-defined]
    return alice, bob


@pytest.fixture
def cert(server: object) -> str:
    return str(server.config.cert_path)  # type: ignore[attr-defined]


def test_swaks_mx_submission_and_implicit_tls(
    server: object, users: tuple[Account, Account], cert: str
) -> None:
    swaks = need("swaks")
    host = server.host  # type: ignore[attr-defined]
    port = server.port  # type: ignore[attr-defined]
    mx = run(swaks, "--server", f"{host}:{port('smtp')}", "--from", "x@remote.test",
             "--to", ALICE, "--h-Subject", "via-mx")
    assert mx.returncode == 0, mx.stdout + mx.stderr
    sub = run(swaks, "--server", f"{host}:{port('submission')}", "-tls", "--tls-ca-path", cert,
              "--auth", "PLAIN", "--auth-user", BOB, "--auth-password", BOB_PW,
              "--from", BOB, "--to", ALICE, "--h-Subject", "via-submission")
    assert sub.returncode == 0, sub.stdout + sub.stderr
    implicit = run(swaks, "--server", f"{host}:{port('submissions')}", "--tlsc",
                   "--auth", "LOGIN", "--auth-user", BOB, "--auth-password", BOB_PW,
                   "--from", BOB, "--to", ALICE, "--h-Subject", "via-465")
    assert implicit.returncode == 0, implicit.stdout + implicit.stderr
    relay = run(swaks, "--server", f"{host}:{port('smtp')}", "--from", "x@remote.test",
                "--to", "victim@elsewhere.test")
    assert relay.returncode != 0
    assert "554 5.7.1" in relay.stdout
    spoof = run(swaks, "--server", f"{host}:{port('submission')}", "-tls",
                "--auth", "PLAIN", "--auth-user", BOB, "--auth-password", BOB_PW,
                "--from", ALICE, "--to", ALICE)
    assert "553 5.7.1" in spoof.stdout
    subjects = b"".join(bodies(server, users[0]))
    for subject in (b"via-mx", b"via-submission", b"via-465"):
        assert b"Subject: " + subject in subjects


def test_curl_sends_over_starttls_and_reads_over_pop3s(
    server: object, users: tuple[Account, Account], cert: str, tmp_path: Path
) -> None:
    curl = need("curl")
    host = server.host  # type: ignore[attr-defined]
    port = server.port  # type: ignore[attr-defined]
    message = tmp_path / "m.eml"
    message.write_bytes(b"Subject: from curl\r\n\r\n.leading dot survives\r\n")
    sent = run(curl, "-sS", "--url", f"smtp://{host}:{port('submission')}", "--ssl-reqd",
               "--cacert", cert, "--mail-from", BOB, "--mail-rcpt", ALICE,
               "--user", f"{BOB}:{BOB_PW}", "-T", str(message))
    assert sent.returncode == 0, sent.stderr
    listing = run(curl, "-sS", "--url", f"pop3://{host}:{port('pop3')}/", "--ssl-reqd",
                  "--cacert", cert, "--user", f"{ALICE}:{ALICE_PW}")
    assert listing.returncode == 0, listing.stderr
    number, size = listing.stdout.split()
    fetched = run(curl, "-sS", "--url", f"pop3s://{host}:{port('pop3s')}/{number}",
                  "--cacert", cert, "--user", f"{ALICE}:{ALICE_PW}")
    assert fetched.returncode == 0, fetched.stderr
    assert "Subject: from curl" in fetched.stdout
    assert ".leading dot survives" in fetched.stdout
    [stored] = bodies(server, users[0])
    assert int(size) == len(stored)


def test_fetchmail_downloads_over_stls_and_deletes(
    server: object, users: tuple[Account, Account], cert: str, tmp_path: Path
) -> None:
    fetchmail = need("fetchmail")
    server.run(_deliver_two(server, users[0]))  # type: ignore[attr-defined]
    mbox = tmp_path / "fetched.mbox"
    rc = tmp_path / "fetchmailrc"
    # fetchmail matches the certificate against the name it was given as a DNS name, so it
    # polls "localhost" (in the certificate) rather than the IP address.
    rc.write_text(
        "set no syslog\n"
        f'poll localhost service {server.port("pop3")} protocol pop3 '  # type: ignore[attr-defined]
        f'user "{ALICE}" password "{ALICE_PW}" sslproto tls1.2+ sslcertfile {cert} '
        f'sslcertck mda "cat >> {mbox}"\n'
    )
    rc.chmod(0o600)
    first = run(fetchmail, "-f", str(rc), "--nodetach", "--nosyslog")
    assert first.returncode == 0, first.stdout + first.stderr
    assert mbox.read_bytes().count(b"Subject: fetched-") == 2
    second = run(fetchmail, "-f", str(rc), "--nodetach", "--nosyslog")
    assert second.returncode == 1  # fetchmail's "no mail"
    assert bodies(server, users[0]) == []


async def _deliver_two(server: object, account: Account) -> None:
    from mailwright.store.api import Envelope

    store = server.store  # type: ignore[attr-defined]
    for n in range(2):
        staged = store.stage()
        staged.write(f"Subject: fetched-{n}\r\n\r\nbody {n}\r\n".encode())
        await store.deliver(staged, Envelope(mail_from="x@remote.test"), [account.id], [])
