"""What the dashboard's handlers find on ``request.app.state``, set once by ``app.create_app``.

``data`` (a ``DashboardData``), ``clock`` (a ``Clock``), ``settings`` (a ``DashboardSettings``) and, for
the hotline desk, ``publish(topic, payload)``. The typed getters below are the only place that knows
those attribute names; a handler module needs only what its screen uses, so a test can build an app
with one module's ``routes`` and those few attributes. It holds no state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from common.clock import Clock

from .data import DashboardData


@dataclass(frozen=True)
class DashboardSettings:
    """The dashboard's tunables (the relay's ``[dashboard]`` settings and the fleet view's limits)."""

    silent_after_s: float = 6 * 3600.0
    day_budget_bytes: int | None = None
    secure_cookies: bool = False
    session_idle_s: float = 8 * 3600.0
    session_max_s: float = 7 * 86400.0
    gdst_domain: str = "seabridge.local"
    poll_s: float = 1.0


def data_of(request: Request) -> DashboardData:
    data: DashboardData = request.app.state.data
    return data


def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def settings_of(request: Request) -> DashboardSettings:
    settings: DashboardSettings = request.app.state.settings
    return settings


def publish_of(request: Request) -> Callable[[str, bytes], None]:
    publish: Callable[[str, bytes], None] = request.app.state.publish
    return publish
