"""gunicorn's worker for Atelier: uvicorn's (the uvicorn-worker package), with Atelier's rules.

gunicorn keeps managing processes (config/gunicorn.conf.py: bind, workers, timeouts); each
worker serves the ASGI app (config/asgi.py) on one event loop, so an open event stream holds
no thread. What differs from uvicorn's own worker:

- The access log keeps the path only (no query string: searches carry people's words), unless
  LOG_PROMPTS=true. uvicorn writes no referer.
- uvicorn's proxy-header rewrite is off: REMOTE_ADDR stays the peer's address, as under
  gunicorn's threads. Who the client is behind a proxy is TRUSTED_PROXIES' question
  (accounts.addresses); the scheme is Django's (SECURE_PROXY_SSL_HEADER).
- On shutdown the ON_SHUTDOWN callbacks run first (config/asgi.py ends the open event
  streams there), so a stop does not wait graceful_timeout for pages that never hang up.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable

from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from uvicorn.server import Server as UvicornServer
from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

ON_SHUTDOWN: list[Callable[[], None]] = []


class PathOnly(logging.Filter):
    """uvicorn's access line ('%s - "%s %s HTTP/%s" %d') with the query string cut off."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.args = (client, method, str(path).partition("?")[0], version, status)
        return True


class Server(UvicornServer):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for callback in ON_SHUTDOWN:
            callback()
        await super().shutdown(sockets)


class Worker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "asyncio", "http": "httptools", "proxy_headers": False}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        if os.environ.get("LOG_PROMPTS", "false").lower() != "true":
            logging.getLogger("uvicorn.access").addFilter(PathOnly())

    async def _serve(self) -> None:  # uvicorn-worker's, with the Server above
        self.config.app = self.wsgi
        server = Server(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
