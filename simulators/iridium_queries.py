"""The Iridium emulator's query and registration commands: identity, signal, indicators, time, registration.

This module owns the answers of the commands that read or set the modem's identity and radio state
without moving a message: ``+CGSN``/``+GSN``, ``+CGMM``, ``+CGMI``, ``+CGMR``, ``+CSQ``, ``+CSQF``,
``+CIER`` with its ``+CIEV`` indicator events, ``-MSSTM``, ``+SBDREG``, ``+SBDDET``, ``+SBDAREG``,
``+CRIS`` and ``+CULK``. ``IridiumQueries`` is mixed into ``IridiumModemEmulator``, which owns the
state these commands read; message buffers, data modes and sessions stay in ``iridium_modem``.

It must not do I/O or read a clock: time comes in as ``now``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from simulators.at_emulator import decimal
from simulators.link_model import MO_NO_NETWORK_SERVICE

if TYPE_CHECKING:
    from simulators.iridium_modem import IridiumModemEmulator

#: ``[+-]DDMM.MMM,[+-]dddmm.mmm``, the location argument of ``+SBDIX`` and ``+SBDREG``.
LOCATION_RE = re.compile(r"^[+-]?\d{4}\.\d{1,3},[+-]?\d{5}\.\d{1,3}$")

#: Iridium system time counts 90 ms ticks from the epoch of the era the network broadcasts: era 2
#: (2014-05-11 14:23:55 UTC) until the re-epoch, era 3 (2025-02-14 18:14:17 UTC) after it. The
#: network switched in January 2026 (Iridium re-epoch bulletin, MetOcean/Ground Control notices).
IRIDIUM_EPOCH_ERA2 = datetime(2014, 5, 11, 14, 23, 55, tzinfo=UTC).timestamp()
IRIDIUM_EPOCH_ERA3 = datetime(2025, 2, 14, 18, 14, 17, tzinfo=UTC).timestamp()
ERA3_BROADCAST_FROM = datetime(2026, 1, 14, tzinfo=UTC).timestamp()


def iridium_ticks(now: float) -> int:
    """The ``-MSSTM`` tick count the network broadcasts at ``now``."""
    epoch = IRIDIUM_EPOCH_ERA3 if now >= ERA3_BROADCAST_FROM else IRIDIUM_EPOCH_ERA2
    return int((now - epoch) / IRIDIUM_TICK_S) & 0xFFFFFFFF


IRIDIUM_TICK_S = 0.090
#: ``-MSGEO`` reports ECEF coordinates on a sphere of this radius (km).
EARTH_RADIUS_KM = 6376.0

_CGMR_LINES = (
    "Call Processor Version: TA19002",
    "Modem DSP Version: 1.7 svn: 2358",
    "DBB Version: 0x0001 (ASIC)",
    "RFA Version: 0x0007 (SRFA2)",
    "NVM Version: KVS",
    "Hardware Version: BOOT07d2/9603NrevDE/04/RAW0d",
    "BOOT Version: TA19002 (rev exported)",
)


class CommandRefused(Exception):
    """The current command line answers ERROR."""


@dataclass
class Indicators:
    enabled: bool = False
    signal: bool = False
    service: bool = False
    last_signal: int | None = None
    last_service: int | None = None
    held: dict[int, int] = field(default_factory=dict)


class IridiumQueries:
    """Command handlers mixed into ``IridiumModemEmulator``; each returns True when OK is due now."""

    def _no_args(self: IridiumModemEmulator, arg: str) -> None:
        if arg not in ("", "=?"):
            raise CommandRefused

    def _cmd_imei(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            self._info(self.imei)
        return True

    def _cmd_model(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            name = "IRIDIUM 9523 Family" if "9523" in self.profile.name else "IRIDIUM 9600 Family"
            self._info(f"{name} SBD Transceiver")
        return True

    def _cmd_manufacturer(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            self._info("Iridium")
        return True

    def _cmd_revision(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            for line in _CGMR_LINES:
                self._info(line)
        return True

    def _signal(self: IridiumModemEmulator, now: float) -> int:
        return self.link.signal(now) if self.radio_on else 0

    def _cmd_csq(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        if arg == "=?":
            self._info("+CSQ:(0-5)")
        elif arg == "":
            self._info(f"+CSQ:{self._signal(now)}")
        else:
            raise CommandRefused
        return True

    def _cmd_csqf(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        if arg == "=?":
            self._info("+CSQF:(0-5)")
        elif arg == "":
            self._info(f"+CSQF:{self._signal(now)}")
        else:
            raise CommandRefused
        return True

    def _cmd_cier(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        ind = self._indicators
        if arg == "?":
            self._info(f"+CIER:{int(ind.enabled)},{int(ind.signal)},{int(ind.service)},0")
            return True
        if arg == "=?":
            self._info("+CIER:(0-1),(0-1),(0-1),(0-1)")
            return True
        values = _int_list(arg, 1, 4)
        if any(v not in (0, 1) for v in values):
            raise CommandRefused
        values += [0] * (4 - len(values))
        ind.enabled, ind.signal, ind.service = bool(values[0]), bool(values[1]), bool(values[2])
        ind.last_signal = ind.last_service = None
        self._result(True)
        self._poll_indicators(now)
        return False

    def _poll_indicators(self: IridiumModemEmulator, now: float) -> None:
        ind = self._indicators
        bars = self._signal(now)
        self._indicator_due = self.link.next_change(now)
        events: list[tuple[int, int]] = []
        if ind.signal and bars != ind.last_signal:
            events.append((0, bars))
        service = int(bars > 0)
        if ind.service and service != ind.last_service:
            events.append((1, service))
        ind.last_signal, ind.last_service = bars, service
        for indicator, value in events:
            if self.in_command_mode:
                self._info(f"+CIEV:{indicator},{value}")
            else:
                ind.held[indicator] = value

    def _cmd_msstm(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg:
            return True
        if self._signal(now) == 0:
            self._info("-MSSTM: no network service")
        else:
            self._info(f"-MSSTM: {iridium_ticks(now):x}")  # hex without leading zeros
        return True

    def _cmd_msgeo(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        """``-MSGEO``: the network's estimate of where the unit is, as ECEF x, y, z in km with 4 km
        resolution, and the Iridium time of the estimate; zeros before the first registration."""
        self._no_args(arg)
        if arg:
            return True
        where = self.network_position if self.registered else None
        if where is None:
            self._info("-MSGEO: 0,0,0,0")
            return True
        lat, lon = (math.radians(v) for v in where)
        xyz = (
            EARTH_RADIUS_KM * math.cos(lat) * math.cos(lon),
            EARTH_RADIUS_KM * math.cos(lat) * math.sin(lon),
            EARTH_RADIUS_KM * math.sin(lat),
        )
        x, y, z = (4 * round(v / 4) for v in xyz)
        self._info(f"-MSGEO: {x},{y},{z},{iridium_ticks(now):x}")
        return True

    def _cmd_sbdreg(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        if arg == "?":
            self._info(f"+SBDREG:{2 if self.registered else 0}")
            return True
        if arg == "=?":
            return True
        if arg and not (arg.startswith("=") and LOCATION_RE.match(arg[1:])):
            raise CommandRefused
        if self._signal(now) == 0:
            self._info(f"+SBDREG:{2 if self.registered else 0},{MO_NO_NETWORK_SERVICE}")
        else:
            self.registered = True
            self._info("+SBDREG:2,0")
        return True

    def _cmd_sbddet(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            self.registered = False
            self._info("+SBDDET:0,0")
        return True

    def _cmd_sbdareg(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        if arg not in ("=0", "=1", "=2", "?", "=?"):
            raise CommandRefused
        if arg == "?":
            self._info("+SBDAREG:0")
        return True

    def _cmd_cris(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        self._no_args(arg)
        if arg == "":
            self._info(f"+CRIS:0,{self.sri}")
        return True

    def _cmd_culk(self: IridiumModemEmulator, arg: str, now: float) -> bool:
        if arg != "?":
            raise CommandRefused
        self._info("+CULK:0")
        return True


#: The commands this module answers, by name (merged into the emulator's command table).
QUERY_HANDLERS: dict[str, Callable[[IridiumModemEmulator, str, float], bool]] = {
    "+CGSN": IridiumQueries._cmd_imei,
    "+GSN": IridiumQueries._cmd_imei,
    "+CGMM": IridiumQueries._cmd_model,
    "+GMM": IridiumQueries._cmd_model,
    "+CGMI": IridiumQueries._cmd_manufacturer,
    "+GMI": IridiumQueries._cmd_manufacturer,
    "+CGMR": IridiumQueries._cmd_revision,
    "+GMR": IridiumQueries._cmd_revision,
    "+CSQ": IridiumQueries._cmd_csq,
    "+CSQF": IridiumQueries._cmd_csqf,
    "+CIER": IridiumQueries._cmd_cier,
    "-MSSTM": IridiumQueries._cmd_msstm,
    "-MSGEO": IridiumQueries._cmd_msgeo,
    "+SBDREG": IridiumQueries._cmd_sbdreg,
    "+SBDDET": IridiumQueries._cmd_sbddet,
    "+SBDAREG": IridiumQueries._cmd_sbdareg,
    "+CRIS": IridiumQueries._cmd_cris,
    "+CULK": IridiumQueries._cmd_culk,
}


def _int_list(arg: str, low: int, high: int) -> list[int]:
    if not arg.startswith("="):
        raise CommandRefused
    parts = arg[1:].split(",")
    if not low <= len(parts) <= high or not all(decimal(p.strip()) for p in parts):
        raise CommandRefused
    return [int(p) for p in parts]
