"""Building the dashboard app: the archive's ``DashboardData``, the first user from the relay's
settings, ``app.state`` (set here once and only here), the security headers and the routes of every
screen module. It handles no request itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from common.clock import Clock, SystemClock

from ..archive import Archive
from . import admin, alerts, catch, fleet, hotline, login, static, stream
from .auth import AuthError, LockoutPolicy, Role
from .data import DashboardData
from .security import SecurityHeaders
from .state import DashboardSettings

log = logging.getLogger("shore.dashboard")

SCREENS = (login, fleet, alerts, hotline, catch, admin, stream, static)


def routes() -> list[BaseRoute]:
    """Every screen's routes, in the order they are matched."""
    return [route for screen in SCREENS for route in screen.routes]


def create_app(
    archive: Archive,
    publish: Callable[[str, bytes], None],
    username: str = "hotline",
    password: str = "",
    *,
    clock: Clock | None = None,
    silent_after_s: float = 6 * 3600.0,
    day_budget_bytes: int | None = None,
    secure_cookies: bool = False,
    session_idle_s: float = 8 * 3600.0,
    session_max_s: float = 7 * 86400.0,
    lockout: LockoutPolicy | None = None,
    gdst_domain: str = "seabridge.local",
    poll_s: float = 1.0,
) -> Starlette:
    """The dashboard app. ``username``/``password`` (the relay's ``[dashboard]`` settings), when a
    password is set and the user does not exist yet, create a first user: role hotline if the name is
    ``hotline``, administrator otherwise. Further users come from ``seabridge users add``."""
    clock = clock or SystemClock()
    data = DashboardData(archive, lockout)
    if password and data.user(username) is None:
        role = Role.HOTLINE if username == "hotline" else Role.ADMINISTRATOR
        try:
            data.add_user(username, role, password, None, clock.now())
        except AuthError as exc:
            log.warning("dashboard user %r from the configuration not created: %s", username, exc)
    app = Starlette(middleware=[Middleware(SecurityHeaders)], routes=routes())
    app.state.data = data
    app.state.clock = clock
    app.state.publish = publish
    app.state.settings = DashboardSettings(
        silent_after_s=silent_after_s,
        day_budget_bytes=day_budget_bytes,
        secure_cookies=secure_cookies,
        session_idle_s=session_idle_s,
        session_max_s=session_max_s,
        gdst_domain=gdst_domain,
        poll_s=poll_s,
    )
    return app
