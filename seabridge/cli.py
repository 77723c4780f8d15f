"""The ``seabridge`` command: one subcommand per role, each a thin shell over a library call."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
from pathlib import Path
from typing import Any

from common.clock import SystemClock
from firmware_profiles import profile_names


def _archive_location(value: str) -> Path | str:
    """An archive is a SQLite file path or a postgresql:// URL (kept as text)."""
    return value if value.startswith(("postgresql://", "postgres://")) else Path(value)


def _print_endpoints(endpoints: dict[str, str]) -> None:
    for name, address in endpoints.items():
        print(f"{name}: {address}", flush=True)


def _run_until_signal(main: Any, stop: Any) -> int:
    """Run coroutine ``main``; SIGTERM/SIGINT call ``stop()`` for an orderly shutdown."""

    async def runner() -> Any:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        return await main

    result = asyncio.run(runner())
    return int(result or 0)


def cmd_gateway_run(args: argparse.Namespace) -> int:
    from common.config import load_toml
    from firmware_profiles import load_profile
    from gateway.config import GatewayConfig
    from gateway.daemon import GatewayDaemon
    from gateway.modem import open_modem

    config = load_toml(GatewayConfig, args.config)
    base = args.config.parent if args.config else Path(".")
    clock = SystemClock()
    modem = open_modem(config.modem.port, load_profile(config.modem.profile), clock)
    daemon = GatewayDaemon(config, clock, random.Random(), modem=modem, base_dir=base)
    return _run_until_signal(daemon.run(on_ready=_print_endpoints), daemon.stop)


def cmd_shore_run(args: argparse.Namespace) -> int:
    from common.config import load_toml
    from shore.config import ShoreConfig
    from shore.service import ShoreService

    config = load_toml(ShoreConfig, args.config)
    base = args.config.parent if args.config else Path(".")
    service = ShoreService(config, SystemClock(), base_dir=base)
    return _run_until_signal(service.run(on_ready=_print_endpoints), service.stop)


def cmd_demo(args: argparse.Namespace) -> int:
    from simulators.demo import Demo

    demo = Demo(
        args.data,
        link=args.link,
        smoke=args.smoke,
        messages=args.messages,
        seed=args.seed,
        profile=args.profile,
    )
    return _run_until_signal(demo.run(print_line=lambda line: print(line, flush=True)), demo.stop)


def cmd_sim_modem(args: argparse.Namespace) -> int:
    from firmware_profiles import profile_names
    from simulators.modem_service import run_modem_service

    if args.list_profiles:
        for name in profile_names():
            print(name)
        return 0
    return run_modem_service(args)


def cmd_sim_fleet(args: argparse.Namespace) -> int:
    import json

    from simulators.fleet import FleetConfig, run_fleet

    cfg = FleetConfig(
        vessels=args.vessels,
        crew=args.crew,
        days=args.days,
        seed=args.seed,
        profile=args.profile,
        link=args.link,
        daily_budget_bytes=args.daily_budget_bytes,
    )
    report = run_fleet(cfg, args.report, show_progress=not args.quiet)
    summary = {
        k: report[k]
        for k in (
            "wall_seconds",
            "bytes_per_vessel_day",
            "billing_units_per_vessel_day",
            "mo_frame_fill",
            "expired",
        )
    }
    summary["delivery_ratio"] = {k: v["delivery_ratio"] for k, v in report["classes"].items()}
    summary["cost"] = {k: report["cost"][k] for k in ("units_per_crew_message", "units_per_vessel_day",
                                                     "floor_units_per_vessel_day", "by_cause_per_vessel_day")}
    print(json.dumps(summary, ensure_ascii=False))
    print(f"report: {args.report / 'report.json'}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from shore import registry as keys

    if args.keys_command == "shore":
        made = keys.create_shore_keys(args.dir)
        print(f"shore link key: {made.link_secret} (public: {made.link_public})")
        print(f"crew key: {made.crew_secret} (public: {made.crew_public})")
    elif args.keys_command == "vessel":
        secret, public = keys.create_vessel_key(args.dir, args.name)
        print(f"vessel key: {secret} (public: {public})")
    elif args.keys_command == "register":
        keys.register_vessel(
            args.archive, args.modem_id, args.name, args.public, args.fleet, args.profile, args.network
        )
        print(f"registered {args.name} ({args.modem_id})")
    elif args.keys_command == "revoke":
        if not keys.revoke_vessel(args.archive, args.modem_id):
            print(f"no vessel with modem id {args.modem_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.modem_id}")
    return 0


def cmd_captain(args: argparse.Namespace) -> int:
    from common.config import load_toml, resolve
    from firmware_profiles import load_profile
    from gateway import captains
    from gateway.catchlog import CatchInputError
    from gateway.config import GatewayConfig
    from gateway.store import open_store

    config = load_toml(GatewayConfig, args.config) if args.config else GatewayConfig()
    if args.data is not None:
        data_dir = args.data
    else:
        data_dir = resolve(args.config.parent if args.config else Path("."), config.vessel.data_dir)
    store = open_store(data_dir, load_profile(config.modem.profile).mo_frame_limit)
    clock = SystemClock()
    try:
        if args.sub == "list":
            for name in captains.captain_names(store, clock):
                print(name)
            return 0
        pin = _read_pin(args.pin_file) if args.pin_file else None
        if args.sub == "add":
            pin = captains.add_captain(store, clock, args.name, pin)
        else:
            pin = captains.set_pin(store, clock, args.name, pin)
    except captains.CaptainExists as exc:
        print(f"{exc}; give it a new PIN with: seabridge captain pin", file=sys.stderr)
        return 1
    except KeyError:
        print(f"no captain named {args.name!r}", file=sys.stderr)
        return 1
    except CatchInputError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"captain-login: {args.name.strip()}:{pin}")
    return 0


