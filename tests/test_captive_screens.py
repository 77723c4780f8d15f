"""Captive-page and catch-log handler modules stand alone: an app made of one module's ``routes`` and
only the ``app.state`` attributes it reads works; the OpenAPI data file agrees with the code."""

from __future__ import annotations

from collections import OrderedDict

import httpx
from captive_support import serve
from starlette.applications import Starlette

from gateway.captive import probes
from gateway.catchlog import CODELISTS, EVENT_TYPES, FATES, MAX_LINES
from gateway.catchlog_web import api
from gateway.i18n import LANGUAGES


def probe_app(policy: str) -> Starlette:
    app = Starlette(routes=[*probes.routes, probes.catch_all])
    app.state.probe_policy = policy
    app.state.portal_url = "http://portal.example/"
    app.state.released = OrderedDict()
    return app


def test_release_policy_calls_an_address_captive_until_it_signs_in() -> None:
    app = probe_app("release")
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as web:
        r = web.get("/generate_204", follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "http://portal.example/"
        assert web.get("/api/captive").json()["captive"] is True
        app.state.released["127.0.0.1"] = 0.0  # what signing in records
        assert web.get("/generate_204", follow_redirects=False).status_code == 204
        assert web.get("/api/captive").json()["captive"] is False


def test_online_policy_never_claims_captivity_but_other_addresses_lead_to_the_page() -> None:
    with serve(probe_app("online")) as url, httpx.Client(base_url=url, timeout=10) as web:
        assert web.get("/hotspot-detect.html").text.endswith("<BODY>Success</BODY></HTML>")
        assert web.get("/ncsi.txt").text == "Microsoft NCSI"
        r = web.get("/some/where/else", follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "http://portal.example/"


def test_the_openapi_description_is_served_from_the_data_file_alone() -> None:
    with serve(Starlette(routes=api.routes)) as url, httpx.Client(base_url=url, timeout=10) as web:
        spec = web.get("/api/openapi.json").json()
    assert spec == api.openapi()
    assert "/api/catch/trips/{trip}/events/{seq}" in spec["paths"]


def test_the_openapi_data_file_agrees_with_the_catch_log_rules() -> None:
    spec = api.openapi()
    assert _collect(spec, "maxItems") == [MAX_LINES]
    enums = _collect(spec, "enum")
    assert list(FATES) in enums
    assert list(LANGUAGES) in enums
    assert list(CODELISTS) in enums
    assert [e for e in EVENT_TYPES if e != "trip_start"] in enums


def _collect(node: object, key: str) -> list[object]:
    """Every value of ``key`` anywhere in a JSON document."""
    out: list[object] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                out.append(v)
            out += _collect(v, key)
    elif isinstance(node, list):
        for item in node:
            out += _collect(item, key)
    return out
