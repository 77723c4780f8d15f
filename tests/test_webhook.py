"""RockBLOCK webhook ingest: field parsing, the RS256 JWT and shared-secret checks, rate limits and
size limits, each refusal counted; over real HTTP into the pipeline and out through Mosquitto,
idempotent on IMEI + MOMSN."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from relay_kit import Collector, RunningShore, ShoreKeys, VesselSender, metric, shore_config

from shore.webhook import Authenticator, RateLimiter, WebhookError, parse_mo

pytestmark = pytest.mark.timeout(120)

_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = _PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def form(
    imei: str,
    momsn: int,
    data: bytes,
    signer=_PRIVATE,
    *,
    now: float | None = None,
    lifetime: int | None = 600,
) -> dict[str, str]:
    fields = {
        "imei": imei,
        "serial": "12345",
        "momsn": str(momsn),
        "transmit_time": "26-11-25 10:41:50",
        "iridium_latitude": "-43.5212",
        "iridium_longitude": "172.6049",
        "iridium_cep": "3.0",
        "device_type": "ROCKBLOCK",
        "data": data.hex(),
    }
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {**fields, "iss": "Rock 7", "iat": issued}
    if lifetime is not None:
        claims["exp"] = issued + lifetime
    fields["JWT"] = jwt.encode(claims, signer, algorithm="RS256")
    return fields


def test_fields_parse_with_documented_time_format_and_ranges() -> None:
    mo = parse_mo(form("300234010000001", 12, b"\x01\x02"))
    assert (mo.imei, mo.momsn, mo.data) == ("300234010000001", 12, b"\x01\x02")
    assert mo.transmit_time == 1795603310.0  # 2026-11-25 10:41:50 UTC
    assert mo.latitude == pytest.approx(-43.5212) and mo.cep_km == 3.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("imei", "12345"),
        ("imei", "30023401000000x"),
        ("momsn", "-1"),
        ("momsn", "70000"),
        ("data", "abc"),
        ("data", "zz"),
        ("transmit_time", "2026-11-25T10:41:50"),
        ("iridium_latitude", "91"),
        ("iridium_longitude", "nan"),
    ],
)
def test_a_malformed_field_is_refused_with_a_reason(field: str, value: str) -> None:
    fields = form("300234010000001", 1, b"\x00")
    fields[field] = value
    with pytest.raises(WebhookError) as err:
        parse_mo(fields)
    assert err.value.reason == "malformed-field"


_FIELD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789²⓽١٢𝟗 .-+eE:\n", max_size=20),
    st.integers(-5, 70000).map(str),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["imei", "momsn", "data", "transmit_time", "iridium_cep", "iridium_latitude", "x"]),
        _FIELD_TEXT,
    ),
    st.sampled_from(["300234010000001", "30023401000000²", ""]),
)
def test_any_fields_parse_to_what_they_say_or_raise_a_webhook_error(fields: dict[str, str], imei: str) -> None:
    fields = {"imei": imei, **fields}
    try:
        mo = parse_mo(fields)
    except WebhookError as exc:
        assert (exc.reason, exc.status) in {("malformed-field", 400), ("oversize-frame", 413)}
        return
    assert mo.imei == fields["imei"] and mo.imei.isascii() and mo.imei.isdigit() and len(mo.imei) == 15
    assert fields["momsn"].isascii() and 0 <= mo.momsn <= 65535 and mo.momsn == int(fields["momsn"])
    assert mo.data == bytes.fromhex(fields.get("data", ""))
    for name, value in (("iridium_cep", mo.cep_km), ("iridium_latitude", mo.latitude)):
        assert (value is None) == (fields.get(name, "") == "")
        assert value is None or (fields[name].isascii() and value == float(fields[name]))


def test_the_jwt_must_be_signed_by_the_configured_key_and_match_the_form() -> None:
    auth = Authenticator(PUBLIC_PEM)
    auth.check(form("300234010000001", 1, b"\x01"), None, time.time())
    with pytest.raises(WebhookError, match="JWT invalid"):
        auth.check(form("300234010000001", 1, b"\x01", signer=_OTHER), None, time.time())
    swapped = form("300234010000001", 1, b"\x01")
    swapped["data"] = "ff"
    with pytest.raises(WebhookError, match="does not match"):
        auth.check(swapped, None, time.time())
    missing = form("300234010000001", 1, b"\x01")
    del missing["JWT"]
    with pytest.raises(WebhookError, match="JWT missing"):
        auth.check(missing, None, time.time())


def test_shared_secret_and_unconfigured_auth() -> None:
    fields = {"imei": "300234010000001"}
    Authenticator(shared_secret="s3cret").check(fields, "s3cret", time.time())
    with pytest.raises(WebhookError) as err:
        Authenticator(shared_secret="s3cret").check(fields, "guess", time.time())
    assert err.value.reason == "bad-secret"
    with pytest.raises(WebhookError) as err:
        Authenticator().check(fields, None, time.time())
    assert err.value.reason == "auth-not-configured"


def test_the_rate_limiter_refills_per_client_and_caps_everyone() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=3, global_rate_per_s=4.0)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("a", 1.0) is True
    assert [limiter.allow("b", 1.0) for _ in range(3)].count(True) >= 1
    # The global bucket (4 burst, 4/s) is nearly empty now: a third client gets little.
    assert [limiter.allow("c", 1.0) for _ in range(3)].count(True) <= 1


@pytest.fixture
def shore(tmp_path: Path, mosquitto):
    keys = ShoreKeys(tmp_path / "keys")
    (tmp_path / "rockblock.pem").write_bytes(PUBLIC_PEM)
    cfg = shore_config(tmp_path, keys, broker_url=mosquitto.url)
    cfg.webhook.jwt_public_key = tmp_path / "rockblock.pem"
    # slow refill, so the flood below meets an empty bucket however slowly a busy machine serves it
    cfg.webhook.rate_per_s, cfg.webhook.burst = 1.0, 20.0
    running = RunningShore(cfg)
    vessel = VesselSender(keys, "300234010000099", "Kingfisher", network="rockblock")
    vessel.register(running.service.archive)
    collector = Collector(mosquitto.url, "seabridge/v1/#")
    yield running, vessel, collector
    collector.stop()
    running.stop()


def test_a_signed_webhook_reaches_mqtt_once_however_often_it_is_retried(shore) -> None:
    running, v, collector = shore
    fields = form(v.imei, 41, v.frame([v.epoch_item(), v.crew_item("from the webhook")]))
    for _ in range(3):
        r = httpx.post(running.endpoints["webhook"], data=fields, timeout=5)
        assert r.status_code == 200 and r.text == "OK"
    assert collector.wait_for("/up/crew", 1)[0]["text"] == "from the webhook"
    time.sleep(0.4)
    assert len(collector.matching("/up/crew")) == 1
    link = collector.wait_for("/kingfisher/state/link", 1)[0]
    assert link["network"] == "rockblock"
    json_body = form(v.imei, 42, v.frame([v.catch_item(5)]))
    assert httpx.post(running.endpoints["webhook"], json=json_body, timeout=5).status_code == 200
    collector.wait_for("/up/catch/trip-start", 1)


def test_forged_oversized_and_flooding_requests_are_refused_and_counted(shore) -> None:
    running, v, collector = shore
    url = running.endpoints["webhook"]
    forged = form(v.imei, 50, v.frame([v.catch_item(1)]), signer=_OTHER)
    assert httpx.post(url, data=forged, timeout=5).status_code == 401
    assert httpx.post(url, content=b"imei=" + b"1" * 20000, timeout=5).status_code == 413
    assert httpx.post(
        url, content=b"{not json", headers={"content-type": "application/json"}, timeout=5
    ).status_code in (400, 401)
    async def flood() -> list[int]:  # at once, so that no refill between requests can hide the limit
        async with httpx.AsyncClient(timeout=20) as client:
            answers = await asyncio.gather(*(client.post(url, data=forged) for _ in range(60)))
        return [a.status_code for a in answers]

    codes = asyncio.run(flood())
    assert 429 in codes
    text = httpx.get(running.endpoints["metrics"], timeout=5).text
    assert metric(text, "seabridge_rejections_total", reason="bad-signature") >= 2
    assert metric(text, "seabridge_rejections_total", reason="oversize-request") == 1
    assert metric(text, "seabridge_rejections_total", reason="rate-limited") >= 1
    assert collector.matching("/up/catch/trip-start") == []
    time.sleep(1.2)  # the bucket refills: a genuine delivery is served again
    assert httpx.post(url, data=form(v.imei, 51, v.frame([v.catch_item(2)])), timeout=5).status_code == 200
    collector.wait_for("/up/catch/trip-start", 1)


UNICODE_DIGITS = ["²", "⓽", "١٢", "7²", "௭", "𝟗"]
NUMERIC_FIELDS = ["momsn", "iridium_latitude", "iridium_longitude", "iridium_cep", "transmit_time"]


@pytest.mark.parametrize("field", NUMERIC_FIELDS)
@pytest.mark.parametrize("digits", UNICODE_DIGITS)
def test_unicode_digits_in_a_numeric_field_are_a_malformed_field(field: str, digits: str) -> None:
    fields = form("300234010000001", 1, b"\x00")
    fields[field] = digits if field != "transmit_time" else f"2{digits}-11-25 10:41:50"
    with pytest.raises(WebhookError) as err:
        parse_mo(fields)
    assert (err.value.reason, err.value.status) == ("malformed-field", 400)


@pytest.mark.parametrize("value", ["12\n", " 12", "+12", "1_2", "0x1f"])
def test_momsn_is_plain_ascii_digits_only(value: str) -> None:
    fields = form("300234010000001", 1, b"\x00")
    fields["momsn"] = value
    with pytest.raises(WebhookError, match="momsn"):
        parse_mo(fields)


def test_a_jwt_that_would_never_expire_is_refused_and_iat_alone_bounds_its_life() -> None:
    auth = Authenticator(PUBLIC_PEM, max_lifetime_s=3600, leeway_s=60)
    issued = 1_800_000_000
    fields = form("300234010000001", 1, b"\x01", now=issued, lifetime=None)
    claims = {k: v for k, v in fields.items() if k != "JWT"}
    fields["JWT"] = jwt.encode(claims, _PRIVATE, algorithm="RS256")  # neither exp nor iat
    with pytest.raises(WebhookError, match="neither exp nor iat") as err:
        auth.check(fields, None, issued)
    assert err.value.status == 401
    # RockBLOCK's own tokens carry iat (and iss "Rock 7") without exp: accepted within the lifetime only
    rockblock = form("300234010000001", 1, b"\x01", now=issued, lifetime=None)
    auth.check(rockblock, None, issued + 3000)
    with pytest.raises(WebhookError) as err:
        auth.check(rockblock, None, issued + 3700)  # replayed after the lifetime
    assert err.value.reason == "expired-token"


def test_a_jwt_is_accepted_only_within_its_bounded_lifetime() -> None:
    auth = Authenticator(PUBLIC_PEM, max_lifetime_s=3600, leeway_s=60)
    issued = 1_800_000_000
    fields = form("300234010000001", 1, b"\x01", now=issued, lifetime=600)
    auth.check(fields, None, issued + 300)
    auth.check(fields, None, issued + 650)  # within the leeway after exp
    with pytest.raises(WebhookError) as err:
        auth.check(fields, None, issued + 661)  # replayed after expiry
    assert err.value.reason == "expired-token"
    forever = form("300234010000001", 1, b"\x01", now=issued, lifetime=10 * 365 * 86400)
    with pytest.raises(WebhookError, match="lifetime"):
        auth.check(forever, None, issued + 10)
    early = form("300234010000001", 1, b"\x01", now=issued + 7200, lifetime=600)
    with pytest.raises(WebhookError, match="lifetime"):
        auth.check(early, None, issued)  # issued in the future


def test_unicode_digits_and_unsigned_lifetimes_get_a_clear_answer_over_http(shore) -> None:
    running, v, collector = shore
    url = running.endpoints["webhook"]
    frame = v.frame([v.catch_item(9)])
    fields = {**form(v.imei, 60, frame), "momsn": "²"}
    fields["JWT"] = jwt.encode(
        {**{k: x for k, x in fields.items() if k != "JWT"}, "exp": int(time.time()) + 600},
        _PRIVATE,
        algorithm="RS256",
    )
    r = httpx.post(url, data=fields, timeout=5)
    assert (r.status_code, r.text) == (400, "FAILED,malformed-field")
    r = httpx.post(url, json=fields, timeout=5)
    assert r.status_code == 400
    forever = {k: x for k, x in form(v.imei, 61, frame).items() if k != "JWT"}
    forever["JWT"] = jwt.encode(forever, _PRIVATE, algorithm="RS256")  # neither exp nor iat
    r = httpx.post(url, data=forever, timeout=5)
    assert (r.status_code, r.text) == (401, "FAILED,bad-signature")
    text = httpx.get(running.endpoints["metrics"], timeout=5).text
    assert metric(text, "seabridge_rejections_total", reason="malformed-field") == 2
    assert httpx.post(url, data=form(v.imei, 62, frame), timeout=5).status_code == 200
    collector.wait_for("/up/catch/trip-start", 1)
