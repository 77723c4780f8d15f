"""What the catch-log handlers find on ``request.app.state`` (put there by ``install``): the
``CatchLog``, the rate limiter of the API and the page, and whether the session cookie is Secure. Only
these getters know the attribute names."""

from __future__ import annotations

from starlette.datastructures import State
from starlette.requests import Request

from common.web import TokenBuckets

from ..catchlog import CatchLog


def catchlog_of(request: Request) -> CatchLog:
    state: State = request.app.state
    catchlog: CatchLog = state.catchlog
    return catchlog


def limiter_of(request: Request) -> TokenBuckets:
    limiter: TokenBuckets = request.app.state.catch_limiter
    return limiter


def secure_cookies_of(request: Request) -> bool:
    """Whether the page's session cookie is marked Secure (the page is served over TLS)."""
    return bool(getattr(request.app.state, "catch_secure_cookies", False))
