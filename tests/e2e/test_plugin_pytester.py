"""The pytest plugin as a user gets it: installed, found through the `pytest11` entry point,
nothing imported or listed. Each case runs pytest in a subprocess on a small test project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# What a user writes: no import of mailwright's fixtures, no conftest.py.
USES_EVERY_FIXTURE = '''
import json, os, sys
from email.message import EmailMessage

import pytest

from mailwright.testing import codes, links


def record(mail_server, name):
    """Tell the outer test which server (and which process) ran this test."""
    out = os.environ.get("PLUGIN_RECORD")
    if out:
        with open(os.path.join(out, f"{name}-{os.getpid()}.json"), "w") as f:
            json.dump({"pid": os.getpid(), "port": mail_server.smtp_port,
                       "data": str(mail_server.data_dir)}, f)


def signup_mail(to, sender):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Confirm your account"
    msg.set_content("Code 314159, or open https://shop.example/confirm?t=abc\\n")
    return msg


def test_smtp_client_sends_and_imap_client_reads(mail_server, mail_account, smtp_client,
                                                 imap_client):
    record(mail_server, "smtp")
    smtp_client.send_message(signup_mail(mail_account.address, mail_account.address))
    msg = mail_server.wait_for(to=mail_account.address, subject="Confirm")
    assert codes(msg) == ["314159"]
    assert links(msg) == ["https://shop.example/confirm?t=abc"]
    assert imap_client.select("INBOX") == ("OK", [b"1"])


def test_pop3_client_sees_only_its_own_account(mail_server, mail_account, pop3_client):
    record(mail_server, "pop3")
    assert mail_account.address.startswith("test-pop3-client-sees-only-its-own-")
    assert pop3_client.stat() == (0, 0)  # the other test's mail went to another account


def test_captured_outbound_mail(mail_server, mail_account, smtp_client):
    record(mail_server, "outbound")
    # Submission keeps its rules in capture mode: the sender is the logged-in account.
    smtp_client.send_message(signup_mail("customer@elsewhere.example", mail_account.address))
    msg = mail_server.wait_for(to="customer@elsewhere.example")
    assert msg.envelope_rcpts == ("customer@elsewhere.example",)
    assert any(m.capture_id == msg.capture_id for m in mail_server.outbound)


@pytest.mark.asyncio
async def test_asyncio_with_the_sync_fixtures(mail_server, mail_account, smtp_client):
    record(mail_server, "asyncio")
    smtp_client.send_message(signup_mail(mail_account.address, mail_account.address))
    msg = await mail_server.await_for(to=mail_account.address)
    assert msg["Subject"] == "Confirm your account"


@pytest.mark.asyncio
async def test_asyncio_own_server():
    from mailwright.testing import MailServer

    async with MailServer(http=False) as mail:
        account = mail.add_account("async@own.example")
        assert await mail.amessages(to=account.address) == []
'''

# Unrelated plugins installed in this venv, off for speed (schemathesis alone adds ~5 s to
# every pytest start, each xdist worker included). Ours still loads through its entry point.
ARGS = ("-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest",
        "-p", "no:anyio")

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_app_mail=USES_EVERY_FIXTURE)
    return pytester


def records(directory: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def test_every_fixture_through_the_entry_point(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGIN_RECORD", str(tmp_path))
    result = project.runpytest_subprocess(*ARGS, "-v")
    result.assert_outcomes(passed=5)
    seen = records(tmp_path)
    assert len(seen) == 4
    # One server for the session: every test saw the same one.
    assert len({(r["port"], r["data"]) for r in seen}) == 1
    # It was stopped and its temporary directory removed at the end of the session.
    assert not Path(str(seen[0]["data"])).exists()


def test_xdist_workers_get_a_server_each(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGIN_RECORD", str(tmp_path))
    result = project.runpytest_subprocess(*ARGS, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=5)
    seen = records(tmp_path)
    by_process: dict[object, set[object]] = {}
    for r in seen:
        by_process.setdefault(r["pid"], set()).add(r["port"])
    # Both workers ran tests; each had exactly one server, and no two shared one.
    assert len(by_process) == 2
    assert all(len(ports) == 1 for ports in by_process.values())
    ports = [next(iter(p)) for p in by_process.values()]
    assert len(set(ports)) == len(ports)


def test_plugin_is_cheap_and_stays_out_of_the_way(pytester: pytest.Pytester) -> None:
    """A suite that uses none of the fixtures never imports the server, and its own fixtures
    (say, one named `server`, like this repository's) are untouched."""
    pytester.makeini(INI)
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def server():
    return "the project's own server fixture"
"""
    )
    pytester.makepyfile(
        test_plain="""
import sys

def test_own_fixture_wins(server):
    assert server == "the project's own server fixture"

def test_server_not_imported(request):
    assert "mailwright.testing.plugin" in sys.modules
    assert "mailwright.server" not in sys.modules
    assert "mailwright.testing.mailserver" not in sys.modules
"""
    )
    result = pytester.runpytest_subprocess(*ARGS, "--fixtures")
    listing = result.stdout.str()
    for name in ("mail_server", "mail_server_options", "mail_account", "smtp_client",
                 "imap_client", "pop3_client"):
        assert f"\n{name} " in listing, name
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=2)


def test_mail_server_options_fixture_configures_the_server(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def mail_server_options():
    return {"capture": False, "http": False, "hostname": "mx.configured.test"}
"""
    )
    pytester.makepyfile(
        test_options="""
import smtplib

def test_configured(mail_server):
    assert mail_server.capture is None
    assert mail_server.http_url is None
    with smtplib.SMTP(mail_server.host, mail_server.smtp_port) as client:
        assert client.ehlo()[1].startswith(b"mx.configured.test")
"""
    )
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=1)

