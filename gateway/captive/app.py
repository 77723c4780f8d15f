"""Building the captive page app: the accounts, the rate limiters, the presets and the modem profile
that prices estimates, ``app.state`` (set here once and only here), and the routes of every screen
module plus, when asked, the catch log's. It handles no request itself and does not talk to the modem.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from firmware_profiles import ModemProfile, load_profile
from wire.codec import preset_table

from .. import catchlog_web
from ..accounts import Accounts
from ..budget import periods
from ..catchlog import CatchLog
from ..config import ModemSection
from ..crew import CrewDesk
from ..fairness import AllowancePolicy, AllowanceState, allowance_state
from . import compose, home, probes, signin, sos
from .probes import PROBE_POLICIES
from .state import CaptiveLimits, Limiters

SCREENS = (home, signin, compose, sos, probes)


def _allowance(
    desk: CrewDesk, given: Callable[[int], AllowanceState] | None, owner: object
) -> Callable[[int], AllowanceState]:
    """A member's allowance, looked up per request: the daemon may install ``desk.allowance`` after
    building the app. Without any source the default policy applies to the member's stored usage."""
    owner_allowance = getattr(owner, "allowance", None)

    def unlimited(member: int) -> AllowanceState:
        day, month = periods(desk.clock.now())
        used = desk.store.member_usage
        return allowance_state(AllowancePolicy(), used(member, day), used(member, month))

    def allowance_of(member: int) -> AllowanceState:
        source = given or desk.allowance or owner_allowance or unlimited
        return source(member)

    return allowance_of


def create_app(
    desk: CrewDesk,
    vessel_name: str,
    on_accept: Callable[[], None] = lambda: None,
    *,
    profile: ModemProfile | None = None,
    accounts: Accounts | None = None,
    limits: CaptiveLimits | None = None,
    probe_policy: str = "portal",
    allowance: Callable[[int], AllowanceState] | None = None,
    portal_url: str = "",
    extra_routes: list[BaseRoute] | None = None,
    catch_log: bool = True,
    secure_cookies: bool = False,
) -> Starlette:
    """The captive page app. ``probe_policy``: "portal" answers every OS probe as captive (the sign-in
    sheet opens on each join), "release" answers as captive until that address has signed in, "online"
    never claims captivity (rely on DHCP option 114 and a printed address). ``secure_cookies`` marks
    the session cookies Secure (the ``[captive] secure_cookies`` setting, for a page served over TLS).

    ``catch_log`` mounts the captain's catch-log page (``/catch``) and JSON API (``/api/catch``,
    described at ``/api/openapi.json``) in the same app. ``profile`` prices the live estimate and
    ``allowance(member)`` gives a member's remaining bytes; when not given they are taken from the
    object ``on_accept`` is bound to (the daemon), else the default modem profile and no limit."""
    if probe_policy not in PROBE_POLICIES:
        raise ValueError(f"probe_policy must be one of {PROBE_POLICIES}")
    owner = getattr(on_accept, "__self__", None)
    routes: list[BaseRoute] = [route for screen in SCREENS for route in screen.routes]
    routes += extra_routes or []
    if catch_log:
        routes += catchlog_web.routes
    app = Starlette(routes=[*routes, probes.catch_all])
    state = app.state
    state.desk = desk
    state.accounts = accounts or Accounts(desk.store, desk.clock)
    state.vessel_name = vessel_name
    state.on_accept = on_accept
    state.profile = profile or getattr(owner, "profile", None) or load_profile(ModemSection().profile)
    state.allowance = _allowance(desk, allowance, owner)
    state.presets = preset_table()
    state.limiters = Limiters.of(limits or CaptiveLimits())
    state.released = OrderedDict()
    state.sos_secret = secrets.token_bytes(32)  # RAM only: a cancel code is good for this run
    state.secure_cookies = secure_cookies
    state.probe_policy = probe_policy
    state.portal_url = portal_url
    if catch_log:
        catchlog_web.install(
            state, CatchLog(desk.store, desk.clock, on_accept), secure_cookies=secure_cookies
        )
    return app
