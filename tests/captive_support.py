"""Helpers for the captive-page tests: a real gateway store, crew desk and the page served by uvicorn
on a loopback port in a background thread (real HTTP, real SQLite)."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from nacl.public import PrivateKey

from common.clock import Clock, ManualClock
from firmware_profiles import load_profile
from gateway.captive import CaptiveLimits, create_app
from gateway.crew import CrewDesk
from gateway.store import GatewayStore
from wire.frame import frame_capacity

PROFILE = load_profile("iridium-9603")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    """The parts of a gateway the page needs, on a SQLite file in ``path``."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.clock = clock or ManualClock()
        self.crew_secret = PrivateKey.generate()
        self.store = GatewayStore(path / "gateway.sqlite3", frame_capacity(PROFILE.mo_max_bytes, 2**35 - 1))
        self.desk = CrewDesk(self.store, self.crew_secret.public_key, self.clock)
        self.accepted = 0

    def on_accept(self) -> None:
        self.accepted += 1


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("captive page did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def page(tmp_path: Path, limits: CaptiveLimits | None = None, **kwargs: Any) -> Iterator[tuple[Gateway, str]]:
    gw = Gateway(tmp_path, kwargs.pop("clock", None))
    app = create_app(gw.desk, "Sea Star 7", gw.on_accept, profile=PROFILE, limits=limits, **kwargs)
    with serve(app) as url:
        yield gw, url
    gw.store.close()


def token_of(response: httpx.Response) -> str:
    """The session token a response carries in its redirect URL."""
    match = re.search(r"[?&]s=([^&]+)", response.headers.get("location", ""))
    assert match, f"no session in {response.headers.get('location')!r}"
    from urllib.parse import unquote

    return unquote(match.group(1))


def sign_in(web: httpx.Client, handle: str, pin: str = "2468", consent: bool = True) -> str:
    r = web.post("/login", data={"handle": handle, "pin": pin})
    assert r.status_code == 303, r.text
    token = token_of(r)
    if consent:
        r = web.post("/consent", data={"s": token, "agree": "1"})
        assert r.status_code == 303
    return token
