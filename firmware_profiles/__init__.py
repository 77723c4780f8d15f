"""Modem firmware profiles: one TOML data file per modem model.

This package is the only source of modem numbers in Seabridge (frame limits, baud, timings, billing).
Code asks ``load_profile(name)`` and never writes such numbers as literals.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


class ProfileError(ValueError):
    """A profile file is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class Limits:
    mo_max_bytes: int
    mt_max_bytes: int
    text_command_max_chars: int
    mt_queue_max: int
    sin: int | None = None
    frame_prefix_bytes: int = 0  # bytes of each message the network's own header takes (IDP: the SIN byte)


@dataclass(frozen=True)
class SerialSettings:
    baud: int
    flow_control: str
    data_bits: int
    parity: str
    stop_bits: int


@dataclass(frozen=True)
class Timings:
    command_timeout_s: float
    signal_timeout_s: float
    write_data_timeout_s: float
    session_timeout_s: float
    session_typical_s: float
    registration_holdoff_s: float
    power_on_s: float
    poll_interval_s: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    schedule_s: tuple[float, ...]
    jitter: bool
    fatal_mo_status: tuple[int, ...]
    jitter_steps: int | None = None  # leading steps waited a random time up to the step (None: all)
    status_wait_s: dict[int, float] = field(default_factory=dict)  # MO status -> documented wait
    fatal_hold_s: float = 3600.0  # wait after a status that is not to be retried


@dataclass(frozen=True)
class Billing:
    """How the airtime provider bills one message."""

    unit_name: str
    unit_bytes: int
    minimum_bytes: int
    mailbox_check_units: int
    currency: str
    cost_per_unit: float

    def units(self, nbytes: int) -> int:
        """Billing units for one message of ``nbytes`` bytes (0 bytes = a mailbox check)."""
        if nbytes < 0:
            raise ValueError("negative size")
        if nbytes == 0:
            return self.mailbox_check_units
        billable = max(nbytes, self.minimum_bytes)
        return math.ceil(billable / self.unit_bytes)

    def cost(self, nbytes: int) -> float:
        return self.units(nbytes) * self.cost_per_unit


@dataclass(frozen=True)
class ModemProfile:
    name: str
    family: str
    model: str
    limits: Limits
    serial: SerialSettings
    at: dict[str, Any]
    timings: Timings
    retry: RetryPolicy
    billing: Billing

    @property
    def mo_max_bytes(self) -> int:
        return self.limits.mo_max_bytes

    @property
    def mt_max_bytes(self) -> int:
        return self.limits.mt_max_bytes

    @property
    def mo_frame_limit(self) -> int:
        """Largest Seabridge frame in one mobile-originated message."""
        return self.limits.mo_max_bytes - self.limits.frame_prefix_bytes

    @property
    def mt_frame_limit(self) -> int:
        """Largest Seabridge frame in one mobile-terminated message."""
        return self.limits.mt_max_bytes - self.limits.frame_prefix_bytes


def _build(data: dict[str, Any], origin: str) -> ModemProfile:
    try:
        retry = data["retry"]
        profile = ModemProfile(
            name=str(data["name"]),
            family=str(data["family"]),
            model=str(data["model"]),
            limits=Limits(**data["limits"]),
            serial=SerialSettings(**data["serial"]),
            at=dict(data["at"]),
            timings=Timings(**data["timings"]),
            retry=RetryPolicy(
                schedule_s=tuple(float(s) for s in retry["schedule_s"]),
                jitter=bool(retry["jitter"]),
                fatal_mo_status=tuple(int(s) for s in retry["fatal_mo_status"]),
                jitter_steps=None if retry.get("jitter_steps") is None else int(retry["jitter_steps"]),
                status_wait_s={int(k): float(v) for k, v in retry.get("status_wait_s", {}).items()},
                fatal_hold_s=float(retry.get("fatal_hold_s", 3600.0)),
            ),
            billing=Billing(**data["billing"]),
        )
    except (KeyError, TypeError) as exc:
        raise ProfileError(f"{origin}: missing or unknown field: {exc}") from exc
    if profile.timings.registration_holdoff_s > 0:  # MO status 36: wait since the last registration
        profile.retry.status_wait_s.setdefault(36, profile.timings.registration_holdoff_s)
    if profile.limits.mo_max_bytes <= 0 or profile.limits.mt_max_bytes <= 0:
        raise ProfileError(f"{origin}: frame limits must be positive")
    if profile.billing.unit_bytes <= 0:
        raise ProfileError(f"{origin}: billing.unit_bytes must be positive")
    return profile


def profile_names() -> list[str]:
    """Names of the profiles shipped with Seabridge, sorted."""
    files = resources.files(__package__)
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str | Path) -> ModemProfile:
    """Load a shipped profile by name (``iridium-9603``) or any profile file by path.
    Shipped profiles are read once and cached (profiles are immutable)."""
    if isinstance(name_or_path, str) and not name_or_path.endswith(".toml"):
        return _shipped_profile(name_or_path)
    return _read_profile(name_or_path)


@functools.cache
def _shipped_profile(name: str) -> ModemProfile:
    return _read_profile(name)


def _read_profile(name_or_path: str | Path) -> ModemProfile:
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        raw = path.read_bytes()
        origin = str(path)
    else:
        resource = resources.files(__package__) / f"{name_or_path}.toml"
        if not resource.is_file():
            raise ProfileError(f"unknown modem profile {name_or_path!r}; known: {', '.join(profile_names())}")
        raw = resource.read_bytes()
        origin = str(name_or_path)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{origin}: not valid TOML: {exc}") from exc
    return _build(data, origin)
