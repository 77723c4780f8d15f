"""The dashboard's response headers: Content-Security-Policy ``'self'`` (no asset from the internet),
no sniffing, no framing, same-origin referrers, and no caching of pages (static assets and streams are
left to their handlers). It is ASGI middleware and touches nothing but response headers."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.web import SecurityPolicy, apply_security_headers

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "media-src 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
POLICY = SecurityPolicy(csp=CSP, referrer="same-origin", no_store=True, override=False)


class SecurityHeaders:
    """ASGI middleware adding ``POLICY`` to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                apply_security_headers(MutableHeaders(scope=message), POLICY, cache=not static)
            await send(message)

        await self.app(scope, receive, send_with_headers)
