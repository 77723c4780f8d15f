"""The dashboard's people: users (scrypt password hashes, lockout), sessions (stored as digests) and
the audit log, in the dashboard's own tables of the archive.

It checks passwords and lockouts but not permissions (``auth.User.can`` does) and reads no clock:
callers pass ``now``. ``data.DashboardData`` inherits these methods and creates the tables.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from ..archive import Archive
from .auth import (
    DUMMY_HASH,
    AuthError,
    LockoutPolicy,
    Role,
    Session,
    User,
    check_password,
    check_username,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)

log = logging.getLogger("shore.dashboard")


class DashboardAccounts:
    archive: Archive
    lockout: LockoutPolicy

    # --- users ------------------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password: str, fleet: str | None, now: float) -> User:
        name = check_username(name)
        check_password(password)
        if role == Role.OWNER and not fleet:
            raise AuthError("a fleet owner needs --fleet")
        pw = hash_password(password)
        with self.archive.tx() as db:
            if db.execute("SELECT 1 FROM dash_users WHERE name = ?", (name,)).fetchone():
                raise AuthError(f"user {name!r} exists")
            db.execute(
                "INSERT INTO dash_users (name, role, fleet, pw, created) VALUES (?, ?, ?, ?, ?)",
                (name, role.value, fleet or None, pw, now),
            )
        return User(name, role, fleet or None)

    def set_password(self, name: str, password: str) -> bool:
        check_password(password)
        pw = hash_password(password)
        with self.archive.tx() as db:
            cur = db.execute(
                "UPDATE dash_users SET pw = ?, failures = 0, locked_until = NULL WHERE name = ?", (pw, name)
            )
            changed = cur.rowcount > 0
            db.execute("DELETE FROM dash_sessions WHERE name = ?", (name,))
        return changed

    def remove_user(self, name: str) -> bool:
        with self.archive.tx() as db:
            cur = db.execute("DELETE FROM dash_users WHERE name = ?", (name,))
            db.execute("DELETE FROM dash_sessions WHERE name = ?", (name,))
            return cur.rowcount > 0

    def users(self) -> list[dict[str, Any]]:
        rows = self.archive.query(
            "SELECT name, role, fleet, failures, locked_until, disabled, created FROM dash_users ORDER BY name"
        )
        keys = ("name", "role", "fleet", "failures", "locked_until", "disabled", "created")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def user(self, name: str) -> User | None:
        rows = self.archive.query(
            "SELECT role, fleet FROM dash_users WHERE name = ? AND disabled = 0", (name,)
        )
        if not rows:
            return None
        try:
            return User(name, Role(rows[0][0]), rows[0][1])
        except ValueError:
            return None

    def authenticate(self, name: str, password: str, now: float) -> tuple[User | None, str]:
        """(user, "ok") or (None, "bad" | "locked"). Unknown names cost as much time as known ones."""
        try:
            name = check_username(name)
        except AuthError:
            verify_password(password, DUMMY_HASH)
            return None, "bad"
        rows = self.archive.query(
            "SELECT role, fleet, pw, failures, locked_until, disabled FROM dash_users WHERE name = ?", (name,)
        )
        if not rows:
            verify_password(password, DUMMY_HASH)
            return None, "bad"
        role, fleet, pw, failures, locked_until, disabled = rows[0]
        if locked_until is not None and now < float(locked_until):
            verify_password(password, DUMMY_HASH)
            return None, "locked"
        if disabled or not verify_password(password, pw):
            count, until = self.lockout.after_failure(int(failures), now)
            with self.archive.tx() as db:
                db.execute(
                    "UPDATE dash_users SET failures = ?, locked_until = ? WHERE name = ?",
                    (count, until, name),
                )
            return None, "locked" if until is not None else "bad"
        with self.archive.tx() as db:
            db.execute("UPDATE dash_users SET failures = 0, locked_until = NULL WHERE name = ?", (name,))
        return User(name, Role(role), fleet), "ok"

    def unlock(self, name: str) -> None:
        with self.archive.tx() as db:
            db.execute("UPDATE dash_users SET failures = 0, locked_until = NULL WHERE name = ?", (name,))

    # --- sessions ---------------------------------------------------------------------------------

    def open_session(self, user: User, now: float) -> tuple[str, str]:
        """A new session: (cookie token, CSRF token). Only a digest of the cookie is stored."""
        token, csrf = new_token(), new_token()
        with self.archive.tx() as db:
            db.execute(
                "INSERT INTO dash_sessions (digest, name, csrf, created, seen) VALUES (?, ?, ?, ?, ?)",
                (token_digest(token), user.name, csrf, now, now),
            )
        return token, csrf

    def session(self, token: str, now: float, idle_s: float, max_age_s: float) -> Session | None:
        if not token or len(token) > 128:
            return None
        digest = token_digest(token)
        rows = self.archive.query(
            "SELECT name, csrf, created, seen FROM dash_sessions WHERE digest = ?", (digest,)
        )
        if not rows:
            return None
        name, csrf, created, seen = rows[0]
        user = self.user(name)
        if user is None or now - float(seen) > idle_s or now - float(created) > max_age_s:
            self.close_session(token)
            return None
        if now - float(seen) > 30:
            with self.archive.tx() as db:
                db.execute("UPDATE dash_sessions SET seen = ? WHERE digest = ?", (now, digest))
        return Session(user, csrf, float(created))

    def close_session(self, token: str) -> None:
        with self.archive.tx() as db:
            db.execute("DELETE FROM dash_sessions WHERE digest = ?", (token_digest(token),))

    # --- audit ------------------------------------------------------------------------------------

    def audit(
        self, user: User | None, action: str, target: str, now: float, detail: str = "", addr: str = ""
    ) -> None:
        with self.archive.tx() as db:
            db.execute(
                "INSERT INTO dash_audit (id, at, name, role, action, target, detail, addr) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f"{now:017.6f}-{secrets.token_hex(6)}",
                    now,
                    user.name if user else "-",
                    user.role.value if user else "-",
                    action[:64],
                    target[:200],
                    detail[:500],
                    addr[:64],
                ),
            )

    def audit_log(self, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT at, name, role, action, target, detail, addr FROM dash_audit"
        args: tuple[Any, ...] = ()
        if action:
            sql += " WHERE action = ?"
            args = (action,)
        rows = self.archive.query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        keys = ("at", "name", "role", "action", "target", "detail", "addr")
        return [dict(zip(keys, r, strict=True)) for r in rows]
