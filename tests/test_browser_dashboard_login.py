"""The dashboard's login form in real headless Chromium, as a person uses it: a wrong password brings the
form back with the user name as typed (shown as text, never as markup) and the password field empty, so
only the password is typed again; then the right password lets the person in. The password is never
echoed: not in the page, not in the address, not in a cookie."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser_support import Watch, browser, chromium_or_skip, watch
from captive_support import serve

from common.clock import SystemClock
from shore.archive import Archive
from shore.dashboard import create_app
from shore.dashboard.auth import Role
from shore.dashboard.data import DashboardData

chromium_or_skip()
pytestmark = pytest.mark.timeout(120)
__all__ = ["browser", "watch"]  # fixtures
PASSWORD = "correct horse battery"
WRONG = "horse battery staple"


def test_a_wrong_password_keeps_the_user_name_and_the_right_one_then_logs_in(
    tmp_path: Path, watch: Watch
) -> None:
    archive = Archive(tmp_path / "archive.sqlite3")
    DashboardData(archive).add_user("desk", Role.HOTLINE, PASSWORD, None, time.time())
    app = create_app(archive, lambda _topic, _payload: None, clock=SystemClock())
    with serve(app) as url:
        page = watch.open()
        page.goto(url + "/login")
        page.fill("#username", "desk")
        page.fill("#password", WRONG)
        page.click("#login-button")
        page.wait_for_selector("#login-error")
        assert page.input_value("#username") == "desk"
        assert page.input_value("#password") == ""
        assert page.evaluate("document.activeElement.id") == "password"  # straight to the password
        for seen in (page.content(), page.url, *(c["value"] for c in page.context.cookies())):
            assert WRONG not in seen and WRONG.replace(" ", "%20") not in seen
        page.fill("#password", PASSWORD)  # only the password again
        page.click("#login-button")
        page.wait_for_selector("header.top")
        assert "/login" not in page.url

        # A typed name that looks like markup comes back as the same text, not as an element.
        typed = '<img src=x id=injected> "desk"'
        other = watch.open()
        other.goto(url + "/login")
        other.fill("#username", typed)
        other.fill("#password", WRONG)
        other.click("#login-button")
        other.wait_for_selector("#login-error")
        assert other.input_value("#username") == typed
        assert other.locator("#injected").count() == 0
        # Opening the form afresh starts empty again: the name was kept for the one refused attempt.
        other.goto(url + "/login")
        assert other.input_value("#username") == ""
    archive.close()
