"""What happens to an accepted message: resolve each recipient, store one copy for all local
accounts, queue the rest. SMTP, and later IMAP APPEND of Sent mail and the testing capture, go
through here, so that relay policy lives in exactly one place.

Invariants:
- Never an open relay: a recipient outside the local domains resolves to `RemoteRecipient` only
  when the caller says the session may relay (it authenticated); otherwise `Refusal.RELAY_DENIED`.
- Capture mode (`Deliverer.capture`): such a recipient resolves to `CapturedRecipient`, from
  any session, and every remote target (alias forwards included) is kept in the capture box:
  nothing is queued or relayed.
- Alias expansion is bounded (depth and fan-out) and loop-safe.
"""

from mailwright.delivery.deliverer import (
    CapturedRecipient,
    Deliverer,
    LocalRecipient,
    Refusal,
    RemoteRecipient,
    Resolution,
)

__all__ = [
    "CapturedRecipient",
    "Deliverer",
    "LocalRecipient",
    "Refusal",
    "RemoteRecipient",
    "Resolution",
]
