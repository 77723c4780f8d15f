"""What the captive page's handlers find on ``request.app.state``, set once by ``app.create_app``.

The typed getters below are the only place that knows those attribute names, so a handler module
needs only what its screen uses and a test can build an app with one module's ``routes`` and those
few attributes. ``CaptiveLimits`` are the per-address request budgets. It holds no state itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from common.web import TokenBuckets
from firmware_profiles import ModemProfile
from wire.presets import PresetTable

from ..accounts import Accounts
from ..crew import CrewDesk
from ..fairness import AllowanceState


@dataclass(frozen=True)
class CaptiveLimits:
    """Per-client-address request budgets (token buckets: ``burst`` requests, refilled at ``per_s``)."""

    post_burst: int = 30
    post_per_s: float = 0.5
    login_burst: int = 10
    login_per_s: float = 0.1
    api_burst: int = 40
    api_per_s: float = 4.0
    # SOS confirmations without signing in, per address and all addresses together.
    sos_burst: int = 3
    sos_per_s: float = 1 / 600
    sos_total_burst: int = 10
    sos_total_per_s: float = 1 / 60
    tracked_clients: int = 1024  # least recently seen addresses beyond this are forgotten


@dataclass
class Limiters:
    """The page's token buckets: every form post, sign-in attempts, the JSON estimate and anonymous
    SOS confirmations (per address, and all addresses together)."""

    post: TokenBuckets
    login: TokenBuckets
    api: TokenBuckets
    tracked_clients: int
    sos: TokenBuckets
    sos_total: TokenBuckets

    @classmethod
    def of(cls, limits: CaptiveLimits) -> Limiters:
        n = limits.tracked_clients
        return cls(
            TokenBuckets(limits.post_burst, limits.post_per_s, n),
            TokenBuckets(limits.login_burst, limits.login_per_s, n),
            TokenBuckets(limits.api_burst, limits.api_per_s, n),
            n,
            TokenBuckets(limits.sos_burst, limits.sos_per_s, n),
            TokenBuckets(limits.sos_total_burst, limits.sos_total_per_s, 1),
        )


def desk_of(request: Request) -> CrewDesk:
    desk: CrewDesk = request.app.state.desk
    return desk


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def limiters_of(request: Request) -> Limiters:
    limiters: Limiters = request.app.state.limiters
    return limiters


def now_of(request: Request) -> float:
    return desk_of(request).clock.now()


def vessel_name_of(request: Request) -> str:
    return str(request.app.state.vessel_name)


def presets_of(request: Request) -> PresetTable:
    presets: PresetTable = request.app.state.presets
    return presets


def profile_of(request: Request) -> ModemProfile:
    profile: ModemProfile = request.app.state.profile
    return profile


def on_accept_of(request: Request) -> Callable[[], None]:
    """Wakes the daemon: a message was queued."""
    on_accept: Callable[[], None] = request.app.state.on_accept
    return on_accept


def allowance_of(request: Request) -> Callable[[int], AllowanceState]:
    allowance: Callable[[int], AllowanceState] = request.app.state.allowance
    return allowance


def secure_cookies_of(request: Request) -> bool:
    """Whether session cookies are marked Secure (the page is served over TLS)."""
    return bool(getattr(request.app.state, "secure_cookies", False))


def released_of(request: Request) -> OrderedDict[str, float]:
    """Client addresses that have signed in (for the "release" probe policy), oldest first."""
    released: OrderedDict[str, float] = request.app.state.released
    return released
