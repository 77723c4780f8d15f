"""The shore dashboard and hotline desk: fleet view, hotline desk, catch view and administration.

Served by the relay process (one ASGI app under the relay's uvicorn). One module per screen holds that
screen's route handlers (``login``, ``fleet``, ``alerts``, ``hotline``, ``catch``, ``admin``,
``stream``, ``static``); each reads what it needs from ``request.app.state`` (see ``state``), which
``app.create_app`` sets once. ``pages`` has the shared plumbing (templates, sessions, the permission
and CSRF guard), ``security`` the response headers. What each role may see is ``auth.PERMISSIONS``
(owners see their own fleet only; crew content only the hotline role, every view of it audited).
Data comes from ``data`` (the only module that touches the archive; ``accounts`` has its users,
sessions and audit log, ``records`` the values it returns). Replies are published on the vessel's
``down/crew`` topic like any other shore system's and travel the same path. Every value is escaped;
no asset is loaded from the internet (Content-Security-Policy ``'self'``).
"""

from .app import create_app

__all__ = ["create_app"]
