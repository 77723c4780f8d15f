"""Shore relay configuration (``shore.toml``). Every option, its default and unit: docs/deploy.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wire.records import KIND_CLASS, PriorityClass

from .archive import REJECTED_MAX_BYTES, REJECTED_MAX_ROWS
from .directip_server import LOOPBACK_ONLY
from .webhook import JWT_MAX_LIFETIME_S


@dataclass
class KeysSection:
    shore_secret: Path = Path("keys/shore.key")  # link key: vessels seal frames to its public half
    crew_secret: Path = Path("keys/crew.key")  # opens crew content sealed on the vessels


@dataclass
class ArchiveSection:
    path: Path = Path("var/shore/archive.sqlite3")  # SQLite archive and relay state
    url: str = ""  # postgresql://user@host:port/db ; when set, used instead of the SQLite file


@dataclass
class RetentionSection:
    """How long rows are kept, in seconds; 0 keeps them forever."""

    crew_s: float = 30 * 86400.0  # crew messages and replies (content is personal: keep briefly)
    catch_s: float = 0.0  # catch and sustainability records
    telemetry_s: float = 365 * 86400.0
    distress_s: float = 0.0  # SOS records
    control_s: float = 365 * 86400.0  # epochs and notices
    frames_s: float = 90 * 86400.0  # raw frames as received
    rejected_max_bytes: int = REJECTED_MAX_BYTES  # rejected frames kept per vessel (bytes); more are
    rejected_max_rows: int = REJECTED_MAX_ROWS  # counted and logged, not stored (rows per vessel)
    check_s: float = 3600.0  # how often retention runs

    def by_kind(self) -> dict[int, float]:
        """Retention seconds per record kind from the per-class settings (0 = keep forever)."""
        per_class = {
            PriorityClass.DISTRESS: self.distress_s,
            PriorityClass.CONTROL: self.control_s,
            PriorityClass.CREW: self.crew_s,
            PriorityClass.CATCH: self.catch_s,
            PriorityClass.TELEMETRY: self.telemetry_s,
        }
        return {int(kind): per_class[cls] for kind, cls in KIND_CLASS.items() if per_class[cls] > 0}


@dataclass
class BrokerSection:
    url: str = ""  # mqtt://[user:pass@]host:port ; empty = start the embedded broker
    embedded_listen: str = "127.0.0.1:1883"  # where the embedded broker listens (port 0 = any free port)
    client_id: str = "seabridge-relay"
    message_expiry_s: int = 7 * 86400  # MQTT 5 message expiry on up/ and evt/ messages (0 = none)


@dataclass
class DirectIpSection:
    mo_listen: str = "127.0.0.1:10800"  # DirectIP MO server: the Iridium gateway connects here ("" = off)
    # source networks/addresses allowed to deliver MO (the Iridium gateway's; [] = anyone)
    mo_accept_from: list[str] = field(default_factory=lambda: list(LOOPBACK_ONLY))
    mo_max_connections: int = 64  # open MO connections in all
    mo_max_per_peer: int = 8  # open MO connections per source address
    mo_idle_timeout_s: float = 10.0  # until the first byte, and between bytes, of an MO message
    mt_host: str = "127.0.0.1"  # DirectIP MT server of the Iridium gateway (or an emulator)
    mt_port: int = 10801
    read_timeout_s: float = 30.0  # whole MO message in; whole MT confirmation back


@dataclass
class WebhookSection:
    listen: str = "0.0.0.0:8091"  # RockBLOCK webhook HTTP listener ("" = off)
    path: str = "/rockblock/mo"  # URL path the service POSTs to
    jwt_public_key: Path | None = None  # PEM public key that signs the JWT field (RS256)
    jwt_max_lifetime_s: float = JWT_MAX_LIFETIME_S  # a JWT must carry exp, within this of iat and now
    shared_secret: str = ""  # secret expected in ?token= or the X-Seabridge-Token header
    rate_per_s: float = 20.0  # requests per second per client address
    burst: float = 50.0  # bucket size per client address
    global_rate_per_s: float = 200.0  # all clients together
    max_body_bytes: int = 16384
    answer_within_s: float = 2.5  # answer 503 (retry) if the pipeline has not stored it by then


@dataclass
class RockBlockSection:
    mt_url: str = "https://rockblock.rock7.com/rockblock/MT"  # RockBLOCK MT API
    username: str = ""
    password: str = ""
    timeout_s: float = 20.0


@dataclass
class IdpSection:
    base_url: str = ""  # IDP messaging API base, e.g. .../RestMessages.svc/ ("" = no polling, no IDP MT)
    access_id: str = ""
    password: str = ""
    poll_s: float = 20.0  # how often get_return_messages is called
    start_utc: str = ""  # first high-water mark when none is stored ("" = now)
    timeout_s: float = 20.0
    max_response_bytes: int = 4 * 1024 * 1024


@dataclass
class MetricsSection:
    listen: str = "127.0.0.1:9108"  # /metrics (Prometheus) and /health ("" = off)


@dataclass
class AlertsSection:
    silent_after_s: float = 6 * 3600.0  # alert when a vessel was not heard from for this long (0 = off)
    check_s: float = 60.0


@dataclass
class ScaleSection:
    # all | ingest | worker | duties (all but "all" need PostgreSQL and an external broker). "duties": only
    # the singleton duties (outbox, MT frames, alerts, retention), so that workers spend their CPU on frames.
    role: str = "all"
    worker_id: str = ""  # unique per process; empty = host name + process id
    share_group: str = "seabridge-relay"  # MQTT 5 shared subscription group of the workers
    claim_after_s: float = 30.0  # a worker processes frames queued longer than this that no one took
    batch_frames: int = 200  # group commit: frames processed in one transaction, at most
    batch_wait_s: float = 0.01  # group commit: how long a frame waits for others to share its transaction


@dataclass
class DashboardSection:
    listen: str = "127.0.0.1:8090"  # host:port of the dashboard and hotline desk
    username: str = "hotline"  # HTTP basic credentials for the dashboard
    password: str = ""  # empty = no dashboard login (only sensible on localhost)
    secure_cookies: bool = False  # mark the session cookies Secure: set it when TLS (a proxy) serves the dashboard


@dataclass
class LinkSection:
    resend_after_s: float = 1.5 * 86400.0  # resend an MT unit no cumulative ack covered after this long
    mt_poll_s: float = 5.0  # how often the MT loop looks for traffic when nothing wakes it
    cumulative_ack_s: float = 86400.0  # a cumulative ack goes alone (not on a reply) only after this long
    resend_request_s: float = 3600.0  # a missing MO frame is asked for alone after this long
    fragment_timeout_s: float = 7 * 86400.0  # drop a partial record whose newest fragment is older
    fragment_max_bytes: int = 65536  # partial records kept per vessel, bytes


@dataclass
class ShoreConfig:
    keys: KeysSection = field(default_factory=KeysSection)
    archive: ArchiveSection = field(default_factory=ArchiveSection)
    retention: RetentionSection = field(default_factory=RetentionSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    directip: DirectIpSection = field(default_factory=DirectIpSection)
    webhook: WebhookSection = field(default_factory=WebhookSection)
    rockblock: RockBlockSection = field(default_factory=RockBlockSection)
    idp: IdpSection = field(default_factory=IdpSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    alerts: AlertsSection = field(default_factory=AlertsSection)
    scale: ScaleSection = field(default_factory=ScaleSection)
    dashboard: DashboardSection = field(default_factory=DashboardSection)
    link: LinkSection = field(default_factory=LinkSection)
