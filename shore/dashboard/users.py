"""Dashboard user management for the command line (``seabridge users ...``) and the demo.

It owns the thin shell between the CLI and ``DashboardData``: opening the archive, reading a password
(from a file, standard input or an interactive prompt, never from the command line), and printing
results. The demo uses ``ensure_users`` to create its logins.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
import time
from pathlib import Path

from ..archive import Archive
from .auth import AuthError, Role, parse_role
from .data import DashboardData


def _read_password(args: argparse.Namespace) -> str:
    if getattr(args, "password_file", None):
        return Path(args.password_file).read_text(encoding="utf-8").strip()
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            raise AuthError("the passwords differ")
        return first
    return sys.stdin.readline().strip()


def ensure_users(archive_path: Path | str, users: list[tuple[str, Role]]) -> list[tuple[str, str]]:
    """Create or reset each user with a fresh random password; returns (name, password) pairs."""
    archive = Archive(archive_path)
    try:
        data = DashboardData(archive)
        out = []
        for name, role in users:
            password = secrets.token_urlsafe(12)
            if data.user(name) is None:
                data.add_user(name, role, password, None, time.time())
            else:
                data.set_password(name, password)
            out.append((name, password))
        return out
    finally:
        archive.close()


def cmd_users(args: argparse.Namespace) -> int:
    archive = Archive(args.archive)
    try:
        data = DashboardData(archive)
        if args.sub == "add":
            role = parse_role(args.role)
            user = data.add_user(args.name, role, _read_password(args), args.fleet, time.time())
            print(f"added {user.name} ({user.role.value}{', fleet ' + user.fleet if user.fleet else ''})")
        elif args.sub == "passwd":
            if not data.set_password(args.name, _read_password(args)):
                raise AuthError(f"no user {args.name!r}")
            print(f"password of {args.name} changed; its sessions are closed")
        elif args.sub == "unlock":
            data.unlock(args.name)
            print(f"{args.name} unlocked")
        elif args.sub == "remove":
            if not data.remove_user(args.name):
                raise AuthError(f"no user {args.name!r}")
            print(f"removed {args.name}")
        else:
            for u in data.users():
                print(f"{u['name']}\t{u['role']}\t{u['fleet'] or 'all fleets'}")
    except AuthError as exc:
        print(f"seabridge users: {exc}", file=sys.stderr)
        return 2
    finally:
        archive.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = sub.add_parser("users", help="Dashboard users: add, list, change passwords, unlock, remove.")
    cmds = users.add_subparsers(dest="sub", required=True)
    add = cmds.add_parser(
        "add",
        help="Add a dashboard user. The password is read from --password-file, else standard input, "
        "else asked for twice; it must be at least 10 characters long.",
    )
    add.add_argument("--name", required=True, help="User name: 1 to 32 of a-z, 0-9, '.', '_', '-'.")
    add.add_argument("--role", required=True, help="administrator, hotline, owner (fleet owner) or viewer.")
    add.add_argument("--fleet", help="Restrict the user to this fleet (required for owners; default: all).")
    passwd = cmds.add_parser("passwd", help="Set a new password for a user and close its sessions.")
    passwd.add_argument("--name", required=True, help="The user.")
    for p in (add, passwd):
        p.add_argument("--password-file", help="Read the password from this file (first line).")
    unlock = cmds.add_parser("unlock", help="Clear a user's failed logins and lock.")
    unlock.add_argument("--name", required=True, help="The user.")
    remove = cmds.add_parser("remove", help="Remove a user and close its sessions.")
    remove.add_argument("--name", required=True, help="The user.")
    cmds.add_parser("list", help="List users with their role and fleet.")
    for p in (add, passwd, unlock, remove, cmds.choices["list"]):
        p.add_argument(
            "--archive", required=True, help="The shore archive (SQLite file or postgresql:// URL)."
        )
        p.set_defaults(func=cmd_users)
