"""``seabridge sim modem``: one emulated modem on a pseudo-terminal with its network side, until SIGTERM.

This module owns the wiring of the command: it loads the firmware profile, builds the link model
(seeded), the network side for the profile's family and the modem emulator, puts the emulator on a
pty and prints, one per line on standard output (flushed):

* Iridium profiles: ``pty: /dev/pts/N`` and ``directip-mt: HOST:PORT`` (the DirectIP MT server); MO
  messages go by DirectIP to ``--directip-mo HOST:PORT`` when given. With ``--rockblock-webhook URL``
  the vessel uses the RockBLOCK-style service instead: MO messages are POSTed to that URL and the lines
  are ``pty:``, ``rockblock-mt: URL``, ``rockblock-credentials: USER:PASSWORD`` and
  ``rockblock-public-key: PATH`` (the PEM key that verifies the ``JWT`` field).
* IDP profiles: ``pty: /dev/pts/N``, ``api: URL`` (IDP Messaging API base URL) and
  ``api-credentials: ACCESS_ID:PASSWORD``.

It must not contain modem or network behaviour (the emulators and network classes do) and must not
read randomness from anywhere but the seeded ``random.Random``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from common.clock import Clock, SystemClock
from firmware_profiles import ModemProfile, ProfileError, load_profile

from .link_model import LinkModel
from .pty_modem import PtyModem

log = logging.getLogger(__name__)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


async def serve_modem(
    args: argparse.Namespace,
    stop: asyncio.Event,
    print_line: Callable[[str], None],
) -> int:
    """Run the emulated modem described by ``args`` until ``stop`` is set; 0 on a clean stop."""
    profile = load_profile(args.profile)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    clock = SystemClock()
    link = LinkModel(random.Random(rng.random()), args.link)
    log.info("link model %s, seed %d", args.link, seed)
    if profile.family == "iridium-sbd":
        return await _serve_iridium(args, profile, clock, link, stop, print_line)
    if profile.family == "inmarsat-idp":
        return await _serve_idp(args, profile, clock, link, stop, print_line)
    raise ProfileError(f"no emulator for modem family {profile.family!r}")


async def _serve_iridium(
    args: argparse.Namespace,
    profile: ModemProfile,
    clock: Clock,
    link: LinkModel,
    stop: asyncio.Event,
    print_line: Callable[[str], None],
) -> int:
    from .iridium_modem import IridiumModemEmulator
    from .iridium_network import IridiumNetwork

    webhook = getattr(args, "rockblock_webhook", None)
    mt_host = getattr(args, "bind", None) or "127.0.0.1"
    if webhook:
        from .rockblock_network import RockBlockNetwork

        network = RockBlockNetwork(clock=clock, webhook_url=webhook, host=mt_host)
        emulator = IridiumModemEmulator(profile, link, network, imei=args.imei)
        network.attach(emulator)
        key_dir = Path(tempfile.mkdtemp(prefix="seabridge-rockblock-"))
        key_path = key_dir / "rockblock-public.pem"
        key_path.write_bytes(network.public_key_pem)
        async with network, PtyModem(emulator, clock) as pty:
            print_line(f"pty: {pty.path}")
            print_line(f"rockblock-mt: {network.mt_url}")
            print_line(f"rockblock-credentials: {network.username}:{network.password}")
            print_line(f"rockblock-public-key: {key_path}")
            await stop.wait()
        return 0
    shore = [_address(args.directip_mo)] if args.directip_mo else []
    iridium = IridiumNetwork(clock=clock, shore=shore, mt_host=mt_host)
    emulator = IridiumModemEmulator(profile, link, iridium, imei=args.imei)
    iridium.attach(emulator)
    async with iridium, PtyModem(emulator, clock) as pty:
        host, port = iridium.mt_address
        print_line(f"pty: {pty.path}")
        print_line(f"directip-mt: {host}:{port}")
        await stop.wait()
    return 0


async def _serve_idp(
    args: argparse.Namespace,
    profile: ModemProfile,
    clock: Clock,
    link: LinkModel,
    stop: asyncio.Event,
    print_line: Callable[[str], None],
) -> int:
    from .idp_modem import DEFAULT_MOBILE_ID, IdpModemEmulator
    from .idp_network import IdpNetwork

    mobile_id = getattr(args, "mobile_id", None) or DEFAULT_MOBILE_ID
    network = IdpNetwork(clock=clock, host=getattr(args, "bind", None) or "127.0.0.1")
    emulator = IdpModemEmulator(profile, link, network, mobile_id=mobile_id)
    network.attach(emulator)
    async with network, PtyModem(emulator, clock) as pty:
        print_line(f"pty: {pty.path}")
        print_line(f"api: {network.url}")
        print_line(f"api-credentials: {network.access_id}:{network.password}")
        await stop.wait()
    return 0


def run_modem_service(args: argparse.Namespace) -> int:
    """Entry point of ``seabridge sim modem``: serve until SIGTERM or SIGINT."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve_modem(args, stop, lambda line: print(line, flush=True))

    try:
        return asyncio.run(main())
    except (ProfileError, ValueError, OSError) as exc:
        log.error("sim modem: %s", exc)
        return 2
