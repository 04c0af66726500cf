"""Building the queue runner for the server: resolver, router, outbound TLS, DKIM signer.

Kept out of server.py so that the process code stays about listeners; everything here fails at
start (ConfigError with one line) rather than at the first outbound message.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from mailwright.queue.prepare import Signer
from mailwright.queue.routing import Router
from mailwright.queue.runner import QueueRunner, outbound_tls_context
from mailwright.queue.waking import WakingDeliverer

if TYPE_CHECKING:
    from mailwright.services import Services

log = logging.getLogger(__name__)


def load_signer(services: Services) -> Signer | None:
    """helper D's DkimSigner over <data>/dkim when [dkim] sign is on and the module exists."""
    config = services.config
    if not config.dkim.sign:
        return None
    try:
        module = importlib.import_module("mailwright.mailauth.dkim_sign")
    except ModuleNotFoundError:
        log.warning("dkim: mailwright.mailauth.dkim_sign is not available; not signing")
        return None
    signer: Signer = module.DkimSigner(config.data_dir / "dkim")
    return signer


def build_runner(services: Services) -> QueueRunner:
    """The runner over the server's store and deliverer (ConfigError for a bad [queue])."""
    config = services.config
    resolver = getattr(services, "resolver", None)
    if resolver is None:
        from mailwright.net.resolver import Resolver

        resolver = Resolver.from_config(config.dns)
    runner = QueueRunner(
        services.store,
        services.deliverer,
        Router(config.queue, resolver),
        config.queue,
        config.hostname,
        outbound_tls_context(),
        signer=load_signer(services),
    )
    if isinstance(services.deliverer, WakingDeliverer):
        services.deliverer.on_queued = runner.wake
    return runner