def _read_pin(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines else ""


def cmd_estimate(args: argparse.Namespace) -> int:
    import json

    from common.estimate import estimate

    for line in sys.stdin:
        text = line.rstrip("\r\n")
        if not text:
            continue
        result = estimate(text, args.lang, args.profile, direction=args.direction)
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from shore.dashboard.users import manage_users

    return manage_users(
        args.archive,
        args.sub,
        name=getattr(args, "name", ""),
        role=getattr(args, "role", ""),
        fleet=getattr(args, "fleet", None),
        password_file=getattr(args, "password_file", None),
    )


def cmd_archive_export(args: argparse.Namespace) -> int:
    from shore.archive_export import ExportError, export_table

    try:
        if args.output is None:
            count = export_table(args.archive, args.table, args.format, sys.stdout)
        else:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                count = export_table(args.archive, args.table, args.format, out)
    except ExportError as exc:
        print(f"seabridge archive export: {exc}", file=sys.stderr)
        return 2
    print(f"{count} rows of {args.table} exported", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seabridge", description="Satellite connectivity at sea for fishing vessels."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Log every decision (level DEBUG).")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_run,
        _add_demo,
        _add_sim,
        _add_keys,
        _add_captain,
        _add_estimate,
        _add_users,
        _add_archive,
    ):
        add(sub)
    return parser


def _add_run(sub: Any) -> None:
    gw = sub.add_parser("gateway", help="The onboard daemon.").add_subparsers(dest="sub", required=True)
    gw_run = gw.add_parser("run", help="Run the gateway daemon: captive page, queue and modem sessions.")
    gw_run.add_argument("--config", type=Path, help="Gateway TOML config file (default: built-in defaults).")
    gw_run.set_defaults(func=cmd_gateway_run)

    sh = sub.add_parser("shore", help="The shore relay.").add_subparsers(dest="sub", required=True)
    sh_run = sh.add_parser(
        "run", help="Run the shore relay: DirectIP ingest, MQTT, MT delivery and dashboard."
    )
    sh_run.add_argument("--config", type=Path, help="Shore TOML config file (default: built-in defaults).")
    sh_run.set_defaults(func=cmd_shore_run)


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="Run shore, emulated satellite network and modem, and one vessel on this machine."
    )
    demo.add_argument(
        "--data",
        type=Path,
        default=None,
        help="Folder for keys and databases, kept when the demo stops (default: a new temporary folder, "
        "removed when the demo stops).",
    )
    demo.add_argument(
        "--link",
        default="open-sea",
        choices=["perfect", "open-sea", "port", "storm"],
        help="Link model of the emulated satellite link (default: open-sea).",
    )
    demo.add_argument(
        "--smoke",
        action="store_true",
        help="Send a handful of messages each way headless, print a summary and exit 0 only if "
        "every message arrived exactly once and the vessel's position reached the shore.",
    )
    demo.add_argument(
        "--messages", type=int, default=5, help="Messages each way in --smoke mode (default: 5)."
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Seed of the link model and the vessel's track; the demo prints the one it used "
        "(default: random).",
    )
    demo.add_argument(
        "--profile",
        default="iridium-9603",
        choices=profile_names(),
        help="Modem profile of the vessel, Iridium or Inmarsat IDP (default: iridium-9603).",
    )
    demo.set_defaults(func=cmd_demo)


