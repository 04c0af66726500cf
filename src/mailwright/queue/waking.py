"""A Deliverer that tells the queue runner about new outbound mail (server.py uses it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailwright.delivery import Deliverer
from mailwright.delivery.deliverer import LocalRecipient, RemoteRecipient


class WakingDeliverer(Deliverer):
    """After a delivery that queued something, call `on_queued` (the runner's wake), so that
    outbound mail leaves at once instead of at the runner's next poll."""

    on_queued: Callable[[], None] | None = None

    async def deliver(self, *args: Any, **kwargs: Any) -> None:
        await super().deliver(*args, **kwargs)
        recipients = kwargs.get("recipients", args[2] if len(args) > 2 else ())
        if self.on_queued is not None and any(
            isinstance(r, RemoteRecipient) or (isinstance(r, LocalRecipient) and r.forwards)
            for _, r in recipients
        ):
            self.on_queued()
