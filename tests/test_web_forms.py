"""The form reader's limits agree with the forms the vessel pages render: every form of the captive page
and of the catch log (each view, each event form, each correction form) is rendered, its fields are
counted as a browser would post them, and the largest must be exactly the page's limit."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import httpx
from captive_support import page, sign_in

from gateway.captive import CaptiveLimits
from gateway.captive.pages import FORM_FIELDS as CAPTIVE_FIELDS
from gateway.catchlog import CatchLog
from gateway.catchlog_web.page import FORM_FIELDS as CATCH_FIELDS
from gateway.i18n import catalogue

GENEROUS = CaptiveLimits(post_burst=1000, login_burst=1000, api_burst=1000)


class PostForms(HTMLParser):
    """Per POST form (by id or action): the names a browser sends when it is submitted with the
    button that adds the most (a named submit button adds its own name)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, set[str]] = {}
        self.buttons: dict[str, set[str]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._current = f"{a.get('action')}#{a.get('id') or len(self.forms)}"
            self.forms[self._current] = set()
            self.buttons[self._current] = set()
        elif self._current is not None and a.get("name"):
            if tag == "button":
                self.buttons[self._current].add(str(a["name"]))
            elif tag in ("input", "select", "textarea"):
                self.forms[self._current].add(str(a["name"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def counts(self) -> dict[str, int]:
        return {form: len(names) + min(1, len(self.buttons[form])) for form, names in self.forms.items()}


def post_forms(*pages: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for html in pages:
        parser = PostForms()
        parser.feed(html)
        for form, count in parser.counts().items():
            found[form] = max(count, found.get(form, 0))
    return found


def test_the_catch_log_accepts_exactly_as_many_fields_as_its_largest_form_posts(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        log = CatchLog(gw.store, gw.clock)
        log.add_captain("somchai", "135791")
        rendered = [web.get("/catch").text]  # the sign-in form
        r = web.post("/catch/login", data={"handle": "somchai", "pin": "135791"})
        token = unquote(re.search(r"[?&]t=([^&]+)", r.headers["location"]).group(1))  # type: ignore[union-attr]
        rendered.append(web.get("/catch", params={"t": token}).text)
        captain = log.captain(token)
        assert captain is not None
        trip = log.start_trip(
            captain,
            {
                "departed": "2026-03-01T06:00",
                "port": "THSGK",
                "gear": "OTB",
                "area": "71",
                "latitude": "7.2",
                "longitude": "100.6",
            },
        )["trip"]
        log.add_event(
            captain,
            trip,
            "haul",
            {
                "start": "2026-03-01T09:30",
                "duration_min": "60",
                "latitude": "7.3",
                "longitude": "100.7",
                "lines": [{"species": "RAG", "kg": "30"}],
            },
        )
        log.add_event(
            captain, trip, "rest", {"day": "2026-03-01", "crew": [{"crew": "1", "rest_hours": "10"}]}
        )
        log.add_event(
            captain,
            trip,
            "discard",
            {"time": "2026-03-01T10:00", "species": "RAG", "kg": "3", "reason": "DAMAGED"},
        )
        log.add_event(
            captain,
            trip,
            "etp",
            {
                "time": "2026-03-01T11:00",
                "species": "TTH",
                "count": "1",
                "condition": "A0",
                "fate": "RELEASED_ALIVE",
                "latitude": "7.3",
                "longitude": "100.7",
            },
        )
        rendered.append(web.get("/catch", params={"t": token}).text)
        for event in log.events(trip):
            rendered.append(web.get("/catch", params={"t": token, "edit": str(event["seq"])}).text)
        counts = post_forms(*rendered)
        for form in (
            "/catch/login",
            "/catch/trip",
            "#form-haul",
            "#form-rest",
            "#form-etp",
            "#form-discard",
            "#form-end",
            "/catch/delete",
        ):
            assert any(form in name for name in counts), f"{form} was not rendered"
        assert max(counts.values()) == CATCH_FIELDS, counts
        haul = next(n for form, n in counts.items() if "form-haul" in form)
        rest = next(n for form, n in counts.items() if "form-rest" in form)
        assert haul > 20 and rest > 20  # the forms that a fixed limit of 20 used to refuse


def test_the_captive_page_accepts_exactly_as_many_fields_as_its_largest_form_posts(tmp_path: Path) -> None:
    with page(tmp_path, GENEROUS) as (_gw, url), httpx.Client(base_url=url) as web:
        rendered = [web.get("/").text]
        r = web.post("/login", data={"handle": "counter", "pin": "2468"})
        rendered.append(web.get(r.headers["location"]).text)  # the consent screen
        token = sign_in(web, "counter")
        rendered.append(web.get("/", params={"s": token}).text)
        rendered.append(web.post("/sos", data={"s": token}).text)
        counts = post_forms(*rendered)
        for form in ("/login", "/consent", "/send", "/sos", "/logout", "/clear", "/sos/confirm"):
            assert any(name.startswith(form + "#") for name in counts), f"{form} was not rendered"
        assert max(counts.values()) == CAPTIVE_FIELDS, counts


def test_a_form_over_the_limit_is_refused_for_that_reason_and_the_captain_stays_on_the_log(
    tmp_path: Path,
) -> None:
    with page(tmp_path, GENEROUS) as (gw, url), httpx.Client(base_url=url) as web:
        CatchLog(gw.store, gw.clock).add_captain("somchai", "135791")
        web.post("/catch/login", data={"handle": "somchai", "pin": "135791", "l": "th"})
        fields = {f"extra{i}": "1" for i in range(CATCH_FIELDS + 1)}
        r = web.post("/catch/event", data=fields)
        assert r.status_code == 400
        th = catalogue("th")
        assert th("problem_fields", n=CATCH_FIELDS) in r.text and th("problem_encoding") not in r.text
        assert 'id="trip-state"' in r.text  # the log, not the sign-in form
