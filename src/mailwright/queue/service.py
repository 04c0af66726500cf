"""Building the queue runner for the server: resolver, router, outbound TLS, DKIM signer.

Kept out of server.py so that the process code stays about listeners; everything here fails at
start (ConfigError with one line) rather than at the first outbound message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailwright.mailauth.dkim_sign import DkimSigner
from mailwright.queue.prepare import Signer
from mailwright.queue.routing import Identity, Router
from mailwright.queue.runner import QueueRunner, outbound_tls_context
from mailwright.queue.waking import WakingDeliverer

if TYPE_CHECKING:
    from mailwright.services import Services


def load_signer(services: Services) -> Signer | None:
    """A DkimSigner over <data>/dkim when [dkim] sign is on (it signs for the domains that
    have keys there, and notices keys added while the server runs)."""
    config = services.config
    if not config.dkim.sign:
        return None
    return DkimSigner(config.data_dir / "dkim")


def build_runner(services: Services) -> QueueRunner:
    """The runner over the server's store and deliverer (ConfigError for a bad [queue]).

    Its router knows our hostname; the server adds our MX sockets once they are bound
    (`runner.router.identity.listen_on`), before it starts the runner."""
    config = services.config
    resolver = getattr(services, "resolver", None)
    if resolver is None:
        from mailwright.net.resolver import Resolver

        resolver = Resolver.from_config(config.dns)
    runner = QueueRunner(
        services.store,
        services.deliverer,
        Router(config.queue, resolver, Identity(config.hostname)),
        config.queue,
        config.hostname,
        outbound_tls_context(),
        signer=load_signer(services),
    )
    if isinstance(services.deliverer, WakingDeliverer):
        services.deliverer.on_queued = runner.wake
    return runner