def _add_sim(sub: Any) -> None:
    sim = sub.add_parser("sim", help="Simulators.").add_subparsers(dest="sub", required=True)
    modem = sim.add_parser("modem", help="Run an emulated modem on a pseudo-terminal with its network side.")
    modem.add_argument(
        "--profile", default="iridium-9603", help="Firmware profile name (default: iridium-9603)."
    )
    modem.add_argument(
        "--link",
        default="perfect",
        choices=["perfect", "open-sea", "port", "storm"],
        help="Link model (default: perfect: every session succeeds).",
    )
    modem.add_argument(
        "--directip-mo",
        default=None,
        metavar="HOST:PORT",
        help="Push MO messages by DirectIP to this shore address (default: keep them in memory).",
    )
    modem.add_argument("--imei", default="300234010000001", help="IMEI of the emulated modem.")
    modem.add_argument("--seed", type=int, default=None, help="Seed of the link model (default: random).")
    modem.add_argument(
        "--rockblock-webhook",
        default=None,
        metavar="URL",
        help="Iridium only: deliver MO messages RockBLOCK-style, by HTTP POST to this URL, and offer the "
        "RockBLOCK MT API instead of DirectIP (default: DirectIP).",
    )
    modem.add_argument(
        "--mobile-id",
        default=None,
        help="IDP only: mobile ID of the emulated modem (default: 01097623SKYFDA1).",
    )
    modem.add_argument(
        "--bind", default="127.0.0.1", help="Address the MT server or API listens on (default: 127.0.0.1)."
    )
    modem.add_argument("--list-profiles", action="store_true", help="List the profile names and exit.")
    modem.set_defaults(func=cmd_sim_modem)
    fleet = sim.add_parser(
        "fleet",
        help="Simulate a fleet in simulated time: real gateways and relay, emulated link; write a report.",
    )
    fleet.add_argument("--vessels", type=int, default=10, help="Number of vessels (default: 10).")
    fleet.add_argument("--crew", type=int, default=20, help="Crew members per vessel (default: 20).")
    fleet.add_argument("--days", type=float, default=3.0, help="Simulated days (default: 3).")
    fleet.add_argument(
        "--seed", type=int, default=1, help="Seed; the same seed gives the same run (default: 1)."
    )
    fleet.add_argument("--profile", default="iridium-9603", help="Modem profile (default: iridium-9603).")
    fleet.add_argument(
        "--link",
        default="open-sea",
        choices=["perfect", "open-sea", "port", "storm"],
        help="Link model (default: open-sea).",
    )
    fleet.add_argument(
        "--daily-budget-bytes",
        type=float,
        default=None,
        help="Report budget adherence against this many bytes per vessel-day (default: none).",
    )
    fleet.add_argument("--report", type=Path, required=True, help="Folder for report.json and the SVG plots.")
    fleet.add_argument("--quiet", action="store_true", help="No progress bar.")
    fleet.set_defaults(func=cmd_sim_fleet)


