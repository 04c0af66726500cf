"""The web inbox and its JSON API over the capture box (docs/web.md).

`create_app(box)` (app.py) is the aiohttp application; `HttpListener` (listener.py) serves it on
the mail server's loop for the "http" listener. view.py turns a stored message into what the
page shows, without I/O.
"""

from mailwright.web.app import create_app
from mailwright.web.listener import HttpListener

__all__ = ["HttpListener", "create_app"]
