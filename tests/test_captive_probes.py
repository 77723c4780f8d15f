"""OS captivity probes and the RFC 8908 Captive Portal API, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from captive_support import page, sign_in

ANDROID = ["/generate_204", "/gen_204"]
APPLE = ["/hotspot-detect.html", "/library/test/success.html"]
WINDOWS = ["/connecttest.txt", "/ncsi.txt"]


@pytest.mark.parametrize("path", ANDROID + APPLE + WINDOWS + ["/redirect", "/some/other/site"])
def test_every_probe_is_sent_to_the_page_so_the_sign_in_sheet_opens(tmp_path: Path, path: str) -> None:
    with page(tmp_path) as (_gw, url), httpx.Client(base_url=url) as web:
        r = web.get(path, headers={"Host": "connectivitycheck.gstatic.com"})
        # Android: anything but 204 in 200-399; Apple: anything but "Success"; Windows: not the test text.
        assert r.status_code == 302
        assert r.headers["location"].startswith("http://127.0.0.1:")
        assert r.headers["location"].endswith("/")
        landing = web.get(r.headers["location"])
        assert landing.status_code == 200 and 'action="/login"' in landing.text


def test_android_probe_answers_204_once_the_phone_signed_in_under_the_release_policy(tmp_path: Path) -> None:
    with page(tmp_path, probe_policy="release") as (_gw, url), httpx.Client(base_url=url) as web:
        assert web.get("/generate_204").status_code == 302
        assert json.loads(web.get("/api/captive").content)["captive"] is True
        sign_in(web, "deckhand")
        r = web.get("/generate_204")
        assert r.status_code == 204 and r.content == b""
        assert json.loads(web.get("/api/captive").content)["captive"] is False


def test_online_policy_answers_each_os_as_it_expects_from_the_open_internet(tmp_path: Path) -> None:
    with page(tmp_path, probe_policy="online") as (_gw, url), httpx.Client(base_url=url) as web:
        assert web.get("/generate_204").status_code == 204
        apple = web.get("/hotspot-detect.html")
        assert apple.status_code == 200 and "<TITLE>Success</TITLE>" in apple.text
        assert web.get("/connecttest.txt").text == "Microsoft Connect Test"
        assert web.get("/ncsi.txt").text == "Microsoft NCSI"


def test_captive_portal_api_serves_rfc8908_json(tmp_path: Path) -> None:
    with page(tmp_path) as (_gw, url), httpx.Client(base_url=url) as web:
        r = web.get("/api/captive", headers={"Accept": "application/captive+json"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/captive+json")
        assert "no-store" in r.headers["cache-control"] and "private" in r.headers["cache-control"]
        body = json.loads(r.content)
        assert body["captive"] is True
        assert body["user-portal-url"] == f"{url}/"
        assert isinstance(body["venue-info-url"], str)
        assert body["can-extend-session"] is False


def test_portal_url_can_be_fixed_for_dhcp_option_114(tmp_path: Path) -> None:
    with page(tmp_path, portal_url="http://seabridge.lan") as (_gw, url), httpx.Client(base_url=url) as web:
        assert json.loads(web.get("/api/captive").content)["user-portal-url"] == "http://seabridge.lan/"
        assert web.get("/generate_204").headers["location"] == "http://seabridge.lan/"


def test_the_deployed_dhcp_option_114_names_the_api_the_page_serves(tmp_path: Path) -> None:
    conf = (Path(__file__).resolve().parent.parent / "deploy" / "dnsmasq.conf").read_text()
    line = next(x for x in conf.splitlines() if x.startswith("dhcp-option=114,"))
    api_url = line.split(",", 1)[1].strip().strip('"')
    path = "/" + api_url.split("://", 1)[1].split("/", 1)[1]
    with page(tmp_path) as (_gw, url), httpx.Client(base_url=url) as web:
        r = web.get(path)
        assert r.headers["content-type"].startswith("application/captive+json")
