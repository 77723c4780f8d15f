"""Key management: create shore and vessel key pairs, register and revoke vessels at the shore.

``seabridge keys ...`` commands are thin shells over these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from common.keyfiles import read_public, write_keypair
from firmware_profiles import load_profile

from .archive import Archive

IMEI = re.compile(r"^[0-9]{15}$")
MOBILE_ID = re.compile(r"^[0-9A-Z]{15}$")


@dataclass(frozen=True)
class ShoreKeys:
    link_secret: Path
    link_public: Path
    crew_secret: Path
    crew_public: Path


def create_shore_keys(folder: Path) -> ShoreKeys:
    """The shore's link key pair (vessels seal frames to it) and crew key pair (opens crew content).
    Keep ``crew.key`` where only the hotline service can read it."""
    write_keypair(folder / "shore.key")
    write_keypair(folder / "crew.key")
    return ShoreKeys(folder / "shore.key", folder / "shore.pub", folder / "crew.key", folder / "crew.pub")


def create_vessel_key(folder: Path, name: str = "vessel") -> tuple[Path, Path]:
    secret = folder / f"{name}.key"
    write_keypair(secret)
    return secret, secret.with_suffix(".pub")


def validate_modem_id(modem_id: str) -> str:
    """Iridium IMEI (15 digits) or Inmarsat mobile ID (15 upper-case letters and digits)."""
    if not (IMEI.match(modem_id) or MOBILE_ID.match(modem_id)):
        raise ValueError("modem id must be a 15-digit IMEI or a 15-character IDP mobile ID")
    return modem_id


def register_vessel(
    archive_path: Path,
    modem_id: str,
    name: str,
    public_key: str | Path,
    fleet: str = "default",
    profile: str = "iridium-9603",
    network: str = "iridium-directip",
) -> None:

    load_profile(profile)  # refuse unknown profiles now rather than at the first frame
    archive = Archive(archive_path)
    try:
        archive.register_vessel(
            validate_modem_id(modem_id), name, bytes(read_public(public_key)), fleet, profile, network
        )
    finally:
        archive.close()


def revoke_vessel(archive_path: Path, modem_id: str) -> bool:
    archive = Archive(archive_path)
    try:
        return archive.revoke_vessel(modem_id)
    finally:
        archive.close()
