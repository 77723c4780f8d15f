"""The crew's captive page: OS captivity probes, the RFC 8908 Captive Portal API, sign-in with a
handle and PIN, consent, compose with presets and a live size estimate, message status, the inbox,
vessel distress (SOS) and the covert personal-safety alert.

One module per screen holds its route handlers (``home``, ``signin``, ``compose``, ``sos``,
``probes``); each reads what it needs from ``request.app.state`` (see ``state``), which
``app.create_app`` sets once; ``pages`` has what they share. Every action is a plain HTML form, so the
page works without JavaScript; the session token travels in a hidden form field and the URL as well as
a cookie, so it works in sign-in mini-browsers that drop cookies. Pages are self-contained (no external
assets), every value is escaped by Jinja2's autoescape, request bodies are bounded and parsed strictly
(invalid UTF-8 is refused, ``common.web``), and requests are rate limited per client address. Store
calls run in a worker thread so PIN hashing and synchronous disk writes never stall the daemon's event
loop. It does not talk to the modem.
"""

from common.web import MAX_FORM_BYTES

from .app import create_app
from .state import CaptiveLimits

__all__ = ["MAX_FORM_BYTES", "CaptiveLimits", "create_app"]
