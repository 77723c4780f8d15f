"""Gateway configuration (``gateway.toml``). Every option, its default and unit: docs/gateway.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class VesselSection:
    name: str = "vessel"  # shown on the captive page; the shore knows the vessel by modem IMEI
    data_dir: Path = Path("var/gateway")  # SQLite store lives here


@dataclass
class KeysSection:
    vessel_secret: Path = Path("keys/vessel.key")  # this vessel's X25519 secret (mode 0600)
    shore_public: str = "keys/shore.pub"  # shore link public key: a file path or base64
    crew_public: str = "keys/crew.pub"  # shore crew-content public key: a file path or base64


@dataclass
class ModemSection:
    port: str = "/dev/ttyUSB0"  # serial device (or pty path)
    profile: str = "iridium-9603"  # firmware profile name or path to a profile TOML


@dataclass
class CaptiveSection:
    listen: str = "0.0.0.0:8080"  # host:port of the captive page


@dataclass
class LinkSection:
    resend_after_s: float = 1800.0  # resend a unit the shore has not acknowledged after this long
    mailbox_check_s: float = 3600.0  # open a session at least this often to collect replies and acks
    answer_ring_alerts: bool = True  # open a session (SBDIXA) when the network rings
    idle_poll_s: float = 1.0  # how often the daemon looks at its queue when nothing wakes it
    message_lifetime_s: float = 30 * 86400.0  # a crew message not delivered by then expires


@dataclass
class GatewayConfig:
    vessel: VesselSection = field(default_factory=VesselSection)
    keys: KeysSection = field(default_factory=KeysSection)
    modem: ModemSection = field(default_factory=ModemSection)
    captive: CaptiveSection = field(default_factory=CaptiveSection)
    link: LinkSection = field(default_factory=LinkSection)
