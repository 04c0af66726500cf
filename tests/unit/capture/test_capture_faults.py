"""capture/faults.py: the local-part conventions, the rate decision, and the shared file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailwright.capture.faults import (
    PERMERROR,
    TEMPERROR,
    TIMEOUT,
    FaultFile,
    FaultSettings,
    FaultSettingsError,
    address_fault,
    decide,
    fault_for_code,
    from_json,
    to_json,
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("temperror@example.com", ("rcpt", TEMPERROR)),
        ("PermError@Example.com", ("rcpt", PERMERROR)),
        ("timeout@example.com", ("rcpt", TIMEOUT)),
        ("code-552@example.com", ("rcpt", fault_for_code(552))),
        ("code-421@example.com", ("rcpt", fault_for_code(421))),
        ("data-temperror@example.com", ("data", TEMPERROR)),
        ("data-code-554@example.com", ("data", fault_for_code(554))),
        ("data-timeout@x", ("data", TIMEOUT)),
        ("temperror+order-17@example.com", ("rcpt", TEMPERROR)),
        ('"permerror"@example.com', ("rcpt", PERMERROR)),
        ("<temperror@example.com>", ("rcpt", TEMPERROR)),
        ("user@example.com", None),
        ("code-250@example.com", None),  # not a failure
        ("code-600@example.com", None),
        ("code-45@example.com", None),
        ("code-4521@example.com", None),
        ("data-user@example.com", None),
        ("temperrors@example.com", None),
        ("mytemperror@example.com", None),
        ("temperror@", ("rcpt", TEMPERROR)),
    ],
)
def test_address_fault(address: str, expected: object) -> None:
    assert address_fault(address) == expected


def test_codes_and_statuses() -> None:
    assert (TEMPERROR.code, TEMPERROR.status) == (451, "4.3.0")
    assert (PERMERROR.code, PERMERROR.status) == (550, "5.1.1")
    assert fault_for_code(552).status == "5.3.4"
    assert fault_for_code(499).status == "4.0.0"
    assert fault_for_code(599).status == "5.0.0"
    assert TIMEOUT.timeout
    assert not TEMPERROR.timeout


def test_decide_by_stage() -> None:
    none = FaultSettings()
    assert decide("rcpt", ["temperror@x"], none, 0.99) == TEMPERROR
    assert decide("data", ["temperror@x"], none, 0.0) is None  # an RCPT fault only
    assert decide("data", ["ok@x", "data-permerror@x"], none, 0.5) == PERMERROR
    assert decide("rcpt", ["data-permerror@x"], none, 0.0) is None
    assert decide("rcpt", ["ok@x"], none, 0.0) is None


def test_decide_by_rate() -> None:
    half = FaultSettings(rcpt_fail_rate=0.5, data_fail_rate=0.25, fail_code=554)
    assert decide("rcpt", ["ok@x"], half, 0.49) == fault_for_code(554)
    assert decide("rcpt", ["ok@x"], half, 0.5) is None
    assert decide("data", ["ok@x"], half, 0.2) == fault_for_code(554)
    assert decide("data", ["ok@x"], half, 0.3) is None
    everything = FaultSettings(rcpt_fail_rate=1.0)
    assert all(decide("rcpt", ["a@x"], everything, r / 10) is not None for r in range(10))
    # An address fault wins over the rate.
    assert decide("rcpt", ["permerror@x"], everything, 0.0) == PERMERROR


@pytest.mark.parametrize(
    "kwargs",
    [{"rcpt_fail_rate": 1.5}, {"data_fail_rate": -0.1}, {"fail_code": 250},
     {"fail_code": 600}, {"reply_delay": -1}, {"reply_delay": float("inf")},
     {"rcpt_fail_rate": "0.5"}],
)
def test_settings_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(FaultSettingsError):
        FaultSettings(**kwargs)  # type: ignore[arg-type]


def test_json_round_trip_and_errors() -> None:
    settings = FaultSettings(rcpt_fail_rate=0.1, data_fail_rate=0.2, fail_code=452,
                             reply_delay=0.5)
    assert from_json(to_json(settings)) == settings
    for bad in ("[]", "{nope", '{"rate": 1}', '{"fail_code": 200}'):
        with pytest.raises(FaultSettingsError):
            from_json(bad)


def test_fault_file_rereads_on_change(tmp_path: Path) -> None:
    path = tmp_path / "capture-faults.json"
    default = FaultSettings(reply_delay=0.1)
    server, cli = FaultFile(path), FaultFile(path)
    assert server.current(default) == default  # no file yet
    server.save(FaultSettings(rcpt_fail_rate=0.5))
    assert server.current(default) == FaultSettings(rcpt_fail_rate=0.5)
    cli.save(FaultSettings(rcpt_fail_rate=0.7))  # same size: a new inode tells them apart
    assert server.current(default) == FaultSettings(rcpt_fail_rate=0.7)
    path.write_text("{broken")  # a broken file keeps the last good settings
    assert server.current(default) == FaultSettings(rcpt_fail_rate=0.7)
    os.unlink(path)
    assert server.current(default) == default
    assert cli.load() is None
