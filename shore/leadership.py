"""Who runs the shore's singleton duties (event publisher, MT loop, alerts, retention).

With a SQLite archive there is one process and it always leads. With PostgreSQL the leader is whoever
holds a session advisory lock on its own connection; the server releases it when that process dies,
and another worker takes over. It must not run the duties itself: ``shore.service`` does.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from .archive import Archive

log = logging.getLogger("shore")

LEADER_LOCK = 715002


class LostLead(Exception):
    """Another process leads now: stop the singleton duties."""


class Leadership:
    """Who runs the singleton duties. SQLite: this process, always. PostgreSQL: the holder of a
    session advisory lock on its own connection (released by the server when the process dies)."""

    def __init__(self, archive: Archive) -> None:
        self._url = archive.location if archive.dialect == "postgresql" else None
        self._conn: Any = None
        self.is_leader = self._url is None

    def refresh(self) -> bool:
        if self._url is None:
            return True
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self.is_leader = False
                self._conn = psycopg.connect(self._url, autocommit=True)
            if self.is_leader:
                self._conn.execute("SELECT 1")
            else:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
                self.is_leader = bool(row and row[0])
        except psycopg.Error as exc:
            log.warning("leader check failed: %s", exc)
            self.is_leader = False
            with contextlib.suppress(psycopg.Error):
                if self._conn is not None:
                    self._conn.close()
            self._conn = None
        return self.is_leader

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
