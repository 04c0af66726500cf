"""The inbound verdict from SPF, DKIM and DMARC results and `[inbound]` (pure).

Order of precedence: reject (a certain DMARC reject) > tempfail (a DNS failure in a check whose
result would change the outcome) > junk > deliver. A DNS failure never silently passes: when
the missing answer could have turned the message away or into Junk, the client is asked to
retry (451 4.4.3, RFC 3463 "directory server failure"); when no outcome depends on it, the
message is delivered and the Authentication-Results header says temperror.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mailwright.config import InboundConfig
    from mailwright.mailauth.dkim_verify import DkimResult
    from mailwright.mailauth.dmarc import DmarcResult
    from mailwright.mailauth.spf import SpfResult

Action = Literal["deliver", "junk", "reject", "tempfail"]


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    # The SMTP reply for reject/tempfail (the session renders it); 0 for deliver/junk.
    code: int = 0
    status: str = ""


DELIVER = Verdict("deliver", "checks passed or nothing to enforce")


def decide(
    config: InboundConfig,
    spf: SpfResult,
    dkim: Sequence[DkimResult],
    dmarc: DmarcResult,
) -> Verdict:
    if dmarc.result == "fail" and dmarc.policy == "reject" and config.enforce_dmarc:
        # RFC 7489 6.7 / 10.3: reject during the SMTP transaction with a 5.7.1 status.
        return Verdict(
            "reject",
            f"DMARC policy of {dmarc.from_domain} is reject",
            550,
            "5.7.1",
        )
    if dmarc.result == "temperror" and (dmarc.published in ("", "quarantine", "reject")):
        # Discovery failed (policy unknown) or an aligned check could not finish while the
        # policy would act on a failure.
        return _tempfail(f"DMARC for {dmarc.from_domain}: {dmarc.reason}")
    dkim_pass = any(r.result == "pass" for r in dkim)
    if config.spf_fail_to_junk and not dkim_pass:
        if spf.result == "fail" and any(r.result == "temperror" for r in dkim):
            return _tempfail("SPF fail and a DKIM key lookup failed")
        if spf.result == "temperror":
            return _tempfail(f"SPF for {spf.domain}: {spf.reason}")
    if dmarc.result == "fail" and dmarc.policy == "reject":  # not enforced: Junk instead
        return Verdict("junk", f"DMARC policy of {dmarc.from_domain} is reject (not enforced)")
    if dmarc.result == "fail" and dmarc.policy == "quarantine" and config.quarantine_to_junk:
        return Verdict("junk", f"DMARC policy of {dmarc.from_domain} is quarantine")
    if config.spf_fail_to_junk and spf.result == "fail" and not dkim_pass:
        return Verdict("junk", f"SPF fail for {spf.domain} and no DKIM pass")
    return DELIVER


def _tempfail(reason: str) -> Verdict:
    return Verdict("tempfail", reason, 451, "4.4.3")
