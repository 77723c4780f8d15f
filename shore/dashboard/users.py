"""Dashboard user management for the command line (``seabridge users ...``) and the demo.

It owns the layer between the CLI and ``DashboardData``: opening the archive, reading a password
(from a file, standard input or an interactive prompt, never from the command line), and printing
results. The demo uses ``ensure_users`` to create its logins. The command-line parser itself lives in
``seabridge.cli``.
"""

from __future__ import annotations

import getpass
import secrets
import sys
import time
from pathlib import Path

from ..archive import Archive
from .auth import AuthError, Role, parse_role
from .data import DashboardData


def _read_password(password_file: Path | str | None) -> str:
    if password_file:
        return Path(password_file).read_text(encoding="utf-8").strip()
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            raise AuthError("the passwords differ")
        return first
    return sys.stdin.readline().strip()


def ensure_users(
    archive_path: Path | str, users: list[tuple[str, Role, str | None]]
) -> list[tuple[str, str]]:
    """Create (with its role and fleet, None = all fleets) or reset each user with a fresh random
    password; returns (name, password) pairs."""
    archive = Archive(archive_path)
    try:
        data = DashboardData(archive)
        out = []
        for name, role, fleet in users:
            password = secrets.token_urlsafe(12)
            if data.user(name) is None:
                data.add_user(name, role, password, fleet, time.time())
            else:
                data.set_password(name, password)
            out.append((name, password))
        return out
    finally:
        archive.close()


def manage_users(
    archive_path: Path | str,
    action: str,
    name: str = "",
    role: str = "",
    fleet: str | None = None,
    password_file: Path | str | None = None,
) -> int:
    """Run one ``seabridge users`` action (add, passwd, unlock, remove, list) and print its result;
    returns the exit status."""
    archive = Archive(archive_path)
    try:
        data = DashboardData(archive)
        if action == "add":
            user = data.add_user(name, parse_role(role), _read_password(password_file), fleet, time.time())
            print(f"added {user.name} ({user.role.value}{', fleet ' + user.fleet if user.fleet else ''})")
        elif action == "passwd":
            if not data.set_password(name, _read_password(password_file)):
                raise AuthError(f"no user {name!r}")
            print(f"password of {name} changed; its sessions are closed")
        elif action == "unlock":
            data.unlock(name)
            print(f"{name} unlocked")
        elif action == "remove":
            if not data.remove_user(name):
                raise AuthError(f"no user {name!r}")
            print(f"removed {name}")
        else:
            for u in data.users():
                print(f"{u['name']}\t{u['role']}\t{u['fleet'] or 'all fleets'}")
    except AuthError as exc:
        print(f"seabridge users: {exc}", file=sys.stderr)
        return 2
    finally:
        archive.close()
    return 0
