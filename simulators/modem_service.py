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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from common.clock import Clock, SystemClock
from firmware_profiles import ModemProfile, ProfileError, load_profile

from .iridium_modem import DEFAULT_IMEI
from .link_model import LinkModel
from .pty_modem import ByteModem, PtyModem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModemServiceOptions:
    """What ``seabridge sim modem`` was asked for; the one place its options are read."""

    profile: str
    link: str
    seed: int | None = None
    imei: str = DEFAULT_IMEI
    mobile_id: str = ""
    directip_mo: str = ""
    rockblock_webhook: str = ""
    bind: str = "127.0.0.1"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ModemServiceOptions:
        return cls(
            profile=args.profile,
            link=args.link,
            seed=getattr(args, "seed", None),
            imei=getattr(args, "imei", None) or DEFAULT_IMEI,
            mobile_id=getattr(args, "mobile_id", None) or "",
            directip_mo=getattr(args, "directip_mo", None) or "",
            rockblock_webhook=getattr(args, "rockblock_webhook", None) or "",
            bind=getattr(args, "bind", None) or "127.0.0.1",
        )


class _NetworkSide(Protocol):
    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


@dataclass
class _Served:
    """A built emulator, its network side, and the endpoint lines to print once both run."""

    emulator: ByteModem
    network: _NetworkSide
    lines: Callable[[], list[str]]


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


def _build_iridium(
    opts: ModemServiceOptions, profile: ModemProfile, clock: Clock, link: LinkModel
) -> _Served:
    from .iridium_modem import IridiumModemEmulator
    from .iridium_network import IridiumNetwork
    from .rockblock_network import RockBlockNetwork

    if opts.rockblock_webhook:
        rockblock = RockBlockNetwork(clock=clock, webhook_url=opts.rockblock_webhook, host=opts.bind)
        emulator = IridiumModemEmulator(profile, link, rockblock, imei=opts.imei)
        rockblock.attach(emulator)
        key_path = Path(tempfile.mkdtemp(prefix="seabridge-rockblock-")) / "rockblock-public.pem"
        key_path.write_bytes(rockblock.public_key_pem)
        return _Served(
            emulator,
            rockblock,
            lambda: [
                f"rockblock-mt: {rockblock.mt_url}",
                f"rockblock-credentials: {rockblock.username}:{rockblock.password}",
                f"rockblock-public-key: {key_path}",
            ],
        )
    shore = [_address(opts.directip_mo)] if opts.directip_mo else []
    iridium = IridiumNetwork(clock=clock, shore=shore, mt_host=opts.bind)
    emulator = IridiumModemEmulator(profile, link, iridium, imei=opts.imei)
    iridium.attach(emulator)
    return _Served(emulator, iridium, lambda: ["directip-mt: {}:{}".format(*iridium.mt_address)])


def _build_idp(opts: ModemServiceOptions, profile: ModemProfile, clock: Clock, link: LinkModel) -> _Served:
    from .idp_modem import DEFAULT_MOBILE_ID, IdpModemEmulator
    from .idp_network import IdpNetwork

    network = IdpNetwork(clock=clock, host=opts.bind)
    emulator = IdpModemEmulator(profile, link, network, mobile_id=opts.mobile_id or DEFAULT_MOBILE_ID)
    network.attach(emulator)
    return _Served(
        emulator,
        network,
        lambda: [f"api: {network.url}", f"api-credentials: {network.access_id}:{network.password}"],
    )


#: The emulator and network side for each modem family.
FAMILIES: dict[str, Callable[[ModemServiceOptions, ModemProfile, Clock, LinkModel], _Served]] = {
    "iridium-sbd": _build_iridium,
    "inmarsat-idp": _build_idp,
}


async def serve_modem(
    args: argparse.Namespace | ModemServiceOptions,
    stop: asyncio.Event,
    print_line: Callable[[str], None],
) -> int:
    """Run the emulated modem described by ``args`` until ``stop`` is set; 0 on a clean stop."""
    opts = args if isinstance(args, ModemServiceOptions) else ModemServiceOptions.from_args(args)
    profile = load_profile(opts.profile)
    build = FAMILIES.get(profile.family)
    if build is None:
        raise ProfileError(f"no emulator for modem family {profile.family!r}")
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    clock = SystemClock()
    link = LinkModel(random.Random(rng.random()), opts.link)
    log.info("link model %s, seed %d", opts.link, seed)
    served = build(opts, profile, clock, link)
    async with served.network, PtyModem(served.emulator, clock) as pty:
        print_line(f"pty: {pty.path}")
        for line in served.lines():
            print_line(line)
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
