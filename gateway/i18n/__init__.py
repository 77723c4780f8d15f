"""Message catalogues for the crew page (my, km, th, en) and Burmese font-encoding repair.

The catalogues are JSON data files beside this module, one per language, with the same keys; a key
missing from a language falls back to English. This module only loads and formats text: it does not
know about HTTP or the store.

Burmese typed with a Zawgyi font is detected (Google's ``myanmartools`` detector) and converted to
Unicode (rule-based converter from ``mmfont``) before anything is stored or sealed.
"""

from __future__ import annotations

import json
import logging
import warnings
from functools import cache
from importlib import resources

log = logging.getLogger("gateway.i18n")

LANGUAGES: tuple[str, ...] = ("my", "km", "th", "en")
DEFAULT_LANGUAGE = "en"
ZAWGYI_THRESHOLD = 0.95  # detector probability above which text is treated as Zawgyi


LANG_COOKIE = "sb_lang"  # the member's or captain's language, one choice for the vessel's whole site


class Catalogue:
    """One language's messages; ``t(key, **values)`` formats one, falling back to English."""

    def __init__(self, lang: str, messages: dict[str, str], fallback: dict[str, str]) -> None:
        self.lang = lang
        self.messages = messages
        self.fallback = fallback

    @property
    def name(self) -> str:
        return self.messages.get("_language", self.lang)

    def t(self, key: str, **values: object) -> str:
        text = self.messages.get(key) or self.fallback.get(key) or key
        if values:
            try:
                return text.format(**values)
            except (KeyError, IndexError, ValueError):
                log.warning("catalogue %s: bad placeholders in %s", self.lang, key)
                return self.fallback.get(key, key).format(**values)
        return text

    def n(self, key: str, count: int, **values: object) -> str:
        """``key`` for ``count`` things: ``key_one`` when ``count`` is 1 and this language has that
        form (Burmese, Khmer and Thai have no grammatical number and use ``key`` for every count)."""
        one = f"{key}_one"
        chosen = one if count == 1 and one in self.messages else key
        return self.t(chosen, count=count, **values)

    def __call__(self, key: str, **values: object) -> str:
        return self.t(key, **values)


def _load(lang: str) -> dict[str, str]:
    raw = (resources.files(__name__) / f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"catalogue {lang} must map keys to strings")
    return data


@cache
def catalogue(lang: str) -> Catalogue:
    lang = pick_language(lang)
    return Catalogue(lang, _load(lang), _load(DEFAULT_LANGUAGE))


def pick_language(*candidates: str | None, accept_language: str = "") -> str:
    """The first supported language among ``candidates``, then the browser's Accept-Language."""
    for value in candidates:
        if value and value.strip().lower()[:2] in LANGUAGES:
            return value.strip().lower()[:2]
    for part in accept_language.split(",")[:10]:
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


# --- Burmese: Zawgyi detection and conversion -----------------------------------------------------

_detector = None


def _zawgyi_probability(text: str) -> float:
    global _detector
    if _detector is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the library's own resource loading
            from myanmartools import ZawgyiDetector

            _detector = ZawgyiDetector()
    return float(_detector.get_zawgyi_probability(text))


def is_zawgyi(text: str) -> bool:
    if not any("\u1000" <= ch <= "\u109f" for ch in text):
        return False
    return _zawgyi_probability(text) > ZAWGYI_THRESHOLD


def to_unicode(text: str) -> str:
    """``text`` with any Zawgyi-encoded Burmese converted to Unicode; other text is unchanged."""
    if not is_zawgyi(text):
        return text
    from mmfont.converter import zg12uni51

    converted: str = zg12uni51(text)
    log.info("converted Zawgyi-encoded Burmese input to Unicode (%d characters)", len(text))
    return converted
