"""What every browser test shares: Debian's Chromium driven by Playwright (one browser per module),
a watch on every page that fails the test when a page answers 4xx/5xx or logs a console error, and
screenshots of each screen for the docs.

A browser test does what the person does: it opens the page, fills the fields the page shows and clicks
the page's own buttons; it never posts a form it built itself. ``Watch.allow`` names the few answers
a test provokes on purpose (a refused page for a role that may not see it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
SCREENSHOTS = os.environ.get("SEABRIDGE_SCREENSHOTS", "") not in ("", "0")
PHONE = {"width": 360, "height": 740}
DESK = {"width": 1280, "height": 860}


def chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[*ARGS, "--autoplay-policy=no-user-gesture-required"],
            headless=True,
        )
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watch:
    """Every response and console message of the pages a test opens (``open``)."""

    browser: Any
    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[int, re.Pattern[str]]] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def allow(self, status: int, url_pattern: str) -> None:
        """A ``status`` answer to a URL matching ``url_pattern`` is what the test expects."""
        self.allowed.append((status, re.compile(url_pattern)))

    def open(self, *, phone: bool = False, javascript: bool = True, width: int | None = None) -> Any:
        """A new page in its own context (no shared cookies), watched."""
        size = dict(PHONE if phone else DESK)
        if width is not None:
            size["width"] = width
        context = self.browser.new_context(
            viewport=size,
            java_script_enabled=javascript,
            is_mobile=phone,
            has_touch=phone,
            accept_downloads=True,
        )
        self.contexts.append(context)
        page = context.new_page()
        page.on("response", self._response)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        return page

    def _response(self, response: Any) -> None:
        status = int(response.status)
        if status < 400:
            return
        if any(status == code and pattern.search(response.url) for code, pattern in self.allowed):
            return
        self.problems.append(f"HTTP {status} {response.request.method} {response.url}")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            text = str(message.text)
            # Chromium logs the document's own refused status once more; the response check reports it.
            if "Failed to load resource" in text and self._allowed_url(message):
                return
            self.problems.append(f"console error: {text} at {message.location.get('url', '')}")

    def _allowed_url(self, message: Any) -> bool:
        url = str(message.location.get("url", ""))
        return any(pattern.search(url) for _code, pattern in self.allowed)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def watch(browser: Any) -> Iterator[Watch]:
    """Pages for one test; the test fails if any answered 4xx/5xx or logged a console error."""
    w = Watch(browser)
    yield w
    w.close()
    assert not w.problems, "the browser saw:\n" + "\n".join(w.problems)


def shoot(page: Any, name: str, at: str = "") -> None:
    """Save the visible screen as ``docs/img/<name>.png`` when SEABRIDGE_SCREENSHOTS is set, scrolled
    so that ``at`` (a selector) is in view."""
    if SCREENSHOTS:
        if at:
            page.locator(at).first.scroll_into_view_if_needed()
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / f"{name}.png"), full_page=False, scale="css")
