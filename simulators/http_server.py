"""Serving an emulated network side's HTTP API (a Starlette app) under uvicorn, for tests and the demo.

This module owns the listening socket and the uvicorn task: it binds once (port 0 by default, so the
kernel picks a free port), keeps that very socket for the server, and reports the port actually bound
(``address``, ``url``). There is no bind-then-release step, so no other process can take the port
between choosing and serving it. It must not know what the app serves, and it never listens on
anything but the host it is given (127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp

STARTUP_POLL_S = 0.01
BACKLOG = 64


class HttpServer:
    """``app`` on ``host:port`` (port 0: any free one). ``await start()``, read ``url``, ``await stop()``."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, name: str = "http") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The host and port actually bound; valid after ``start``."""
        if self._socket is None:
            raise RuntimeError(f"{self.name} server is not started")
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def url(self, path: str = "") -> str:
        host, port = self.address
        return f"http://{host}:{port}{path}"

    async def start(self) -> None:
        """Bind, listen and serve; returns once uvicorn accepts connections (or raises its failure)."""
        if self._server is not None:
            raise RuntimeError(f"{self.name} server already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{self.name}-server")
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self.name} server stopped before it started")
            await asyncio.sleep(STARTUP_POLL_S)

    async def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        task, self._task = self._task, None
        if server is not None:
            server.should_exit = True
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
