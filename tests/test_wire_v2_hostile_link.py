"""Wire format v2 over the hostile link: drops, duplicates, reordering and truncation in both
directions still end with every record ashore exactly once, with crew messages in frames sealed under
the crew epoch (whose EPOCH record may arrive after them) and each member's handle sent once."""

from __future__ import annotations

from gateway_world import PROFILE, ShoreRecords, scaled_timing
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule
from test_gateway_stateful import LossyLink

from common.keyfiles import read_public, read_secret
from firmware_profiles import load_profile
from gateway.link import VesselLink
from gateway.store import GatewayStore
from wire.codec import encode_text
from wire.crypto import CrewEpoch, link_key
from wire.records import Epoch, Kind
from wire.v2.crew import FrameEpoch, seal_crew, seal_member
from wire.versions import wire_format

RESEND_S = 600.0


class CrewSealedLossyLink(LossyLink):
    FILL_SLACK = 3

    def __init__(self) -> None:
        super().__init__()
        self._open_v2()
        self.epoch = CrewEpoch.start(1, read_public(self.dir / "crew.pub"))
        epoch_rid = self.store.accept(
            Kind.EPOCH, lambda _r: Epoch(1, self.epoch.public_bytes).body(), self.now
        )
        self.accepted[epoch_rid] = int(Kind.EPOCH)
        self.frame_epoch = FrameEpoch(1, self.epoch.key, epoch_rid)
        self.announced: set[int] = set()

    def _open_v2(self) -> None:
        """The gateway's store and link in wire format v2 (its own file beside the v1 one)."""
        self.store.close()
        prof = load_profile(PROFILE)
        self.store = GatewayStore(
            self.dir / "gateway-v2.sqlite3", wire_format(2).min_capacity(prof.mo_max_bytes), 2
        )
        key = link_key(read_secret(self.dir / "vessel.key"), read_public(self.dir / "shore.pub"))
        self.link = VesselLink(
            self.store,
            key,
            prof.mo_max_bytes,
            RESEND_S,
            2,
            lambda: self.frame_epoch,
            lambda: self.now,
            scaled_timing(RESEND_S),
        )

    @rule()
    def gateway_restarts(self) -> None:
        """The v2 gateway dies and starts again on the same file (a counter block skipped)."""
        super().gateway_restarts()
        self._open_v2()

    @rule(
        kind=st.sampled_from([Kind.SOS, Kind.CATCH, Kind.TELEMETRY, Kind.CREW_MESSAGE, Kind.CREW_MESSAGE]),
        member=st.integers(1, 3),
        size=st.one_of(st.integers(1, 120), st.integers(121, 900)),
    )
    def accept(self, kind: Kind, member: int, size: int) -> None:
        if kind != Kind.CREW_MESSAGE:
            super().accept(kind, member, size)
            return
        if member not in self.announced:
            handle = f"member-{member}"
            rid = self.store.accept(
                Kind.MEMBER, lambda r: seal_member(1, self.epoch.key, r, member, handle), self.now
            )
            self.accepted[rid] = int(Kind.MEMBER)
            self.announced.add(member)
        text = "".join(chr(0x1000 + (i * 37 + size) % 90) for i in range(size))
        coded = encode_text(text)
        rid = self.store.accept(
            Kind.CREW_MESSAGE,
            lambda r: seal_crew(1, self.epoch.key, r, member, self.now, "hotline", coded),
            self.now,
            member=member,
        )
        self.accepted[rid] = int(Kind.CREW_MESSAGE)

    def teardown(self) -> None:
        archive, close = self.archive, self.archive.close
        archive.close = lambda: None  # type: ignore[method-assign]
        try:
            super().teardown()  # everything delivered, exactly once ashore
            crew = [rid for rid, kind in self.accepted.items() if kind == Kind.CREW_MESSAGE]
            published = ShoreRecords(archive).published()
            assert all(published.get(f"test-vessel:{rid}") == 1 for rid in crew), (
                "each crew message published once"
            )
        finally:
            close()


CrewSealedLossyLink.TestCase.settings = settings(
    max_examples=40, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_v2_records_arrive_exactly_once_over_a_lossy_link = CrewSealedLossyLink.TestCase