def _add_keys(sub: Any) -> None:
    keys = sub.add_parser("keys", help="Create keys; register and revoke vessels.").add_subparsers(
        dest="keys_command", required=True
    )
    k_shore = keys.add_parser("shore", help="Create the shore link key pair and the crew key pair in DIR.")
    k_shore.add_argument("--dir", type=Path, required=True)
    k_vessel = keys.add_parser("vessel", help="Create a vessel key pair NAME.key / NAME.pub in DIR.")
    k_vessel.add_argument("--dir", type=Path, required=True)
    k_vessel.add_argument("--name", default="vessel")
    k_reg = keys.add_parser(
        "register", help="Register a vessel's modem id and public key in the shore archive."
    )
    k_reg.add_argument(
        "--archive",
        type=_archive_location,
        required=True,
        help="Shore archive SQLite file or postgresql:// URL.",
    )
    k_reg.add_argument("--modem-id", required=True, help="Iridium IMEI or Inmarsat mobile ID.")
    k_reg.add_argument("--name", required=True, help="Vessel name (unique).")
    k_reg.add_argument("--public", required=True, help="Vessel public key file or base64.")
    k_reg.add_argument("--fleet", default="default", help="Fleet the vessel belongs to (default: default).")
    k_reg.add_argument("--profile", default="iridium-9603", help="Modem profile (default: iridium-9603).")
    k_reg.add_argument(
        "--network",
        default="iridium-directip",
        choices=["iridium-directip", "rockblock", "inmarsat-idp"],
        help="How replies reach the vessel: DirectIP MT, the RockBLOCK MT API or IDP submit_messages "
        "(default: iridium-directip).",
    )
    k_rev = keys.add_parser("revoke", help="Revoke a vessel: its frames are refused from now on.")
    k_rev.add_argument("--archive", type=_archive_location, required=True)
    k_rev.add_argument("--modem-id", required=True)
    for p in (k_shore, k_vessel, k_reg, k_rev):
        p.set_defaults(func=cmd_keys)


def _add_estimate(sub: Any) -> None:
    est = sub.add_parser(
        "estimate",
        help="Read crew messages, one per line, on standard input; print one JSON object per line with "
        "record_bytes, frame_bytes and credits.",
    )
    est.add_argument(
        "--lang", default=None, choices=["my", "km", "th", "en"], help="Language hint (default: detect)."
    )
    est.add_argument(
        "--profile",
        default="iridium-9603",
        help="Modem profile for frame size and billing (default: iridium-9603).",
    )
    est.add_argument(
        "--direction",
        default="mo",
        choices=["mo", "mt"],
        help="mo: crew message to shore; mt: reply from shore to a crew member (default: mo).",
    )
    est.set_defaults(func=cmd_estimate)


def _add_users(sub: Any) -> None:
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


def _add_archive(sub: Any) -> None:
    archive = sub.add_parser("archive", help="Read the shore archive.").add_subparsers(
        dest="sub", required=True
    )
    export = archive.add_parser(
        "export",
        help="Write one table of a SQLite archive as CSV (with a header row) or a JSON array; BLOBs as base64.",
    )
    export.add_argument("--archive", type=Path, required=True, help="The shore archive (SQLite file).")
    export.add_argument("--table", required=True, help="The table, e.g. vessels, records, events.")
    export.add_argument("--format", required=True, choices=["csv", "json"], help="csv or json.")
    export.add_argument("--output", type=Path, default=None, help="Write here (default: standard output).")
    export.set_defaults(func=cmd_archive_export)


def _add_captain(sub: Any) -> None:
    captain = sub.add_parser(
        "captain", help="Captain accounts of the catch log on the vessel: add, new PIN, list."
    ).add_subparsers(dest="sub", required=True)
    add = captain.add_parser(
        "add",
        help="Add a captain and print its login as captain-login: NAME:PIN (a generated PIN "
        "unless --pin-file is given).",
    )
    pin = captain.add_parser("pin", help="Give a captain a new PIN (printed), close its sessions, unlock it.")
    listing = captain.add_parser("list", help="List the captains.")
    for p in (add, pin):
        p.add_argument("--name", required=True, help="Captain's sign-in name, 1 to 32 characters.")
        p.add_argument(
            "--pin-file",
            type=Path,
            help="Read the PIN (6 to 12 digits) from this file's first line instead of generating one.",
        )
    for p in (add, pin, listing):
        where = p.add_mutually_exclusive_group()
        where.add_argument(
            "--data",
            type=Path,
            help="The gateway's data folder ([vessel] data_dir, the one holding gateway.sqlite3).",
        )
        where.add_argument(
            "--config",
            type=Path,
            help="Gateway TOML config file; its [vessel] data_dir is "
            "used (default: built-in defaults, var/gateway).",
        )
        p.set_defaults(func=cmd_captain)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose
        else logging.INFO
        if args.command not in ("demo", "sim")
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
