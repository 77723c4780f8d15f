"""Shore relay configuration (``shore.toml``). Every option, its default and unit: docs/shore.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class KeysSection:
    shore_secret: Path = Path("keys/shore.key")  # link key: vessels seal frames to its public half
    crew_secret: Path = Path("keys/crew.key")  # opens crew content sealed on the vessels


@dataclass
class ArchiveSection:
    path: Path = Path("var/shore/archive.sqlite3")  # SQLite archive and relay state


@dataclass
class BrokerSection:
    url: str = ""  # mqtt://[user:pass@]host:port ; empty = start the embedded broker
    embedded_listen: str = "127.0.0.1:1883"  # where the embedded broker listens (port 0 = any free port)
    client_id: str = "seabridge-relay"


@dataclass
class DirectIpSection:
    mo_listen: str = "0.0.0.0:10800"  # DirectIP MO server: the Iridium gateway connects here
    mt_host: str = "127.0.0.1"  # DirectIP MT server of the Iridium gateway (or an emulator)
    mt_port: int = 10801
    read_timeout_s: float = 30.0


@dataclass
class DashboardSection:
    listen: str = "127.0.0.1:8090"  # host:port of the dashboard and hotline desk
    username: str = "hotline"  # HTTP basic credentials for the dashboard
    password: str = ""  # empty = no dashboard login (only sensible on localhost)


@dataclass
class LinkSection:
    resend_after_s: float = 1800.0  # resend an MT unit the vessel has not acknowledged after this long
    mt_poll_s: float = 5.0  # how often the MT loop looks for traffic when nothing wakes it
    ack_delay_s: float = 0.0  # wait this long after an MO frame before sending its ack, to batch acks


@dataclass
class ShoreConfig:
    keys: KeysSection = field(default_factory=KeysSection)
    archive: ArchiveSection = field(default_factory=ArchiveSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    directip: DirectIpSection = field(default_factory=DirectIpSection)
    dashboard: DashboardSection = field(default_factory=DashboardSection)
    link: LinkSection = field(default_factory=LinkSection)
