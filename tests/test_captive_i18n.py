"""Languages on the captive page: complete catalogues, the language choice remembered, translated
refusals, and Burmese typed in Zawgyi converted to Unicode before it is sealed and stored."""

from __future__ import annotations

import json
import re
import string
from importlib import resources
from pathlib import Path

import httpx
import pytest
from captive_support import page, sign_in

from gateway.captive import CaptiveLimits
from gateway.i18n import LANGUAGES, catalogue, is_zawgyi, pick_language, to_unicode
from wire.crypto import open_crew
from wire.items import RecordItem, decode_items
from wire.records import CrewContent, CrewMessage, Kind

GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)


def _raw(lang: str) -> dict[str, str]:
    return json.loads((resources.files("gateway.i18n") / f"{lang}.json").read_text("utf-8"))


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalogue_has_every_key_with_the_same_placeholders(lang: str) -> None:
    english, other = _raw("en"), _raw(lang)
    # Singular forms (``*_one``) are optional: a language without grammatical number has none.
    assert {k for k in other if not k.endswith("_one")} == {k for k in english if not k.endswith("_one")}
    assert all(k.removesuffix("_one") in english for k in other if k.endswith("_one"))
    for key, text in english.items():
        if key in other:
            assert _fields(other[key]) == _fields(text), key
            assert other[key].strip(), key


def test_a_count_of_one_takes_the_singular_where_the_language_has_one() -> None:
    en, th = catalogue("en"), catalogue("th")
    assert en.n("unit_credit", 1) == "credit" and en.n("unit_credit", 2) == "credits"
    assert th.n("unit_credit", 1) == th.n("unit_credit", 3) == th("unit_credit")


def test_language_is_picked_from_choice_then_browser() -> None:
    assert pick_language(None, "km") == "km"
    assert pick_language("", None, accept_language="th-TH,th;q=0.9,en;q=0.5") == "th"
    assert pick_language("xx", accept_language="fr") == "en"


def test_zawgyi_is_detected_and_converted_and_unicode_is_left_alone() -> None:
    zawgyi = "ကၽြန္ေတာ္ လစာ မရေသးပါ"
    assert is_zawgyi(zawgyi)
    assert to_unicode(zawgyi) == "ကျွန်တော် လစာ မရသေးပါ"
    for text in ("ကျွန်တော် လစာ မရသေးပါ", "hello", "ខ្ញុំ", "ฉัน"):
        assert to_unicode(text) == text


def test_a_zawgyi_message_is_stored_as_unicode(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        token = sign_in(web, "ေမာင္ေမာင္")  # a Zawgyi handle too
        r = web.post("/send", data={"s": token, "to": "hotline", "text": "ကၽြန္ေတာ္ လစာ မရေသးပါ"})
        assert r.status_code == 303
        epoch = gw.desk._epoch
        assert epoch is not None
        for unit in gw.store.pending_units(gw.clock.now(), 0):
            item = decode_items(unit.unit.item)[0]
            if isinstance(item, RecordItem) and item.kind == int(Kind.CREW_MESSAGE):
                msg = CrewMessage.from_body(item.body)
                content = CrewContent.decode(
                    open_crew(gw.crew_secret, msg.epoch, epoch.public_bytes, item.rid, msg.sealed)
                )
        assert content.text == "ကျွန်တော် လစာ မရသေးပါ"
        assert content.handle == "မောင်မောင်"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_refusals_are_translated_and_name_the_field(tmp_path: Path, lang: str) -> None:
    with page(tmp_path, GENEROUS) as (_gw, url), httpx.Client(base_url=url) as web:
        r = web.post("/login", data={"handle": "someone", "pin": "12", "l": lang})
        assert r.status_code == 400
        t = catalogue(lang)
        alert = re.search(r'role="alert" id="error">([^<]*)<', r.text)
        assert alert and t("field_pin") in alert.group(1) and t("problem_pin_format") in alert.group(1)


def test_the_language_choice_is_remembered_for_the_member(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (_gw, url):
        with httpx.Client(base_url=url) as web:
            token = sign_in(web, "polyglot")
            assert web.get("/", params={"s": token, "l": "km"}).status_code == 200
        # A new browser with no cookie: the member's stored choice still applies.
        fresh = httpx.get(f"{url}/", params={"s": token})
        assert '<html lang="km">' in fresh.text


def test_the_member_sees_the_remaining_allowance_the_daemon_reports(tmp_path: Path) -> None:
    from gateway.fairness import AllowancePolicy, allowance_state

    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        gw.desk.allowance = lambda _member: allowance_state(AllowancePolicy(2000, 30000), 500, 9000)
        token = sign_in(web, "counted")
        html = web.get("/", params={"s": token, "l": "th"}).text
        assert catalogue("th")("allowance_value", day=1500, month=21000) in html
