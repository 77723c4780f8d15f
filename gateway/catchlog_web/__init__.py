"""HTTP doors to the catch log: a JSON API for electronic-logbook tablets (``api``, described by
``openapi.json`` served at ``/api/openapi.json``) and a plain-HTML page for the captain at ``/catch``
(``page``). They are mounted in the captive page's app but import nothing of it.

Both call the same ``CatchLog`` methods, so they share one set of validation rules; a refusal answers
with the field and a translated message (``language``), and changes nothing. Bodies are bounded, JSON
must be an object, and the page works without JavaScript. Handlers read the ``CatchLog`` and their rate
limiter from ``request.app.state`` (``install`` puts them there). It owns no state of its own beyond
what ``CatchLog`` stores, and must not talk to the modem.
"""

from __future__ import annotations

from starlette.datastructures import State
from starlette.routing import BaseRoute

from common.web import TokenBuckets

from ..catchlog import CatchLog
from . import api, page

routes: list[BaseRoute] = [*api.routes, *page.routes]


def install(
    state: State, catchlog: CatchLog, limiter: TokenBuckets | None = None, secure_cookies: bool = False
) -> None:
    """Put what the catch-log routes need on an app's ``state``. ``secure_cookies`` marks the page's
    session cookie Secure (the same ``[captive] secure_cookies`` setting as the captive page's)."""
    state.catchlog = catchlog
    state.catch_limiter = limiter or TokenBuckets(60, 1.0, 1024)
    state.catch_secure_cookies = secure_cookies


__all__ = ["install", "routes"]
