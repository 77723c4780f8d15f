"""Gateway configuration (``gateway.toml``). Every option, its default and unit: docs/gateway.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wire.versions import DEFAULT_VERSION as DEFAULT_WIRE_VERSION


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
    secure_cookies: bool = False  # mark the session cookies Secure: set it when the page is served over TLS


@dataclass
class LinkSection:
    # resend a unit no acknowledgement covered this long after its last send (above the shore's
    # cumulative_ack_s, so the shore's daily cumulative ack arrives first)
    resend_after_s: float = 1.5 * 86400.0
    wire_version: int = DEFAULT_WIRE_VERSION  # over-the-air format sent (docs/wire-format.md); both decode
    # fallback mailbox check when no session of any kind happened for this long (0 = never); ring
    # alerts fetch replies, and every MO session collects what waits ashore for free
    mailbox_check_s: float = 8 * 3600.0
    cumulative_ack_s: float = 86400.0  # our cumulative ack of shore frames opens a session alone after this
    resend_request_s: float = 3600.0  # a missing shore frame is asked for alone after this long
    answer_ring_alerts: bool = True  # open a session (SBDIXA) when the network rings
    ring_hold_s: float = 1800.0  # a ring waits this long for a session going anyway (0 = answer at once)
    idle_poll_s: float = 1.0  # how often the daemon looks at its queue when nothing wakes it
    message_lifetime_s: float = 30 * 86400.0  # a crew message not delivered by then expires
    fill_target: float = 0.9  # open a session for a frame at least this full (fraction of the MO limit)
    sos_retry_max_s: float = 30.0  # while an SOS waits, never back off longer than this after a failure


@dataclass
class LatencySection:
    """How long the oldest waiting record of each class may wait for a fuller frame (seconds)."""

    distress_s: float = 0.0
    control_s: float = 600.0
    crew_s: float = 300.0
    catch_s: float = 3600.0
    telemetry_s: float = 4 * 3600.0


@dataclass
class BudgetSection:
    unit: str = "currency"  # "bytes" (billed bytes), "units" (billing units) or "currency" (profile's)
    day_limit: float = 0.0  # per UTC day, in ``unit``; 0 = no daily budget
    month_limit: float = 0.0  # per UTC month, in ``unit``; 0 = no monthly budget


@dataclass
class AllowanceSection:
    day_bytes: int = 0  # per crew member per UTC day, item bytes; 0 = unlimited
    month_bytes: int = 0  # per crew member per UTC month, item bytes; 0 = unlimited
    guaranteed_day_bytes: int = 0  # per member per day, sent even with the vessel budget spent


@dataclass
class WindowSpec:
    cron: str = "0 22 * * *"  # start times, a five-field crontab expression in UTC
    duration_s: float = 8 * 3600.0  # length of each occurrence


@dataclass
class WindowsSection:
    quiet: list[WindowSpec] = field(default_factory=list)  # no sessions except SOS
    cheap: list[WindowSpec] = field(default_factory=list)  # send whatever is due, however full


@dataclass
class TelemetrySection:
    interval_s: float = 3600.0  # a position report rides along on a frame going anyway at most this often
    solo_interval_s: float = 6 * 3600.0  # one is queued this long after the last anyway (0 = never)
    gps_port: str = ""  # serial device of an NMEA 0183 GPS; empty = none
    gps_baud: int = 4800  # NMEA 0183 standard rate
    position_max_age_s: float = 3600.0  # ignore fixes older than this


@dataclass
class MetricsSection:
    listen: str = "127.0.0.1:9108"  # host:port for /metrics and /health; empty = off
    stale_after_s: float = 6 * 3600.0  # /health reports unhealthy after this long without a good session


@dataclass
class GatewayConfig:
    vessel: VesselSection = field(default_factory=VesselSection)
    keys: KeysSection = field(default_factory=KeysSection)
    modem: ModemSection = field(default_factory=ModemSection)
    captive: CaptiveSection = field(default_factory=CaptiveSection)
    link: LinkSection = field(default_factory=LinkSection)
    latency: LatencySection = field(default_factory=LatencySection)
    budget: BudgetSection = field(default_factory=BudgetSection)
    allowance: AllowanceSection = field(default_factory=AllowanceSection)
    windows: WindowsSection = field(default_factory=WindowsSection)
    telemetry: TelemetrySection = field(default_factory=TelemetrySection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
