"""Both ends agree on codec versions: the gateway announces what it decodes (once per change), and the
shore encodes replies to a vessel only with codecs that vessel announced."""

from __future__ import annotations

from pathlib import Path

import pytest
from relay_kit import ShoreKeys, VesselSender, make_relay

from gateway.store import GatewayStore
from wire.codec import CODEC_DEFLATE, CODEC_RAW, codec_mask, decode_text, supported_codecs
from wire.items import encode_record_item, loads_one
from wire.records import Capabilities, Kind

NET = "iridium-directip"
BURMESE = "ကျွန်တော်တို့ သင့်စာကို ရရှိပါပြီ။ မကြာမီ ဖုန်းဆက်ပါမည်။"


@pytest.fixture
def shore(tmp_path: Path):
    keys = ShoreKeys(tmp_path / "keys")
    archive, relay = make_relay(tmp_path, keys)
    vessel = VesselSender(keys, "300234010000011", "Nam Chai")
    vessel.register(archive)
    yield archive, relay, vessel
    archive.close()


def _reply_codec(archive, relay, vessel_name: str, client_id: str) -> int:
    vessel = archive.vessel_by_name(vessel_name)
    rid, _ = relay.accept_reply(vessel, 1, BURMESE, "hotline", client_id, 100.0)
    (item,) = archive.query("SELECT item FROM mt_units WHERE rid = ? AND imei = ?", (rid, vessel.imei))
    record = loads_one(bytes(item[0]))
    text = record[3][1]
    assert decode_text(text) == BURMESE
    return text[0]


def test_replies_use_only_the_codecs_the_vessel_announced(shore) -> None:
    archive, relay, vessel = shore
    # Before any announcement: only the codecs every gateway decodes.
    assert _reply_codec(archive, relay, "Nam Chai", "a") in (CODEC_RAW, CODEC_DEFLATE)
    everything = Capabilities(codec_mask(supported_codecs()), "seabridge test")
    item = encode_record_item(vessel.next_rid(), int(Kind.CAPABILITIES), everything.body())
    assert relay.handle_mo(vessel.imei, vessel.next_momsn(), vessel.frame([item]), NET, 50.0) == "accepted"
    trained = _reply_codec(archive, relay, "Nam Chai", "b")
    assert trained not in (CODEC_RAW, CODEC_DEFLATE), "the trained Burmese model is shorter once announced"
    # A gateway rolled back to a build without trained models announces so; the shore follows.
    older = Capabilities(codec_mask([CODEC_RAW, CODEC_DEFLATE]))
    item = encode_record_item(vessel.next_rid(), int(Kind.CAPABILITIES), older.body())
    assert relay.handle_mo(vessel.imei, vessel.next_momsn(), vessel.frame([item]), NET, 60.0) == "accepted"
    assert _reply_codec(archive, relay, "Nam Chai", "c") in (CODEC_RAW, CODEC_DEFLATE)


def test_the_gateway_announces_its_codecs_once_per_change(tmp_path: Path) -> None:
    store = GatewayStore(tmp_path / "g.sqlite3", 300)
    body = Capabilities(codec_mask(supported_codecs())).body()
    assert store.accept_if_changed("announced_codecs", "7", Kind.CAPABILITIES, body, 1.0) is not None
    store.close()
    store = GatewayStore(tmp_path / "g.sqlite3", 300)  # a restart with the same build: nothing new
    assert store.accept_if_changed("announced_codecs", "7", Kind.CAPABILITIES, body, 2.0) is None
    assert store.accept_if_changed("announced_codecs", "15", Kind.CAPABILITIES, body, 3.0) is not None
    assert len([q for q in store.pending_units(4.0, 60.0)]) == 2
    store.close()
