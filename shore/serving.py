"""Serving the shore's HTTP apps (webhook, metrics, dashboard) with uvicorn inside the service's
TaskGroup, and the ``host:port`` notation the config uses for every listener.

It must not build the apps or decide which run: ``shore.service`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from common.clock import Clock


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)


def show_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


async def serve_http(tg: asyncio.TaskGroup, app: Any, listen: str) -> tuple[uvicorn.Server, str, int]:
    host, port = split_listen(listen)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
    )
    task = tg.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"HTTP server on {listen} did not start")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    return server, show_host(host), int(bound[1])


async def wait_any(clock: Clock, seconds: float, *events: asyncio.Event) -> None:
    """Until ``seconds`` of ``clock`` have passed or any of ``events`` is set."""
    waits = [asyncio.ensure_future(clock.sleep(seconds))] + [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
