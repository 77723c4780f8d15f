"""Each dashboard screen module stands alone: an app made of one module's ``routes`` and only the
``app.state`` attributes that screen reads works, so a screen can be changed and tested by itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from captive_support import serve
from starlette.applications import Starlette

from common.clock import ManualClock
from shore.archive import Archive
from shore.dashboard import hotline, login, static
from shore.dashboard.auth import Role
from shore.dashboard.data import DashboardData
from shore.dashboard.state import DashboardSettings

PASSWORD = "correct horse battery"
IMEI = "300234010753370"


def test_static_assets_need_nothing_on_app_state() -> None:
    app = Starlette(routes=static.routes)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as web:
        script = web.get("/static/dashboard.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert web.get("/static/other.js").status_code == 404
        assert web.get("/health").text == "ok"


def test_the_hotline_desk_alone_sends_a_reply_to_the_vessel(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive.sqlite3")
    archive.register_vessel(IMEI, "Sea Star 7", bytes(32), "north", "iridium-9603")
    data = DashboardData(archive)
    data.add_user("desk", Role.HOTLINE, PASSWORD, None, 0.0)
    published: list[tuple[str, bytes]] = []
    app = Starlette(routes=[*login.routes, *hotline.routes])
    app.state.data = data
    app.state.clock = ManualClock(1_700_000_000.0)
    app.state.settings = DashboardSettings()
    app.state.publish = lambda topic, payload: published.append((topic, payload))
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as web:
        form = web.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        r = web.post(
            "/login",
            data={"csrf": token, "username": "desk", "password": PASSWORD, "next": "/hotline"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/hotline"
        desk = web.get("/hotline")
        assert desk.status_code == 200
        csrf = re.search(r'data-csrf="([^"]+)"', desk.text).group(1)  # type: ignore[union-attr]
        r = web.post(
            "/hotline/reply",
            data={"csrf": csrf, "vessel": "sea-star-7", "member": "3", "text": "We hear you."},
            headers={"accept": "application/json"},
        )
        assert r.status_code == 200, r.text
    assert len(published) == 1
    topic, payload = published[0]
    assert topic.endswith("/north/sea-star-7/down/crew")
    assert json.loads(payload)["text"] == "We hear you."
    archive.close()
